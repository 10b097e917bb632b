"""Cap a document sample uniformly over the corpus (the tokenizer's training docs).

Taking the first ``cap`` documents in shard order would train the tokenizer on the
alphabetically first slices only. Instead each document gets a sort key — its
:func:`redrobe.curriculum.split.split_point` (a uniform hash of seed and id), with the
id as tie-break — and the ``cap`` documents with the smallest keys are kept. Since
training documents are exactly those with ``split_point`` at or above their slice's
split threshold (``val_fraction`` except for very small slices), their keys are
uniform above it independently of the slice, so the kept set is a uniform random
sample of the training split, fixed by the seed.

    cutoff = cap_cutoff(keys_of_training_docs, cap=100_000)   # one pass, O(cap) memory
    keep = within_cap(key, cutoff)                             # second pass

:func:`partitioned_cutoff` finds the same cutoff without any process seeing every key:
one :func:`training_points` task per shard stores its training split points as sorted
keys (:mod:`redrobe.curriculum.select`), the ``cap``-th smallest point is selected
from those files, and, since points may tie, one :func:`ids_at_point` task per shard
returns the ids at exactly that point (a handful) to break the tie by id.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from redrobe.curriculum.select import Mapper, count_at_or_below, from_keys, select_keys, write_keys
from redrobe.curriculum.split import is_validation, shard_ids, split_point

Key = tuple[float, str]


def sample_key(point: float, doc_id: str) -> Key:
    """The sort key of a document: its split point, then its id (keys are unique)."""
    return (point, doc_id)


def cap_cutoff(keys: Iterable[Key], cap: int) -> Key | None:
    """The largest key kept when at most ``cap`` documents may be kept; None if all fit."""
    if cap < 1:
        raise ValueError("cap must be >= 1")
    smallest = heapq.nsmallest(cap + 1, keys)
    return smallest[cap - 1] if len(smallest) > cap else None


def within_cap(key: Key, cutoff: Key | None) -> bool:
    """True when a document with ``key`` belongs to the capped sample."""
    return cutoff is None or key <= cutoff


@dataclass(frozen=True)
class PointsTask:
    """One shard's training documents: store their split points (``keys``) or, given
    ``point``, return the ids of those exactly at it."""

    shard: str
    threshold: float       # the shard's slice's split threshold
    seed: int
    keys: str = ""
    point: float = 0.0

    @property
    def name(self) -> str:
        return self.shard


def _training_points(task: PointsTask) -> Iterable[tuple[float, str]]:
    for ids in shard_ids(task.shard):
        for doc_id in ids:
            if not is_validation(doc_id, task.threshold, task.seed):
                yield split_point(doc_id, task.seed), doc_id


def training_points(task: PointsTask) -> int:
    """Write the shard's sorted training points to ``task.keys``; return how many."""
    points = np.fromiter((p for p, _ in _training_points(task)), dtype=np.float64)
    return write_keys(task.keys, points)


def ids_at_point(task: PointsTask) -> list[str]:
    """The sorted ids of the shard's training documents whose point is ``task.point``."""
    return sorted(i for p, i in _training_points(task) if p == task.point)


def partitioned_cutoff(shards: Sequence[Path], thresholds: dict[str, float], seed: int,
                       cap: int, work: Path, mapper: Mapper,
                       partitions: Sequence[str] = ()) -> Key | None:
    """:func:`cap_cutoff` over the training documents of ``shards``, as per-shard tasks
    (sorted point files under ``work``); None when every training document fits.
    ``partitions``: each shard's key in ``thresholds`` (default: its folder's name)."""
    if cap < 1:
        raise ValueError("cap must be >= 1")
    work.mkdir(parents=True, exist_ok=True)
    names = list(partitions) or [s.parent.name for s in shards]
    tasks = [PointsTask(str(s), thresholds[name], seed, keys=str(work / f"{i:06d}.keys"))
             for i, (s, name) in enumerate(zip(shards, names))]
    if sum(mapper(training_points, tasks)) <= cap:
        return None
    files = [t.keys for t in tasks]
    (key,) = select_keys(files, [cap - 1], mapper)
    below = int(count_at_or_below(files, [key - 1], mapper)[0]) if key else 0
    point = float(from_keys(np.array([key], dtype=np.uint64))[0])
    tied = heapq.merge(*mapper(ids_at_point, [PointsTask(t.shard, t.threshold, seed, point=point)
                                              for t in tasks]))
    return sample_key(point, list(tied)[cap - 1 - below])
