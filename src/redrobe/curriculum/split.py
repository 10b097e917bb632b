"""Deterministic train/validation split by a hash of the document id.

Each document gets a uniform *split point* in [0, 1) from a hash of (seed, id); it is
held out for validation when its point is below its partition's *threshold* (a
partition is a slice, or a language ``<slice>/<language>`` of a slice ingest routed by
language: each is evaluated on its own). The threshold is ``shared.val_fraction``,
raised for a partition just enough that at least ``shared.min_val_docs`` of its
documents are held out (a small one would otherwise often get none, and could not be
evaluated). A slice always keeps a training document; a language partition may give
even its only document to validation, since its slice trains on its other languages:
a language with one document is then scored zero-shot. The thresholds depend only on
the ids of the deduplicated corpus, so the split is made before training and every
stage (tokenize, bucket, lora) agrees on it without passing lists of ids around:

    thresholds = split_thresholds(shards, fraction=0.05, seed=1234, min_docs=1, root=root)
    is_validation(doc.id, thresholds[partition_of(shard, root)], seed=1234)

:func:`split_thresholds` never gathers the ids: one :func:`split_partial` task per
shard returns its document count, how many points fall below ``fraction`` and its
``min_docs`` smallest points, and :func:`merge_thresholds` applies the rule of
:func:`slice_threshold` to the merged partials (the same thresholds, exactly).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow.parquet as pq

from redrobe.documents import partition_of, split_partition
from redrobe.errors import InputError

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
#: ids read from a shard at once by a split task
ID_BATCH = 8192


def split_point(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) derived from the id and the seed."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_validation(doc_id: str, threshold: float, seed: int) -> bool:
    """True when the document belongs to the held-out validation split."""
    return split_point(doc_id, seed) < threshold


def slice_threshold(ids: Iterable[str], fraction: float, seed: int, min_docs: int,
                    keep_training: bool = True) -> float:
    """``fraction``, or just above the ``min_docs``-th smallest split point if that is higher.

    With ``keep_training`` (a slice) at least one training document stays: ``min_docs``
    is capped at ``len(ids) - 1``; a language partition is capped at ``len(ids)``.
    """
    points = sorted(split_point(i, seed) for i in ids)
    k = min(min_docs, len(points) - keep_training)
    if k <= 0 or sum(p < fraction for p in points) >= k:
        return fraction
    return math.nextafter(points[k - 1], 1.0)


def keeps_training(partition: str) -> bool:
    """Whether a partition must keep a training document: a slice must, a language
    partition need not (its slice's other languages train the model)."""
    return split_partition(partition)[1] is None


def thresholds_for(ids_by_slice: Mapping[str, Iterable[str]], fraction: float, seed: int,
                   min_docs: int) -> dict[str, float]:
    return {name: slice_threshold(ids, fraction, seed, min_docs, keeps_training(name))
            for name, ids in sorted(ids_by_slice.items())}


@dataclass(frozen=True)
class SplitTask:
    """One shard's share of the split thresholds (``partition``: "" for its folder)."""

    shard: str
    fraction: float
    seed: int
    min_docs: int
    partition: str = ""

    @property
    def name(self) -> str:
        return self.shard


@dataclass(frozen=True)
class SplitPartial:
    """What the threshold rule needs of one shard: bounded by ``min_docs``."""

    slice: str
    docs: int
    below: int                     # points below ``fraction``
    smallest: tuple[float, ...]    # the ``min_docs`` smallest points, ascending


def shard_ids(shard: str | Path) -> Iterable[list[str]]:
    """The ids of a shard, :data:`ID_BATCH` at a time; InputError if unreadable."""
    try:
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=ID_BATCH, columns=["id"]):
            yield batch.column(0).to_pylist()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{shard}: cannot read document ids ({exc})") from exc


def split_partial(task: SplitTask) -> SplitPartial:
    docs = below = 0
    smallest: list[float] = []
    for ids in shard_ids(task.shard):
        points = [split_point(i, task.seed) for i in ids]
        docs += len(points)
        below += sum(p < task.fraction for p in points)
        smallest = heapq.nsmallest(task.min_docs, smallest + points)
    return SplitPartial(task.partition or Path(task.shard).parent.name, docs, below, tuple(smallest))


def merge_thresholds(partials: Iterable[SplitPartial], fraction: float,
                     min_docs: int) -> dict[str, float]:
    """:func:`thresholds_for` from per-shard partials instead of every id."""
    by_slice: dict[str, list[SplitPartial]] = defaultdict(list)
    for p in partials:
        by_slice[p.slice].append(p)
    out = {}
    for name, parts in sorted(by_slice.items()):
        n, below = sum(p.docs for p in parts), sum(p.below for p in parts)
        smallest = heapq.nsmallest(min_docs, (x for p in parts for x in p.smallest))
        k = min(min_docs, n - keeps_training(name))
        out[name] = fraction if k <= 0 or below >= k else math.nextafter(smallest[k - 1], 1.0)
    return out


def split_thresholds(shards: Iterable[Path], fraction: float, seed: int, min_docs: int,
                     mapper: Mapper | None = None, root: str | Path | None = None) -> dict[str, float]:
    """Per-partition thresholds for shards ``<root>/<partition>/part-*.parquet`` (one task
    per shard, mapped by ``mapper``: an executor's ``map``; in this process when None).
    Without ``root`` a shard's partition is its folder's name (a slice)."""
    tasks = [SplitTask(str(s), fraction, seed, min_docs, partition_of(s, root) if root else "")
             for s in shards]
    partials = (mapper or _local_map)(split_partial, tasks)
    return merge_thresholds(partials, fraction, min_docs)


def _local_map(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
    return [fn(t) for t in tasks]
