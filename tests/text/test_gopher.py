"""Gopher rule internals against direct implementations of their definitions, and the
distinct-stop-word rule (the exact reasons per rule are in tests/text/test_rules.py).

    pytest tests/text/test_gopher.py -q
"""

from __future__ import annotations

import random
import re
import string

import pytest

from redrobe.config import GopherQualityParams
from redrobe.text import gopher
from redrobe.text.gopher import STOP_WORDS, _lines, _paragraphs, repeated_items, word_stats

FILLER = "Bright green apples grow quickly near quiet mountain villages"   # no stop word


def _quality(text: str) -> str | None:
    return gopher.GopherQualityRules(GopherQualityParams()).check(text).reason


def test_stop_words_are_counted_distinct() -> None:
    # Gopher keeps a document with "at least two of" the stop words: "the" 14 times is one
    one_word = " ".join(f"{FILLER} the." for _ in range(7))
    assert word_stats(one_word)[4] == 1
    assert _quality(one_word) == gopher.GOPHER_TOO_FEW_STOP_WORDS
    two_words = one_word + " And (with"      # "And" is case-sensitive: only "with" counts
    assert word_stats(two_words)[4] == 2
    assert _quality(two_words) is None


def _reference_word_stats(text: str) -> tuple[int, int, int, int, int]:
    """The definitions, token by token."""
    edge = string.punctuation + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"
    tokens = text.split()
    words = [t for t in tokens if re.search(r"[^\W_]", t)]
    cores = [w.strip(edge) for w in words]
    return (len(tokens), len(words), sum(map(len, cores)),
            sum(1 for t in tokens if re.search(r"[^\W\d_]", t)), len(STOP_WORDS & set(cores)))


def test_word_stats_match_the_definitions() -> None:
    rng = random.Random(3)
    pieces = ["the", "The", "and", "with,", "(of", "to.", "word", "café", "x2", "42", "...", "—", "#",
              "“quoted”", "_", "_a", "don't", "e.g.", "\u00e9t\u00e9", "--", "IV.", "…that"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice([" ", "  ", "\n", "\t", ""])
                       for _ in range(rng.randint(0, 40)))
        assert word_stats(text) == _reference_word_stats(text), text


def test_paragraph_and_line_splits_equal_the_regexes() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice("ab\n\n \r") for _ in range(rng.randint(0, 16))).strip()
        assert _paragraphs(text) == re.split(r"\n{2,}", text), repr(text)
        assert _lines(text) == re.split(r"\n+", text), repr(text)


@pytest.mark.parametrize(("items", "expected"), [
    ([], (0, 0)), (["a", "bb"], (0, 0)), (["ab", "c", "ab", "ab", "c"], (3, 5)), ([""], (0, 0)),
])
def test_repeats_counts_items_after_the_first(items: list[str], expected: tuple[int, int]) -> None:
    assert repeated_items(items) == expected
