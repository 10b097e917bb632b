"""Quantile bucket edges and assignment (bucket 0 = easiest)."""

import numpy as np
import pytest

from redrobe.curriculum.buckets import assign_buckets, bucket_name, quantile_edges


def test_quantile_edges_by_hand():
    # numpy linear quantiles of 1..8: 1 + 7q
    assert quantile_edges(np.arange(1, 9), 4) == [2.75, 4.5, 6.25]


def test_assignment_puts_two_scores_in_each_quartile():
    scores = np.arange(1, 9, dtype=float)
    assert assign_buckets(scores, quantile_edges(scores, 4)).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_score_on_an_edge_stays_in_the_lower_bucket():
    assert assign_buckets([1.0, 2.0, 2.0000001, 3.0], [2.0]).tolist() == [0, 0, 1, 1]


def test_one_bucket_has_no_edges():
    assert quantile_edges([3.0, 1.0], 1) == []
    assert assign_buckets([3.0, 1.0], []).tolist() == [0, 0]


def test_buckets_are_ordered_and_balanced():
    scores = np.random.default_rng(0).gamma(2.0, size=1001)
    edges = quantile_edges(scores, 5)
    ids = assign_buckets(scores, edges)
    groups = [scores[ids == k] for k in range(5)]
    for lower, upper in zip(groups, groups[1:]):
        assert lower.max() <= upper.min()
    assert [len(g) for g in groups] == [201, 200, 200, 200, 200]


def test_ties_can_leave_a_bucket_empty_but_never_misorder():
    scores = np.array([1.0] * 6 + [2.0, 3.0])
    edges = quantile_edges(scores, 4)
    assert edges == [1.0, 1.0, 1.25]  # 6 of 8 scores tie at 1.0
    assert assign_buckets(scores, edges).tolist() == [0] * 6 + [3, 3]


def test_bad_arguments():
    with pytest.raises(ValueError):
        quantile_edges([1.0], 0)
    with pytest.raises(ValueError):
        quantile_edges([], 2)


def test_bucket_names_sort_in_curriculum_order():
    names = [bucket_name(k) for k in range(12)]
    assert names[0] == "bucket-00" and names == sorted(names)
