"""Candidate pairs and connected components (redrobe.dedup.clusters)."""

import numpy as np

from redrobe.dedup.clusters import UnionFind, equal_key_groups, equal_key_pairs


def test_chain_is_one_cluster_rooted_at_the_first():
    # A~B and B~C (A and C never compared) -> {A, B, C} with A kept; D alone.
    uf = UnionFind(4)
    uf.union_pairs(np.array([0, 1]), np.array([1, 2]))
    assert uf.roots().tolist() == [0, 0, 0, 3]


def test_root_is_smallest_whatever_the_link_order():
    uf = UnionFind(6)
    for a, b in [(5, 4), (4, 3), (1, 2), (3, 2)]:
        uf.union(a, b)
    assert uf.roots().tolist() == [0, 1, 1, 1, 1, 1]
    assert uf.find(5) == 1


def test_equal_key_pairs_chain_each_run():
    members = np.array([0, 1, 2, 3, 4, 5])
    keys = np.array([7, 9, 7, 8, 7, 9], dtype=np.uint64)
    a, b = equal_key_pairs([keys], members)
    assert sorted(zip(a.tolist(), b.tolist())) == [(0, 2), (1, 5), (2, 4)]


def test_equal_key_pairs_need_every_column_equal():
    members = np.array([10, 11, 12])
    scope = np.array([0, 1, 1])
    keys = np.array([5, 5, 5], dtype=np.uint64)
    a, b = equal_key_pairs([scope, keys], members)
    assert list(zip(a.tolist(), b.tolist())) == [(11, 12)]


def test_equal_key_pairs_empty():
    a, b = equal_key_pairs([np.array([], dtype=np.uint64)], np.array([], dtype=np.int64))
    assert len(a) == len(b) == 0


def test_groups_are_the_buckets_of_equal_keys():
    keys = np.array([7, 3, 7, 9, 3, 7, 1], dtype=np.uint64)
    members = np.array([10, 11, 12, 13, 14, 15, 16])
    groups = equal_key_groups([keys], members)
    assert [g.tolist() for g in groups] == [[10, 12, 15], [11, 14]]
    scope = np.array([0, 0, 1, 0, 0, 1, 0])
    assert [g.tolist() for g in equal_key_groups([scope, keys], members)] == [[11, 14], [12, 15]]
    assert equal_key_groups([keys[:1]], members[:1]) == []
