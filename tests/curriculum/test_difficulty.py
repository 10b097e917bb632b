"""Difficulty scores (the registry of bucket.score) against hand-computed values."""

import math

import numpy as np
import pytest

from redrobe.curriculum.difficulty import (
    BIGRAM_TABLE,
    COMPRESSION_RATIO,
    LENGTH,
    RARE_WORD_RATE,
    REFERENCE_PPL,
    SCORES,
    UNIGRAM_SURPRISAL,
    BigramModel,
    ScoreOptions,
    TrainStats,
    bigram_counts,
    compression_ratio,
    fit_scorer,
    mean_surprisal,
    rare_rate,
    rare_token_mask,
    surprisal_table,
    unigram_counts,
)


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


# ------------------------------------------------------------------ the score registry

NAN = float("nan")


def test_registry_names_match_the_params_choices():
    from typing import get_args, get_type_hints

    from redrobe.config import Bucket
    assert set(SCORES) == {UNIGRAM_SURPRISAL, LENGTH, RARE_WORD_RATE, COMPRESSION_RATIO,
                           REFERENCE_PPL}
    assert set(get_args(get_type_hints(Bucket)["score"])) == set(SCORES)


def test_length_counts_tokens():
    score = fit_scorer(LENGTH, TrainStats(counts=np.array([1, 1])))
    assert score(np.array([0, 1, 1]), NAN) == 3.0
    assert score(np.array([0]), NAN) < score(np.array([0, 0, 0, 0]), NAN)


def test_rare_mask_keeps_the_head_covering_one_minus_rare_mass():
    # 100 tokens: id 0 has 70, id 1 has 20, id 2 has 9, id 3 has 1, id 4 unseen
    counts = np.array([70, 20, 9, 1, 0])
    assert rare_token_mask(counts, 0.1).tolist() == [False, False, True, True, True]
    assert rare_token_mask(counts, 0.05).tolist() == [False, False, False, True, True]
    assert rare_token_mask(counts, 0.5).tolist() == [False, True, True, True, True]


def test_rare_word_rate_is_the_share_of_rare_tokens():
    counts = np.array([70, 20, 9, 1, 0])
    score = fit_scorer(RARE_WORD_RATE, TrainStats(counts=counts), ScoreOptions(rare_mass=0.1))
    assert score(np.array([0, 1, 0, 1]), NAN) == 0.0
    assert score(np.array([0, 2, 3, 4]), NAN) == 0.75
    assert rare_rate(np.array([3]), rare_token_mask(counts, 0.1)) == 1.0


def test_compression_ratio_of_repetitive_text_is_lower():
    repetitive = ("the cat sat on the mat. " * 40).encode()
    varied = np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes()
    assert compression_ratio(repetitive) < 0.1
    assert compression_ratio(varied) > 1.0   # random bytes do not compress: zlib adds a header
    assert compression_ratio(repetitive) == compression_ratio(repetitive)   # deterministic
    score = fit_scorer(COMPRESSION_RATIO, TrainStats(counts=np.array([1])))
    assert score(np.array([0]), 0.25) == 0.25
    with pytest.raises(ValueError, match="not computed"):
        score(np.array([0]), NAN)
    with pytest.raises(ValueError):
        compression_ratio(b"")


def test_bigram_counts_stay_inside_documents():
    table, left = bigram_counts([np.array([0, 1, 0, 1]), np.array([1, 0])], vocab_size=3)
    assert table.size == 9                                  # exact: V² fits the table
    assert (table[0 * 3 + 1], table[1 * 3 + 0], table[1 * 3 + 1]) == (2, 2, 0)
    assert left.tolist() == [2, 2, 0] and table.sum() == 4  # no pair across documents


def test_reference_ppl_by_hand():
    # training: "0 1" twice -> unigram add-one p = (2+1)/(4+2), (2+1)/(4+2) = 1/2, 1/2
    counts = np.array([2, 2])
    stats = TrainStats(counts=counts, bigrams=bigram_counts([np.array([0, 1])] * 2, 2))
    score = fit_scorer(REFERENCE_PPL, stats, ScoreOptions(reference_lambda=0.5))
    # p(0) = 1/2 ; p(1|0) = .5 * 2/2 + .5 * 1/2 = 3/4  -> mean bits = (1 + log2(4/3)) / 2
    assert score(np.array([0, 1]), NAN) == pytest.approx((1 + math.log2(4 / 3)) / 2)
    # p(0|1) = .5 * 0 + .5 * 1/2 = 1/4: the unseen transition is harder
    assert score(np.array([1, 0]), NAN) == pytest.approx((1 + 2) / 2)
    assert score(np.array([1, 0]), NAN) > score(np.array([0, 1]), NAN)


def test_reference_ppl_hashes_large_vocabularies_into_a_fixed_table():
    v = 5000                                              # V² > BIGRAM_TABLE
    slots = BigramModel.slot(np.array([4999, 0]), np.array([4999, 1]), v)
    assert BigramModel.slots(v) == BIGRAM_TABLE and (0 <= slots).all() and (slots < BIGRAM_TABLE).all()
    with pytest.raises(ValueError, match="bigram"):
        fit_scorer(REFERENCE_PPL, TrainStats(counts=np.ones(4, dtype=np.int64)))


def test_unknown_score_is_rejected():
    with pytest.raises(ValueError, match="unknown difficulty score"):
        fit_scorer("perplexity_of_gpt5", TrainStats(counts=np.array([1])))
