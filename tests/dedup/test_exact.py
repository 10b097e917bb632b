"""Exact dedup key: digest of the normalized text (redrobe.dedup.exact)."""

import pytest

from redrobe.dedup.exact import DIGEST_BYTES, content_digest

BASE = "The cat sat on the mat. It was a sunny day."


@pytest.mark.parametrize("variant", [
    "the cat sat on the mat it was a sunny day",          # case and punctuation
    "The   cat sat on the mat.\n\nIt was a  sunny day.",   # whitespace runs
    "  THE CAT SAT ON THE MAT!!! It was a sunny day...  ",  # both, plus ends
])
def test_case_whitespace_punctuation_variants_share_the_digest(variant):
    assert content_digest(variant) == content_digest(BASE)


def test_different_words_differ():
    assert content_digest("The cat sat on the hat. It was a sunny day.") != content_digest(BASE)
    assert content_digest("The cat sat on the mat.") != content_digest(BASE)


def test_digest_size():
    assert len(content_digest(BASE)) == DIGEST_BYTES


@pytest.mark.parametrize("text", ["", "   \n", "!!! ... ---"])
def test_empty_normalized_text_has_no_digest(text):
    assert content_digest(text) is None
