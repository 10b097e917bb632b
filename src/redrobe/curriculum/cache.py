"""Bounded readers of a buckets directory: what a training rank holds does not grow with it.

- :class:`LRU`: least-recently-used entries within a budget of total weight (bytes
  for the decoded ``docs.parquet`` row groups of :class:`redrobe.curriculum.order.DocTable`,
  one per open file for :class:`TokenFiles`).
- :class:`TokenFiles`: the token files of a buckets directory (``bucket-NN.bin``,
  ``val-<slice>.bin``: contract in :mod:`redrobe.curriculum.layout`) read by position
  with ``os.pread`` through at most ``max_open`` open descriptors, the least recently
  read closed first. A read copies its window out (a few KB), so a rank holds only
  the windows it is training on: a memory map kept open for the whole run would keep
  every page the rank ever touched resident until the map is closed.
- :class:`TokenFile`: one of those files as an array-like (``len``, slicing), which is
  all :mod:`redrobe.train.data` asks of a bucket array:

    with TokenFiles.of_index("data/processed/buckets", index) as files:
        tokens = files.file("bucket-00.bin")
        window = tokens[4096:4096 + 2049]      # a uint16 copy: one pread
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Generic, Hashable, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: open token files per TokenFiles (a bucket's windows are read in runs, so a few suffice)
MAX_OPEN_FILES = 8


class LRU(Generic[K, V]):
    """Entries by key, evicting the least recently used once their total weight passes
    ``budget``; the newest entry is always kept, even when it alone weighs more."""

    def __init__(self, budget: int, weigh: Callable[[V], int],
                 on_evict: Callable[[V], None] | None = None) -> None:
        self.budget, self.weigh, self.on_evict = budget, weigh, on_evict
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.weight = 0
        self.loads = 0   # how many times ``get`` had to load (for tests and diagnostics)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The entry under ``key``, loaded with ``load()`` when absent."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        value = load()
        self.loads += 1
        weight = self.weigh(value)
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.budget and len(self._items) > 1:
            self._evict()
        return value

    def _evict(self) -> None:
        _, (value, weight) = self._items.popitem(last=False)
        self.weight -= weight
        if self.on_evict is not None:
            self.on_evict(value)

    def clear(self) -> None:
        while self._items:
            self._evict()


class TokenFiles:
    """The token files under ``root`` (one ``dtype``), read through a bounded set of open
    descriptors; close it (or use it as a context manager) to release them."""

    def __init__(self, root: str | os.PathLike, dtype: np.dtype,
                 max_open: int = MAX_OPEN_FILES) -> None:
        self.root, self.dtype = Path(root), np.dtype(dtype)
        self._fds: LRU[str, int] = LRU(max_open, weigh=lambda _: 1, on_evict=os.close)

    @classmethod
    def of_index(cls, root: str | os.PathLike, index: dict[str, Any],
                 max_open: int = MAX_OPEN_FILES) -> TokenFiles:
        """The token files of a buckets directory, with its ``index.json``'s dtype."""
        return cls(root, np.dtype(index["dtype"]).newbyteorder("<"), max_open)

    @property
    def open_files(self) -> int:
        return len(self._fds)

    def file(self, name: str) -> TokenFile:
        """``name`` as an array of tokens (its length checked now, its bytes read on demand)."""
        return TokenFile(self, name, (self.root / name).stat().st_size // self.dtype.itemsize)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Tokens ``[start, stop)`` of ``name`` (clipped by the caller), a fresh array."""
        count = max(stop - start, 0)
        if count == 0:
            return np.zeros(0, dtype=self.dtype)
        fd = self._fds.get(name, lambda: os.open(self.root / name, os.O_RDONLY))
        size, at = count * self.dtype.itemsize, start * self.dtype.itemsize
        data = os.pread(fd, size, at)
        if len(data) != size:   # the file shrank under us: refuse rather than pad
            raise OSError(f"{self.root / name}: short read at token {start} ({len(data)} of {size} bytes)")
        return np.frombuffer(data, dtype=self.dtype).copy()   # writable, owns its memory

    def close(self) -> None:
        self._fds.clear()

    def __enter__(self) -> TokenFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TokenFile:
    """One token file as a read-only array: ``len()``, ``[a:b]`` (step 1) and ``[i]``."""

    def __init__(self, files: TokenFiles, name: str, length: int) -> None:
        self.files, self.name, self.length = files, name, length

    @property
    def dtype(self) -> np.dtype:
        return self.files.dtype

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice | int) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.length)
            if step != 1:
                raise IndexError(f"{self.name}: only contiguous slices are read (step {step})")
            return self.files.read(self.name, start, stop)
        index = int(key) + (self.length if int(key) < 0 else 0)
        if not 0 <= index < self.length:
            raise IndexError(f"{self.name}: token {key} outside [0, {self.length})")
        return self.files.read(self.name, index, index + 1)[0]
