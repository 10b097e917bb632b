"""The content-addressed per-shard cache (redrobe.shardcache) and the dedup sketch cache."""

import numpy as np
import pytest

from redrobe import shardcache
from redrobe.config import Dedup, MinHashParams
from redrobe.dedup.shards import (
    ShardSketch,
    SketchTask,
    sketch_cache,
    sketch_shard,
    sketch_task,
)
from redrobe.documents import list_shards
from redrobe.shardcache import ShardCache, code_digest


@pytest.fixture
def shard(tmp_path):
    path = tmp_path / "input.bin"
    path.write_bytes(b"shard bytes")
    return path


def counted(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def cache_of(tmp_path, params=None, code="v1"):
    return ShardCache(tmp_path / "cache", params or {"n": 13, "seed": 42}, code)


def test_miss_then_hit(tmp_path, shard):
    cache = cache_of(tmp_path)
    compute, calls = counted(b"result")
    assert cache.cached(shard, compute, bytes, bytes) == (b"result", False)
    assert cache.cached(shard, compute, bytes, bytes) == (b"result", True)
    assert len(calls) == 1


def test_key_follows_content_params_and_code(tmp_path, shard):
    base = cache_of(tmp_path).key(shard)
    assert cache_of(tmp_path, {"seed": 42, "n": 13}).key(shard) == base   # dict order is irrelevant
    assert cache_of(tmp_path, {"n": 5, "seed": 42}).key(shard) != base
    assert cache_of(tmp_path, code="v2").key(shard) != base
    copy = tmp_path / "elsewhere.bin"
    copy.write_bytes(shard.read_bytes())
    assert cache_of(tmp_path).key(copy) == base                          # content, not path
    shard.write_bytes(b"changed")
    assert cache_of(tmp_path).key(shard) != base


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_entry_is_recomputed_and_rewritten(tmp_path, shard, damage):
    cache = cache_of(tmp_path)
    cache.cached(shard, lambda: b"payload" * 100, bytes, bytes)
    entry = cache.entry(cache.key(shard))
    raw = entry.read_bytes()
    entry.write_bytes({"truncate": raw[:-10], "flip": raw[:-1] + bytes([raw[-1] ^ 1]),
                       "garbage": b"x" * 80, "empty": b""}[damage])
    compute, calls = counted(b"payload" * 100)
    assert cache.cached(shard, compute, bytes, bytes) == (b"payload" * 100, False)
    assert len(calls) == 1 and entry.read_bytes() == raw


def test_undecodable_entry_is_a_miss(tmp_path, shard):
    cache = cache_of(tmp_path)
    cache.cached(shard, lambda: b"old layout", bytes, bytes)

    def strict(payload: bytes) -> bytes:
        if payload == b"old layout":
            raise ValueError("unknown layout")
        return payload

    assert cache.cached(shard, lambda: b"new", bytes, strict) == (b"new", False)
    assert cache.cached(shard, lambda: b"unused", bytes, strict) == (b"new", True)


def test_no_temporary_files_left(tmp_path, shard):
    cache = cache_of(tmp_path)
    cache.cached(shard, lambda: b"x", bytes, bytes)
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files == [cache.entry(cache.key(shard))]


def test_code_digest_changes_with_the_source(tmp_path):
    assert code_digest(shardcache) == code_digest(shardcache)
    assert code_digest(shardcache) != code_digest(shardcache, version="2")
    assert code_digest(shardcache) != code_digest(np)


def test_sketch_round_trips_and_reuses(write_shards, prose, tmp_path):
    root = write_shards({("books", 0): [("a", prose(1)), ("ü-id\n\x00", prose(2)), ("p", "!!")]})
    path = str(list_shards(root)[0])
    params = Dedup()
    task = SketchTask(path, params, 2, sketch_cache(tmp_path / "c", params))
    fresh, hit = sketch_task(task)
    again, hit2 = sketch_task(task)
    assert (hit, hit2) == (False, True)
    direct = sketch_shard(path, params, 2)
    for sketch in (fresh, again):
        assert (sketch.path, sketch.slice, sketch.ids) == (path, "books", direct.ids)
        for field in ("digests", "has_digest", "band_keys", "has_signature"):
            assert np.array_equal(getattr(sketch, field), getattr(direct, field))
            assert getattr(sketch, field).dtype == getattr(direct, field).dtype
    other = Dedup(minhash=MinHashParams(seed=7))
    assert sketch_task(SketchTask(path, other, 2, sketch_cache(tmp_path / "c", other)))[1] is False
    verify = Dedup(minhash=MinHashParams(verify=True, threshold=0.9), cross_slice=False)
    assert sketch_task(SketchTask(path, verify, 2, sketch_cache(tmp_path / "c", verify)))[1] is True


def test_sketch_from_bytes_rejects_inconsistent_arrays(write_shards, prose):
    root = write_shards({("books", 0): [("a", prose(1))]})
    sketch = sketch_shard(str(list_shards(root)[0]), Dedup(), 2)
    broken = ShardSketch(path="", slice="", ids=["a", "b"], digests=sketch.digests,
                         has_digest=sketch.has_digest, band_keys=sketch.band_keys,
                         has_signature=sketch.has_signature)
    with pytest.raises(ValueError, match="unequal length"):
        ShardSketch.from_bytes(broken.to_bytes())
