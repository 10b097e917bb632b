"""Duplicate clusters: candidate pairs from equal keys, connected components by union-find.

Documents are numbered 0..N-1 in (slice, shard, row) order. Any two documents that
share a key (an exact digest, or a MinHash band key in the same band) are linked;
the connected components of those links are the duplicate clusters (RedPajama-V2
does the same), and every document's root is the smallest index of its cluster,
i.e. the first document in corpus order, which is the one kept:

    uf = UnionFind(4)
    uf.union_pairs(np.array([0, 1]), np.array([1, 2]))   # A~B, B~C
    uf.roots()                                            # array([0, 0, 0, 3])

Pairs come from sorting keys (numpy), not from dict buckets, so the index costs a
few bytes per document and band.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def equal_key_pairs(columns: Sequence[np.ndarray], members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b), a < b, of documents that agree on every key column.

    ``columns`` are equal-length 1-D arrays, one value per entry of ``members``
    (document indices). Within a run of equal keys only consecutive members are
    paired: the chain connects the whole run without listing all of its pairs.
    """
    if len(members) < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    m, same = _sorted_runs(columns, members)
    return m[:-1][same], m[1:][same]


def _sorted_runs(columns: Sequence[np.ndarray], members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Members sorted by (keys, index), and whether each one's keys equal the previous one's."""
    # np.lexsort sorts by the last key first: keys, then document index.
    order = np.lexsort((members, *reversed(columns)))
    same = np.ones(len(members) - 1, dtype=bool)
    for col in columns:
        c = col[order]
        same &= c[1:] == c[:-1]
    return members[order].astype(np.int64), same


def equal_key_groups(columns: Sequence[np.ndarray], members: np.ndarray) -> list[np.ndarray]:
    """Every run of two or more ``members`` that agree on all key columns (a bucket),
    each as an ascending array of document indices; buckets in order of first member."""
    if len(members) < 2:
        return []
    m, same = _sorted_runs(columns, members)
    # a run starts where "same as previous" turns on and ends where it turns off
    edges = np.flatnonzero(np.diff(np.concatenate([[False], same, [False]]).astype(np.int8)))
    groups = [m[lo:hi + 1] for lo, hi in zip(edges[0::2].tolist(), edges[1::2].tolist())]
    return sorted(groups, key=lambda g: int(g[0]))


class UnionFind:
    """Disjoint sets over 0..n-1 whose root is always the smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = int(parent[i])
        return int(i)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller index wins, so the root is the first document in corpus order
            # whatever order the links arrive in.
            self.parent[max(ra, rb)] = min(ra, rb)

    def union_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist()):
            self.union(x, y)

    def roots(self) -> np.ndarray:
        """(n,) int64: the root of every element (pointer jumping, vectorized)."""
        parent = self.parent.copy()
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                return parent
            parent = grand
