"""Partitioned record files: round trips by partition, local and memory://, damage detected."""

from __future__ import annotations

import numpy as np
import pytest

from redrobe.partfile import (
    PartFileError,
    partition_of,
    partition_sizes,
    read_all,
    read_partition,
    write_partitioned,
)

PAIRS = np.dtype([("a", "<i8"), ("b", "<i8")])


def records(n: int) -> np.ndarray:
    r = np.zeros(n, PAIRS)
    r["a"] = np.arange(n)
    r["b"] = np.arange(n)[::-1]
    return r


@pytest.mark.parametrize("base", ["local", "memory://partfile-test"])
def test_each_partition_reads_back_in_written_order(tmp_path, base):
    url = f"{tmp_path if base == 'local' else base}/x.part"
    r = records(200)
    part = partition_of(r["a"].astype(np.uint64), 7)
    write_partitioned(url, r, part, 7)
    for p in range(7):
        np.testing.assert_array_equal(read_partition(url, PAIRS, p), r[part == p])
    np.testing.assert_array_equal(partition_sizes(url, PAIRS), np.bincount(part, minlength=7))
    assert len(read_all(url, PAIRS)) == 200


def test_empty_and_out_of_range(tmp_path):
    url = str(tmp_path / "e.part")
    write_partitioned(url, records(0), np.empty(0, np.int64), 3)
    assert len(read_partition(url, PAIRS, 2)) == 0
    with pytest.raises(PartFileError, match="out of range"):
        read_partition(url, PAIRS, 3)
    with pytest.raises(ValueError, match="out of range"):
        write_partitioned(url, records(2), np.array([0, 5]), 3)


def test_wrong_dtype_and_damage_are_named(tmp_path):
    url = tmp_path / "d.part"
    write_partitioned(str(url), records(10), np.zeros(10, np.int64), 1)
    with pytest.raises(PartFileError, match="records of 16 bytes"):
        read_partition(str(url), np.dtype("<i8"), 0)
    url.write_bytes(url.read_bytes()[:-3])
    with pytest.raises(PartFileError, match="truncated"):
        read_partition(str(url), PAIRS, 0)
    url.write_bytes(b"junk")
    with pytest.raises(PartFileError, match="not a partitioned"):
        read_all(str(url), PAIRS)


def test_partitions_spread_sequential_keys():
    counts = np.bincount(partition_of(np.arange(10_000, dtype=np.uint64), 8), minlength=8)
    assert counts.min() > 1000
