"""Exact order statistics of values spread over many sorted per-shard files.

The global steps of tokenize (the tokenizer sample's cutoff) and bucket (the
difficulty quantiles) need the r-th smallest value of a set that no process may hold.
Each shard task writes its values once, as sorted *sortable keys* (:func:`to_keys`: a
uint64 whose unsigned order is the float order), with :func:`write_keys`. Then
:func:`select_ranks` bisects the 64-bit key space: every round maps small
:class:`CountTask` s (a group of files, a few pivot keys per wanted rank) that answer
how many keys are at or below each pivot, and narrows each rank's interval 16-fold,
so 16 rounds at most find every rank's exact value:

    write_keys(url, scores)                                  # in each shard task
    values = select_ranks(urls, [0, 41, 99], mapper)         # in the driver

Memory: a count task holds one file's keys at a time; the driver holds a few numbers
per wanted rank.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from redrobe.partfile import get_bytes, put_bytes

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
#: sorted key files one count task reads
FILES_PER_TASK = 64
#: pivots per rank and round: the interval shrinks (PIVOTS + 1)-fold per round
PIVOTS = 15
_SIGN = np.uint64(1 << 63)
_TOP = (1 << 64) - 1


def to_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys ordered like the float64 ``values`` (-0.0 and 0.0 share a key)."""
    bits = (np.asarray(values, dtype=np.float64) + 0.0).view(np.uint64)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def from_keys(keys: np.ndarray) -> np.ndarray:
    """The float64 values of :func:`to_keys` keys."""
    keys = np.asarray(keys, dtype=np.uint64)
    return np.where(keys & _SIGN, keys & ~_SIGN, ~keys).view(np.float64)


def write_keys(url: str, values: np.ndarray) -> int:
    """Store ``values`` as sorted keys at ``url``; returns how many."""
    keys = np.sort(to_keys(values))
    put_bytes(url, keys.astype("<u8").tobytes())
    return len(keys)


def read_keys(url: str) -> np.ndarray:
    return np.frombuffer(get_bytes(url), dtype="<u8")


@dataclass(frozen=True)
class CountTask:
    """How many keys of ``files`` lie at or below each pivot."""

    files: tuple[str, ...]
    pivots: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.files[0]} (+{len(self.files) - 1} files)"


def count_task(task: CountTask) -> np.ndarray:
    pivots = np.asarray(task.pivots, dtype=np.uint64)
    counts = np.zeros(len(pivots), dtype=np.int64)
    for url in task.files:
        counts += np.searchsorted(read_keys(url), pivots, side="right")
    return counts


def count_at_or_below(files: Sequence[str], pivots: Sequence[int], mapper: Mapper) -> np.ndarray:
    """Keys at or below each pivot over all ``files`` (one map of count tasks)."""
    groups = [tuple(files[i:i + FILES_PER_TASK]) for i in range(0, len(files), FILES_PER_TASK)]
    counts = np.zeros(len(pivots), dtype=np.int64)
    for part in mapper(count_task, [CountTask(g, tuple(pivots)) for g in groups]):
        counts += part
    return counts


def _pivots(lo: int, hi: int) -> list[int]:
    """PIVOTS keys splitting [lo, hi] evenly (repeats of ``lo`` when it is narrow)."""
    step = (hi - lo) // (PIVOTS + 1)
    return [lo + step * i for i in range(1, PIVOTS + 1)]


def select_keys(files: Sequence[str], ranks: Sequence[int], mapper: Mapper) -> list[int]:
    """The key of each 0-based rank of the union of ``files`` (each rank < their total)."""
    lo, hi = [0] * len(ranks), [_TOP] * len(ranks)   # the answer lies in [lo, hi]
    while True:
        open_ = [i for i in range(len(ranks)) if lo[i] < hi[i]]
        if not open_:
            return lo
        pivots = [_pivots(lo[i], hi[i]) for i in open_]
        counts = count_at_or_below(files, [p for ps in pivots for p in ps], mapper)
        for i, ps, found in zip(open_, pivots, counts.reshape(len(open_), PIVOTS).tolist()):
            for p, n in zip(ps, found):
                if n > ranks[i]:
                    hi[i] = min(hi[i], p)
                else:
                    lo[i] = max(lo[i], p + 1)


def select_ranks(files: Sequence[str], ranks: Sequence[int], mapper: Mapper) -> list[float]:
    """The value of each 0-based rank of the union of ``files`` (each rank < their total)."""
    keys = select_keys(files, ranks, mapper)
    return from_keys(np.asarray(keys, dtype=np.uint64)).tolist()
