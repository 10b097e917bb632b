"""Curriculum buckets: split training documents into difficulty quantiles.

The ``num_buckets - 1`` inner edges are the quantiles k/num_buckets of the training
scores (numpy's default linear interpolation). Bucket 0 is the easiest:

    bucket(score) = number of edges strictly below score

so bucket k holds the scores in (edge[k-1], edge[k]] and a score equal to an edge
stays in the lower bucket (a quantile q_k has at least k/N of the mass at or below
it). Every score of bucket k is <= every score of bucket k+1. With heavy ties a
bucket can be empty; that is reported, not hidden.

    edges = quantile_edges(scores, 4)
    ids = assign_buckets(scores, edges)        # array of 0..3

When the scores are spread over many files, :func:`edge_ranks` names the order
statistics the edges need and :func:`edges_from_order_stats` interpolates them with
numpy's own arithmetic, so the edges are bit-identical to :func:`quantile_edges`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def quantile_edges(scores: Sequence[float] | np.ndarray, num_buckets: int) -> list[float]:
    """The ``num_buckets - 1`` inner bucket edges: quantiles k/num_buckets of ``scores``."""
    if num_buckets < 1:
        raise ValueError("num_buckets must be >= 1")
    scores = np.asarray(scores, dtype=np.float64)
    if num_buckets == 1:
        return []
    if scores.size == 0:
        raise ValueError("quantile edges need at least one score")
    qs = np.arange(1, num_buckets) / num_buckets
    return [float(x) for x in np.quantile(scores, qs)]


def edge_ranks(n: int, num_buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``n`` scores: the 0-based ranks below and above each inner edge, and the
    interpolation weight (numpy's "linear" method: virtual index ``(n - 1) q``)."""
    qs = np.arange(1, num_buckets) / num_buckets
    virtual = (n - 1) * qs
    below = np.floor(virtual)
    top = virtual >= n - 1
    below[top] = -1          # numpy takes the last value there (and weighs by virtual + 1)
    gamma = virtual - below
    below_rank = np.where(top, n - 1, below).astype(np.int64)
    above_rank = np.where(top, n - 1, below + 1).astype(np.int64)
    return below_rank, above_rank, gamma


def edges_from_order_stats(below: Sequence[float], above: Sequence[float],
                           gamma: np.ndarray) -> list[float]:
    """The edges from the scores at :func:`edge_ranks` (numpy's ``_lerp``, op for op)."""
    a, b = np.asarray(below, dtype=np.float64), np.asarray(above, dtype=np.float64)
    diff = b - a
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return [float(x) for x in out]


def assign_buckets(scores: Sequence[float] | np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index of each score: how many edges lie strictly below it."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64),
                           np.asarray(scores, dtype=np.float64), side="left").astype(np.int64)


def bucket_name(index: int) -> str:
    """``bucket-00``, ``bucket-01``, ... (two digits; sorts in curriculum order)."""
    return f"bucket-{index:02d}"
