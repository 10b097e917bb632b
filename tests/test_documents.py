"""Shard I/O: round trip, bounded row groups, empty shards, atomic outputs."""

import pyarrow.parquet as pq
import pytest

from redrobe.documents import (
    Document,
    ShardWriter,
    atomic_dir,
    count_documents,
    file_digest,
    list_shards,
    read_documents,
    shard_path,
)


def _docs(n):
    return [Document(id=f"c4/{i}", text=f"text {i} é", source="c4",
                     meta={"b": i, "a": [1, 2]}, extra={"reason": "r"}) for i in range(n)]


def test_round_trip_and_row_groups(tmp_path):
    path = shard_path(tmp_path, "c4", 0)
    with ShardWriter(path, batch_size=4, extra_columns=("reason",)) as w:
        w.write_all(_docs(10))
    assert count_documents(path) == 10
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    back = list(read_documents(path, batch_size=3))
    assert back == _docs(10)
    assert list_shards(tmp_path) == [path]


def test_empty_shard_has_schema(tmp_path):
    path = tmp_path / "x" / "part-00000.parquet"
    ShardWriter(path).close()
    assert count_documents(path) == 0
    assert pq.ParquetFile(path).schema_arrow.names == ["id", "text", "source", "meta"]


def test_same_docs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        with ShardWriter(tmp_path / name / "part-00000.parquet") as w:
            w.write_all(_docs(5))
    assert file_digest(tmp_path / "a/part-00000.parquet") == file_digest(tmp_path / "b/part-00000.parquet")


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (target / "done.txt").exists()


def test_corrupt_shard_names_the_file(tmp_path):
    from redrobe.errors import InputError

    bad = tmp_path / "c4" / "part-00000.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=r"c4/part-00000.parquet: unreadable shard"):
        list(read_documents(bad))
