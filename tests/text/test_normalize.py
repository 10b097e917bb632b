"""Text views and the n-gram repetition signals against hand-computed values.

    pytest tests/text/test_normalize.py -q
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter

import pytest

from redrobe.text.normalize import (
    normalize_unicode,
    normalized_text,
    normalized_words,
    raw_words,
    strip_control_chars,
)
from redrobe.text.signals import NgramIndex

SAMPLE = "Héllo,   WORLD!\n\tIt's  café-time...  “Quoted” — done."


def test_normalized_text_hand_computed() -> None:
    # ASCII punctuation out (Unicode quotes and the em dash stay), lowercase,
    # whitespace runs -> one space, ends stripped, then NFD (é -> e + U+0301)
    expected = "he\u0301llo world its cafe\u0301time “quoted” — done"
    assert normalized_text(SAMPLE) == expected
    assert normalized_words(SAMPLE) == ["he\u0301llo", "world", "its", "cafe\u0301time",
                                        "“quoted”", "—", "done"]


def test_raw_words_are_wordpunct_tokens() -> None:
    assert raw_words(SAMPLE) == ["Héllo", ",", "WORLD", "!", "It", "'", "s", "café", "-", "time",
                                 "...", "“", "Quoted", "”", "—", "done", "."]


def test_normalize_unicode_forms() -> None:
    decomposed = "cafe\u0301 \ufb01"           # e + combining acute, "fi" ligature
    assert normalize_unicode(decomposed, "NFC") == "café \ufb01"
    assert normalize_unicode(decomposed, "NFKC") == "café fi"
    assert normalize_unicode("café", "NFD") == "cafe\u0301"
    assert normalize_unicode("plain ascii", "NFC") == "plain ascii"
    with pytest.raises(ValueError, match="NFX"):
        normalize_unicode("x", "NFX")


def test_top_ngram_hand_computed() -> None:
    # "a bb" and "ccc dddd" both occur twice: the first seen wins the tie (Counter
    # order, as RedPajama-V2), so 3 chars x 2 / 20 chars, not 7 x 2 / 20
    index = NgramIndex(["a", "bb", "a", "bb", "ccc", "dddd", "ccc", "dddd"])
    assert index.total_chars == 20
    assert index.frac_chars_top_ngram(2) == pytest.approx(0.3)
    assert index.frac_chars_top_ngram(1) == pytest.approx(1 * 2 / 20)   # all four words x2: "a" first
    assert index.frac_chars_top_ngram(3) == 0.0                          # every 3-gram occurs once


def test_dupe_ngrams_hand_computed() -> None:
    # 2-grams: (the cat) x2 at 0 and 2 -> words 0..3 covered; "sat" is not
    words = ["the", "cat", "the", "cat", "sat"]
    index = NgramIndex(words)
    assert index.frac_chars_dupe_ngrams(2) == pytest.approx(12 / 15)
    assert index.frac_chars_dupe_ngrams(3) == 0.0          # (the cat the), (cat the cat), (the cat sat)
    assert index.frac_chars_dupe_ngrams(6) == 0.0          # fewer words than n
    assert index.frac_chars_top_ngram(2) == pytest.approx(6 * 2 / 15)
    assert NgramIndex([]).frac_chars_dupe_ngrams(5) == 0.0
    assert NgramIndex([]).frac_chars_top_ngram(2) == 0.0


def _reference_top(words: list[str], n: int) -> float:
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    common = Counter(grams).most_common(1)
    if not common or common[0][1] <= 1:
        return 0.0
    gram, count = common[0]
    return round(sum(map(len, gram)) * count / sum(map(len, words)), 8)


def _reference_dupe(words: list[str], n: int) -> float:
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered[i:i + n] = [True] * n
    total = sum(map(len, words))
    return round(sum(len(w) for w, c in zip(words, covered) if c) / total, 8) if total else 0.0


def test_signals_match_a_direct_implementation_of_the_definitions() -> None:
    rng = random.Random(7)
    vocab = ["a", "to", "the", "river", "valley", "of", "stone", "x"]
    for trial in range(30):
        words = [rng.choice(vocab[: 2 + trial % 7]) for _ in range(rng.randint(0, 60))]
        index = NgramIndex(words)
        for n in (2, 3, 4, 1, 5, 7, 10):   # out of order on purpose: the index restarts
            assert index.frac_chars_top_ngram(n) == _reference_top(words, n), (words, n)
            assert index.frac_chars_dupe_ngrams(n) == _reference_dupe(words, n), (words, n)


def test_nfd_is_applied_last() -> None:
    # lowercasing "É" then NFD gives e + U+0301, the same as NFD of "é"
    assert normalized_text("É") == unicodedata.normalize("NFD", "é")


def _reference_normalized(text: str) -> str:
    """RedPajama-V2's normalize(), step by step (utilities/text/normalization.py)."""
    import re
    import string

    text = text.translate(str.maketrans("", "", string.punctuation)).lower()
    return unicodedata.normalize("NFD", re.sub(r"\s+", " ", text.strip()))


@pytest.mark.parametrize("text", ["", "  \t\n ", "a\x1cb\x1fc", "x\u00a0y\u2003z\u3000w", "Ünïcödé  ÉTÉ!",
                                  "İstanbul\r\nDİŞ", "tab\tsep\u2028line\u0085end"])
def test_normalized_text_equals_the_reference_steps(text: str) -> None:
    assert normalized_text(text) == _reference_normalized(text)


# characters where a faster path could go wrong: whitespace of every kind, combining
# marks after a space, NFD singletons that turn into ASCII (";" from U+037E, "K" from
# the Kelvin sign) or into whitespace (U+2000 -> U+2002), multi-byte text, a surrogate
_TRICKY = ["a", "É", "é", "e\u0301", " ", "\t", "\n", "\u00a0", "\u2000", "\u3000", "\x1c", "\x85",
           "\u0301", "\u037e", "\u212a", "\u1fef", ";", "...", "-", "“", "…", "ß", "İ", "\ud800", "日本"]


def test_normalized_words_equal_the_split_of_normalized_text() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        text = "".join(rng.choice(_TRICKY) for _ in range(rng.randint(0, 12)))
        assert normalized_words(text) == normalized_text(text).split(), repr(text)
        assert normalized_text(text) == _reference_normalized(text), repr(text)


def test_strip_control_chars_keeps_tab_newline_and_carriage_return():
    controls = "".join(map(chr, range(32)))
    assert strip_control_chars(f"a{controls}b\x7f\u0085é") == ("a\t\n\rb\x7f\u0085é", 29)
    text = "plain text\r\n"
    assert strip_control_chars(text)[0] is text  # nothing to remove: no copy

