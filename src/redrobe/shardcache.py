"""Content-addressed cache of per-shard results, for incremental stage runs.

A per-shard result (dedup's sketch of a shard, clean's filtered shard, ...) depends
only on the shard's bytes, the params that shape it and the code that computes it.
The cache key is the SHA-256 of those three, so adding a shard to a corpus recomputes
that shard only, and changing a param or the code misses every entry (nothing stale
is ever returned; old entries are simply never read again):

    cache = ShardCache(".redrobe/cache/dedup", params={"ngram": 13, ...},
                       code=code_digest(redrobe.dedup.minhash, redrobe.text.normalize))
    sketch, hit = cache.cached("data/interim/clean/books/part-00000.parquet",
                               compute=lambda: sketch_shard(...),
                               encode=ShardSketch.to_bytes, decode=ShardSketch.from_bytes)

Entries are ``<root>/<key[:2]>/<key>.bin``: a magic tag, the SHA-256 of the payload
and the payload; they are written atomically (temporary sibling, then rename), so
parallel workers never see half an entry. An entry that is truncated, altered or that
``decode`` rejects counts as a miss: the result is recomputed and the entry rewritten.
The object holds only plain values, so it pickles into process pools and Ray tasks.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from redrobe.documents import atomic_file, file_digest
from redrobe.storage import get_bytes, is_url, put_bytes

T = TypeVar("T")

#: first bytes of every entry; bump the digit when the entry layout changes
MAGIC = b"RDRBCACHE1"


def code_digest(*modules: ModuleType, version: str = "") -> str:
    """SHA-256 over the source files of ``modules`` (and a free-form version tag)."""
    h = hashlib.sha256(version.encode("utf-8"))
    for module in modules:
        h.update(module.__name__.encode("utf-8") + b"\0")
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()


class ShardCache:
    """Results keyed by (input file digest, params, code digest) under ``root``."""

    def __init__(self, root: str | Path, params: Mapping[str, Any], code: str) -> None:
        self.root = Path(root)
        # canonical JSON: the same params give the same key whatever their dict order
        self.params = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
        self.code = code

    def key(self, input_path: str | Path) -> str:
        """Hex SHA-256 of the input's content digest, the params and the code digest."""
        h = hashlib.sha256()
        for part in (file_digest(input_path), self.params, self.code):
            h.update(part.encode("utf-8") + b"\0")
        return h.hexdigest()

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.bin"

    def load(self, key: str) -> bytes | None:
        """The stored payload, or None when there is none or it is corrupt."""
        try:
            raw = _read_regular_file(self.entry(key))
        except OSError:
            return None
        head = len(MAGIC)
        payload = raw[head + 32:]
        if raw[:head] != MAGIC or hashlib.sha256(payload).digest() != raw[head:head + 32]:
            return None
        return payload

    def store(self, key: str, payload: bytes) -> None:
        """Write an entry atomically (last writer wins; all writers write the same bytes)."""
        with atomic_file(self.entry(key), "wb") as fh:
            fh.write(MAGIC + hashlib.sha256(payload).digest() + payload)

    def cached(self, input_path: str | Path, compute: Callable[[], T],
               encode: Callable[[T], bytes], decode: Callable[[bytes], T]) -> tuple[T, bool]:
        """(result, True) from the cache, else (compute(), False) after storing it."""
        key = self.key(input_path)
        payload = self.load(key)
        decoded = _decode(decode, payload) if payload is not None else None
        if decoded is not None:
            return decoded[0], True
        result = compute()
        self.store(key, encode(result))
        return result, False


def _read_regular_file(path: Path) -> bytes:
    """A regular file's bytes; OSError for anything else (a symlink to /dev/zero planted
    in the cache would otherwise be read until memory runs out)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        return fh.read()


def _decode(decode: Callable[[bytes], T], payload: bytes) -> tuple[T] | None:
    """(decode(payload),), or None when the payload does not decode: a miss, never a crash."""
    try:
        return (decode(payload),)
    except Exception:  # noqa: BLE001 - any undecodable entry (old layout, damage) is a miss
        return None


def pack_files(paths: Sequence[str | Path], tail: bytes = b"") -> bytes:
    """One payload holding the bytes of ``paths`` (in order) and a ``tail`` (e.g. counts).

    For stages whose per-shard result is a set of output files: the entry restores
    them byte for byte (:func:`unpack_files`) instead of recomputing them.
    """
    return pack_blobs([get_bytes(str(p)) for p in paths], tail)


def pack_blobs(files: Sequence[bytes], tail: bytes = b"") -> bytes:
    """:func:`pack_files` of file contents already in memory."""
    blobs = [*files, tail]
    header = json.dumps([len(b) for b in blobs]).encode("ascii") + b"\n"
    return header + b"".join(blobs)


def split_files(payload: bytes, n_files: int) -> tuple[list[bytes], bytes]:
    """The ``n_files`` file blobs and the tail of a :func:`pack_files` payload (ValueError if malformed)."""
    header, _, body = payload.partition(b"\n")
    sizes = json.loads(header)
    if (not isinstance(sizes, list) or len(sizes) != n_files + 1
            or not all(type(size) is int and size >= 0 for size in sizes)
            or sum(sizes) != len(body)):
        raise ValueError("payload does not hold the expected files")
    blobs, start = [], 0
    for size in sizes:
        blobs.append(body[start:start + size])
        start += size
    return blobs[:-1], blobs[-1]


def unpack_files(blobs: Sequence[bytes], paths: Sequence[str | Path]) -> None:
    """Write the blobs of :func:`split_files` back to ``paths`` (atomically each: local
    files by a rename, objects by one put)."""
    for blob, path in zip(blobs, paths, strict=True):
        if is_url(path):
            put_bytes(str(path), blob)
            continue
        with atomic_file(path, "wb") as fh:
            fh.write(blob)
