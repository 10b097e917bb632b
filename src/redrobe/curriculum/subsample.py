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
"""

from __future__ import annotations

import heapq
from typing import Iterable

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
