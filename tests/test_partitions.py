"""Partitions: a slice's shards at ``<slice>/part-*`` or, routed by language, one folder
deeper at ``<slice>/<language>/part-*``; listing both, naming and splitting them."""

import pytest

from redrobe.documents import (
    Document,
    ShardWriter,
    atomic_dir,
    base_slice,
    is_shard,
    list_shards,
    partition_name,
    partition_of,
    shard_path,
    split_partition,
)

PARTITIONS = ("books", "wikipedia/de", "wikipedia/en")


def write(root, partitions=PARTITIONS):
    for partition in partitions:
        with ShardWriter(shard_path(root, partition, 0)) as w:
            w.write(Document(f"{partition}/0", "text", partition.split("/")[0]))


@pytest.mark.parametrize("committed", [True, False])
def test_list_shards_reads_both_depths_from_a_manifest_or_by_name(tmp_path, committed):
    root = tmp_path / "out"
    if committed:
        with atomic_dir(root) as staged:
            write(staged)
    else:
        write(root)
    (root / "wikipedia" / "de" / "notes.txt").write_text("not a shard")
    shards = list_shards(root)
    assert [partition_of(s, root) for s in shards] == list(PARTITIONS)
    assert [s.relative_to(root).as_posix() for s in list_shards(root, "wikipedia")] == [
        "wikipedia/de/part-00000.parquet", "wikipedia/en/part-00000.parquet"]
    assert list_shards(root, "wikipedia/de") == [shard_path(root, "wikipedia/de", 0)]
    assert list_shards(root, "wiki") == []   # a prefix of a name is not the slice


def test_is_shard_wants_a_part_file_in_a_partition_folder():
    assert is_shard("books/part-00000.parquet") and is_shard("wikipedia/de/part-00001.parquet")
    assert not is_shard("part-00000.parquet")                        # no slice
    assert not is_shard("wikipedia/de/x/part-00000.parquet")         # too deep
    assert not is_shard("books/_manifest.json") and not is_shard("books/part-1.json")


def test_partition_names_split_into_slice_and_language():
    assert partition_name("wikipedia", "de") == "wikipedia/de"
    assert shard_path("r", "wikipedia/de", 3).as_posix() == "r/wikipedia/de/part-00003.parquet"
    assert partition_name("books") == "books" == partition_name("books", None)
    assert split_partition("wikipedia/de") == ("wikipedia", "de")
    assert split_partition("books") == ("books", None)
    assert base_slice("wikipedia/zh") == "wikipedia" and base_slice("c4") == "c4"
