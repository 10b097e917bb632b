r"""Unicode normalization, control characters, and the RedPajama-V2 text views.

The ingest stage removes C0 control characters from every document it reads
(:func:`strip_control_chars`: NUL, ESC, form feed...; tab, line feed and carriage
return stay) and counts them. The clean stage applies :func:`normalize_unicode`
(``params.clean.normalization``) before any rule runs. The views below are the ones
RedPajama-V2 computes its quality signals on (docs/references.md, "RedPajama-V2 quality
signals"); dedup reuses them for exact hashing and MinHash shingles, so all stages
agree on what "the same text" means:

    normalized_text("Héllo,  WORLD!")     # "he\u0301llo world": no punctuation, lower, NFD
    normalized_words("It's a café-time.")  # ["its", "a", "cafe\u0301time"]
    raw_words("It's café-time...")         # ["It", "'", "s", "café", "-", "time", "..."]
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Literal, cast

#: the Unicode normalization forms ``params.clean.normalization`` may name
FORMS = ("NFC", "NFKC", "NFD", "NFKD")
_Form = Literal["NFC", "NFKC", "NFD", "NFKD"]

# RedPajama-V2 removes exactly the ASCII punctuation of ``string.punctuation``
# (utilities/text/normalization.py); Unicode punctuation such as "…" or "“" stays.
# Deleting ASCII bytes from UTF-8 equals deleting those characters from the str (an
# ASCII byte never occurs inside a multi-byte sequence), and bytes.translate is ~25x
# faster than str.translate with a deletion table.
_ASCII_PUNCTUATION = string.punctuation.encode("ascii")
# nltk's WordPunctTokenizer pattern: runs of word characters, or runs of anything
# that is neither a word character nor whitespace.
_WORD_PUNCT = re.compile(r"\w+|[^\w\s]+")
# C0 controls have no place in training text (a NUL ends C strings in tokenizer and
# viewer tooling); tab, LF and CR are layout, and CR is kept as it always was
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def strip_control_chars(text: str) -> tuple[str, int]:
    """``text`` without C0 control characters other than tab, LF and CR; and how many
    were removed."""
    if _CONTROL_CHARS.search(text) is None:  # the common case: no copy
        return text, 0
    return _CONTROL_CHARS.subn("", text)


def normalize_unicode(text: str, form: str = "NFC") -> str:
    """``text`` in Unicode normal form ``form`` (one of :data:`FORMS`)."""
    if form not in FORMS:
        raise ValueError(f"unknown Unicode normalization form {form!r} (known: {list(FORMS)})")
    nf = cast(_Form, form)  # checked above
    # is_normalized is a fast check that avoids building a copy of already-normal text
    return text if unicodedata.is_normalized(nf, text) else unicodedata.normalize(nf, text)


def normalized_text(text: str) -> str:
    """RedPajama-V2 ``normalized`` view: drop ASCII punctuation → lowercase →
    collapse whitespace runs to one space (ends stripped) → NFD."""
    # str.split() splits on exactly the characters regex \s matches in str patterns,
    # so this equals re.sub(r"\s+", " ", text.strip()) at a fraction of the cost
    text = " ".join(_lowered_without_punctuation(text).split())
    return text if text.isascii() else unicodedata.normalize("NFD", text)


def normalized_words(text: str) -> list[str]:
    """RedPajama-V2 ``normalized_words``: the whitespace split of :func:`normalized_text`."""
    text = _lowered_without_punctuation(text)
    # NFD before the split gives the same words as NFD after collapsing whitespace:
    # whitespace is a starter (no reordering across it) and NFD maps no whitespace to
    # a non-space nor the reverse, so one split suffices
    if not text.isascii():
        text = unicodedata.normalize("NFD", text)
    return text.split()


def _lowered_without_punctuation(text: str) -> str:
    # surrogatepass: a lone surrogate (possible in a str) survives the round trip
    stripped = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_PUNCTUATION)
    return stripped.decode("utf-8", "surrogatepass").lower()


def raw_words(text: str) -> list[str]:
    """RedPajama-V2 ``raw_words``: WordPunct tokens of the raw text."""
    return _WORD_PUNCT.findall(text)
