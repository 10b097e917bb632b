"""NgramIndex's repeated-n-gram chain against a direct count of the n-grams.

    pytest tests/text/test_signals.py -q
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from redrobe.text.signals import NgramIndex


def _grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def test_repeated_are_exactly_the_ngrams_seen_twice() -> None:
    rng = random.Random(11)
    for trial in range(60):
        vocab = ["a", "b", "cc", "d", "the", "of"][: 1 + trial % 6]
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 50))]
        index = NgramIndex(words)
        for n in (3, 1, 2, 5, 4, 12):   # out of order on purpose: the cache serves any n
            grams = _grams(words, n)
            counts = Counter(grams)
            starts, ids = index.repeated(n)
            assert starts.tolist() == [i for i, g in enumerate(grams) if counts[g] > 1]
            for a in range(len(starts)):     # equal ids iff equal n-grams
                for b in range(len(starts)):
                    assert (ids[a] == ids[b]) == (grams[starts[a]] == grams[starts[b]])


def test_repeated_agrees_with_the_dense_ids() -> None:
    words = ["to", "be", "or", "not", "to", "be", "that", "is", "the", "question", "to", "be", "or", "not"]
    index = NgramIndex(words)
    for n in range(1, 6):
        full = index.ids(n)
        starts, _ = index.repeated(n)
        assert starts.tolist() == np.flatnonzero(np.bincount(full)[full] > 1).tolist()


def test_degenerate_inputs() -> None:
    assert NgramIndex([]).repeated(3)[0].size == 0
    empty_words = NgramIndex(["", "", ""])   # no characters: the fractions are 0, not NaN
    assert empty_words.frac_chars_top_ngram(1) == 0.0
    assert empty_words.frac_chars_dupe_ngrams(2) == 0.0
    with pytest.raises(ValueError):
        NgramIndex(["a"]).repeated(0)


def test_word_ids_are_dense_in_first_seen_order() -> None:
    # rpv2 counts distinct words with np.bincount(word_ids): ids must be 0..V-1
    index = NgramIndex(["b", "a", "b", "c", "a", "dd"])
    assert index.word_ids.tolist() == [0, 1, 0, 2, 1, 3]
    assert index.lengths.tolist() == [1, 1, 1, 1, 1, 2]
    assert index.total_chars == 7
    assert NgramIndex([]).word_ids.size == 0
