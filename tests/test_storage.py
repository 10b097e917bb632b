"""Outputs committed by manifests, locally and on an fsspec filesystem (memory://).

The same code paths serve s3:// (tests/test_object_storage.py runs the stages against
a real S3 server); memory:// keeps these checks fast and in process."""

from __future__ import annotations

import hashlib
import json
import uuid

import fsspec
import pytest

from redrobe.documents import Document, ShardWriter, atomic_dirs, list_shards, read_documents, shard_path
from redrobe.errors import InputError
from redrobe.storage import MANIFEST, HashingWriter, location, read_manifest, relative


def _docs(n: int, tag: str = "") -> list[Document]:
    return [Document(id=f"{tag}{i}", text=f"text {i} {tag}", source="c4", meta={"i": i})
            for i in range(n)]


@pytest.fixture
def memory_root():
    root = f"memory://redrobe-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _write_output(root, shards: dict[tuple[str, int], int]) -> None:
    with atomic_dirs(root) as (staged,):
        for (name, index), n in shards.items():
            with ShardWriter(shard_path(staged, name, index), batch_size=3) as writer:
                writer.write_all(_docs(n, f"{name}{index}-"))


def test_a_local_commit_lists_every_file_with_rows_and_the_digest_of_its_bytes(tmp_path):
    out = tmp_path / "out"
    _write_output(out, {("c4", 0): 7, ("c4", 1): 0, ("books", 0): 2})
    entries = read_manifest(out)
    assert [e.path for e in entries] == ["books/part-00000.parquet", "c4/part-00000.parquet",
                                         "c4/part-00001.parquet"]
    for e in entries:
        data = (out / e.path).read_bytes()
        assert (e.bytes, e.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert [e.rows for e in entries] == [2, 7, 0]
    assert sorted(p.name for p in out.rglob(".*")) == []          # sidecars folded in and gone
    assert json.loads((out / MANIFEST).read_text())["version"] == 1


def test_a_file_written_without_a_sidecar_or_replaced_after_it_is_read_to_commit(tmp_path):
    out = tmp_path / "out"
    with atomic_dirs(out) as (staged,):
        (staged / "notes.txt").write_text("hello")
        with ShardWriter(shard_path(staged, "c4", 0)) as writer:
            writer.write_all(_docs(2))
        path = shard_path(staged, "c4", 0)
        other = tmp_path / "other.parquet"
        with ShardWriter(other) as writer:
            writer.write_all(_docs(5))
        path.write_bytes(other.read_bytes())   # replaced after its writer closed
    entries = {e.path: e for e in read_manifest(out)}
    assert entries["notes.txt"].rows is None
    assert entries["notes.txt"].sha256 == hashlib.sha256(b"hello").hexdigest()
    assert entries["c4/part-00000.parquet"].rows == 5
    assert entries["c4/part-00000.parquet"].sha256 == hashlib.sha256(other.read_bytes()).hexdigest()


def test_readers_trust_the_manifest_not_the_listing(tmp_path):
    out = tmp_path / "out"
    _write_output(out, {("c4", 0): 2})
    with ShardWriter(shard_path(out, "c4", 1)) as writer:   # dropped in after the commit
        writer.write_all(_docs(1))
    assert list_shards(out) == [shard_path(out, "c4", 0)]
    (out / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match="unreadable manifest"):
        list_shards(out)


def test_an_output_on_an_fsspec_filesystem_is_written_in_place_and_committed(memory_root):
    out = f"{memory_root}/data/clean"
    _write_output(out, {("c4", 0): 4, ("wikipedia", 2): 3})
    shards = list_shards(out)
    assert [str(p) for p in shards] == [f"{out}/c4/part-00000.parquet",
                                        f"{out}/wikipedia/part-00002.parquet"]
    assert list(read_documents(shards[1])) == _docs(3, "wikipedia2-")
    assert [str(p) for p in list_shards(out, "c4")] == [f"{out}/c4/part-00000.parquet"]
    assert [e.rows for e in read_manifest(out)] == [4, 3]
    fs = fsspec.filesystem("memory")
    assert not [f for f in fs.find(out) if "/." in f]            # no sidecars left


def test_a_failed_rewrite_on_object_storage_leaves_the_output_uncommitted(memory_root):
    out = f"{memory_root}/clean"
    _write_output(out, {("c4", 0): 4})
    with pytest.raises(RuntimeError), atomic_dirs(out) as (staged,):
        with ShardWriter(shard_path(staged, "c4", 0)) as writer:
            writer.write_all(_docs(1))
        raise RuntimeError("the stage died")
    with pytest.raises(InputError, match="no _manifest.json: not a committed output"):
        list_shards(out)
    _write_output(out, {("c4", 1): 2})                           # the rerun
    assert [str(p) for p in list_shards(out)] == [f"{out}/c4/part-00001.parquet"]


def test_local_and_remote_outputs_of_one_stage_hold_the_same_bytes(tmp_path, memory_root):
    shards = {("c4", 0): 300, ("books", 1): 5}
    _write_output(tmp_path / "out", shards)
    _write_output(f"{memory_root}/out", shards)
    assert read_manifest(tmp_path / "out") == read_manifest(f"{memory_root}/out")


def test_relative_paths_and_locations_agree_for_paths_and_urls(tmp_path):
    assert str(relative("s3://b/data/raw/c4/part-00001.parquet", "s3://b/data/raw/")) == \
        "c4/part-00001.parquet"
    assert str(relative(tmp_path / "raw" / "c4" / "x", tmp_path / "raw")) == "c4/x"
    assert location(f"file://{tmp_path}") == tmp_path
    with pytest.raises(ValueError, match="not under"):
        relative("s3://b/other/x", "s3://b/data")


def test_the_hashing_writer_passes_every_byte_on():
    buf = fsspec.filesystem("memory").open(f"/hw-{uuid.uuid4().hex}", "wb")
    writer = HashingWriter(buf)
    for chunk in (b"abc", bytearray(b"de"), memoryview(b"f")):
        writer.write(chunk)
    assert (writer.tell(), writer.hash.hexdigest()) == (6, hashlib.sha256(b"abcdef").hexdigest())
    writer.close()
    writer.close()
