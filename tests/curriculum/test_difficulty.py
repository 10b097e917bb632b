"""Unigram-surprisal difficulty against hand-computed values."""

import math

import numpy as np
import pytest

from redrobe.curriculum.difficulty import mean_surprisal, surprisal_table, unigram_counts


def test_unigram_counts_over_a_stream_of_documents():
    counts = unigram_counts([np.array([0, 0, 1]), np.array([0]), np.array([], dtype=np.int64)], 4)
    assert counts.tolist() == [3, 1, 0, 0]


def test_add_one_smoothed_surprisal_by_hand():
    # N = 4 tokens, V = 4: p = (3+1)/8, (1+1)/8, (0+1)/8, (0+1)/8 -> 1, 2, 3, 3 bits
    table = surprisal_table(np.array([3, 1, 0, 0]))
    assert table.tolist() == [1.0, 2.0, 3.0, 3.0]


def test_document_score_is_the_mean_surprisal_in_bits():
    table = surprisal_table(np.array([3, 1, 0, 0]))
    assert mean_surprisal(np.array([0, 1, 2]), table) == pytest.approx((1 + 2 + 3) / 3)
    # rarer tokens make a harder document
    assert mean_surprisal(np.array([2, 3]), table) > mean_surprisal(np.array([0, 0]), table)


def test_unseen_tokens_have_finite_surprisal():
    table = surprisal_table(np.array([10, 0, 0]))
    assert table[1] == pytest.approx(math.log2(13))
    assert np.isfinite(table).all()


def test_empty_document_is_rejected():
    with pytest.raises(ValueError):
        mean_surprisal(np.array([], dtype=np.int64), surprisal_table(np.array([1, 1])))
