"""Partitioned record files: how the partitioned global steps shuffle data by URL.

A task that feeds a shuffle writes one file holding its records grouped by partition;
the task that owns partition ``p`` later reads only that partition's byte range from
each such file (a seek and one read: a range request on object storage). Records are a
fixed numpy structured dtype the caller names, so nothing is pickled:

    KEYS = np.dtype([("k0", "<u8"), ("k1", "<u8"), ("doc", "<i8")])
    write_partitioned("s3://bucket/work/keys/00003.part", records, partition_of(keys, 8), 8)
    mine = read_partition("s3://bucket/work/keys/00003.part", KEYS, part=5)

Layout: an 8-byte magic, the record size and partition count (two little-endian int64),
then ``parts + 1`` int64 record offsets, then the records sorted by partition (stable,
so each partition keeps the order the writer gave). Locations are local paths or any
fsspec URL; a local file is written under a temporary name and renamed into place, an
object is put whole, so a reader never sees half a file.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from redrobe.mix64 import fmix64

# the shuffle's callers use these URL helpers through this module too
from redrobe.storage import get_bytes as get_bytes
from redrobe.storage import join as join
from redrobe.storage import open_read as _open
from redrobe.storage import put_bytes as put_bytes

MAGIC = b"RRPART01"
_HEADER = 8 + 16


class PartFileError(ValueError):
    """A partitioned file is damaged or does not hold the records asked for."""


def partition_of(keys: np.ndarray, parts: int) -> np.ndarray:
    """(n,) int64 partition of each uint64 key: a mixed hash, so skewed keys spread evenly."""
    return (fmix64(np.asarray(keys, dtype=np.uint64)) % np.uint64(parts)).astype(np.int64)


def write_partitioned(url: str, records: np.ndarray, partition: np.ndarray, parts: int) -> int:
    """Write ``records`` grouped by ``partition`` (values in 0..parts-1); returns bytes written."""
    if len(records) != len(partition):
        raise ValueError("one partition per record")
    order = np.argsort(partition, kind="stable")
    counts = np.bincount(partition, minlength=parts) if len(partition) else np.zeros(parts, np.int64)
    if len(counts) > parts:
        raise ValueError(f"partition out of range 0..{parts - 1}")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype("<i8")
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(np.array([records.dtype.itemsize, parts], dtype="<i8").tobytes())
    buf.write(offsets.tobytes())
    buf.write(np.ascontiguousarray(records[order]).tobytes())
    payload = buf.getvalue()
    put_bytes(url, payload)
    return len(payload)


def read_partition(url: str, dtype: np.dtype, part: int) -> np.ndarray:
    """The records of partition ``part`` in ``url`` (in the order they were written)."""
    return read_partitions(url, dtype, part, part + 1)


def read_partitions(url: str, dtype: np.dtype, lo: int, hi: int) -> np.ndarray:
    """The records of partitions ``lo`` .. ``hi - 1`` of ``url``: adjacent, so one read."""
    with _open(url) as fh:
        start, end = _span(fh, url, dtype, lo, hi)
        fh.seek(start)
        return _records(fh.read(end - start), dtype, url)


def record_size(url: str) -> int:
    """Bytes per record of ``url`` (for records whose width varies per file)."""
    with _open(url) as fh:
        return _check_head(fh, url, None)[0]


def read_all(url: str, dtype: np.dtype) -> np.ndarray:
    """Every record of ``url``, grouped by partition."""
    with _open(url) as fh:
        data = fh.read()
    head = io.BytesIO(data)
    _, parts = _check_head(head, url, dtype)
    return _records(data[_HEADER + 8 * (parts + 1):], dtype, url)


def partition_sizes(url: str, dtype: np.dtype) -> np.ndarray:
    """(parts,) number of records in each partition of ``url``."""
    with _open(url) as fh:
        _, parts = _check_head(fh, url, dtype)
        return np.diff(np.frombuffer(fh.read(8 * (parts + 1)), dtype="<i8")).astype(np.int64)


def _check_head(fh: Any, url: str, dtype: np.dtype | None) -> tuple[int, int]:
    head = fh.read(_HEADER)
    if len(head) != _HEADER or head[:8] != MAGIC:
        raise PartFileError(f"{url}: not a partitioned record file")
    itemsize, parts = np.frombuffer(head[8:], dtype="<i8").tolist()
    if dtype is not None and itemsize != np.dtype(dtype).itemsize:
        raise PartFileError(f"{url}: records of {itemsize} bytes, expected {np.dtype(dtype).itemsize}")
    return itemsize, parts


def _span(fh: Any, url: str, dtype: np.dtype, lo: int, hi: int) -> tuple[int, int]:
    """Byte range of partitions lo..hi-1."""
    itemsize, parts = _check_head(fh, url, dtype)
    if not 0 <= lo < hi <= parts:
        raise PartFileError(f"{url}: partitions {lo}..{hi - 1} out of range 0..{parts - 1}")
    fh.seek(_HEADER + 8 * lo)
    offsets = np.frombuffer(fh.read(8 * (hi - lo + 1)), dtype="<i8")
    first, last = offsets[0].item(), offsets[-1].item()
    base = _HEADER + 8 * (parts + 1)
    return base + first * itemsize, base + last * itemsize


def _records(data: bytes, dtype: np.dtype, url: str) -> np.ndarray:
    if len(data) % np.dtype(dtype).itemsize:
        raise PartFileError(f"{url}: truncated records")
    return np.frombuffer(data, dtype=dtype).copy()
