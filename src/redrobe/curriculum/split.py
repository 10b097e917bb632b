"""Deterministic train/validation split by a hash of the document id.

Each document gets a uniform *split point* in [0, 1) from a hash of (seed, id); it is
held out for validation when its point is below its slice's *threshold*. The
threshold is ``shared.val_fraction``, raised for a slice just enough that at least
``shared.min_val_docs`` of its documents are held out (a small slice would otherwise
often get none, and could not be evaluated). The thresholds depend only on the ids of
the deduplicated corpus, so the split is made before training and every stage
(tokenize, bucket, lora) agrees on it without passing lists of ids around:

    thresholds = split_thresholds(shards, fraction=0.05, seed=1234, min_docs=1)
    is_validation(doc.id, thresholds[doc.source], seed=1234)
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow.parquet as pq


def split_point(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) derived from the id and the seed."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_validation(doc_id: str, threshold: float, seed: int) -> bool:
    """True when the document belongs to the held-out validation split."""
    return split_point(doc_id, seed) < threshold


def slice_threshold(ids: Iterable[str], fraction: float, seed: int, min_docs: int) -> float:
    """``fraction``, or just above the ``min_docs``-th smallest split point if that is higher.

    A slice always keeps at least one training document: ``min_docs`` is capped at
    ``len(ids) - 1``.
    """
    points = sorted(split_point(i, seed) for i in ids)
    k = min(min_docs, len(points) - 1)
    if k <= 0 or sum(p < fraction for p in points) >= k:
        return fraction
    return math.nextafter(points[k - 1], 1.0)


def thresholds_for(ids_by_slice: Mapping[str, Iterable[str]], fraction: float, seed: int,
                   min_docs: int) -> dict[str, float]:
    return {name: slice_threshold(ids, fraction, seed, min_docs)
            for name, ids in sorted(ids_by_slice.items())}


def split_thresholds(shards: Iterable[Path], fraction: float, seed: int,
                     min_docs: int) -> dict[str, float]:
    """Per-slice thresholds for shards ``<root>/<slice>/part-*.parquet`` (reads ids only)."""
    ids: dict[str, list[str]] = defaultdict(list)
    for shard in shards:
        ids[Path(shard).parent.name] += pq.read_table(shard, columns=["id"])["id"].to_pylist()
    return thresholds_for(ids, fraction, seed, min_docs)
