"""Code rule set: RedPajama-1T's github filters (branch rp_v1, data_prep/github).

    rules = CodeRules(params.clean.code)
    rules(doc)          # KEEP or remove(CODE_MAX_LINE_LENGTH), ...
    rules.reasons(text) # every check that fails, each on its own

Thresholds and source: docs/references.md, "RedPajama-1T slices".

A file is removed when it is empty, its longest line exceeds ``max_line_length``
characters, its mean line length (characters / lines, as RedPajama computes it)
exceeds ``max_mean_line_length``, fewer than ``min_alnum_fraction`` of its characters
are alphanumeric, or it has fewer than ``min_alpha_per_token`` alphabetic characters
per token.

Tokens: RedPajama counted tokens of the Pythia (GPT-NeoX) BPE tokenizer, which this
offline project does not have before its own tokenizer is trained (a later stage).
We count WordPunct tokens (:func:`redrobe.text.normalize.raw_words`) instead; they
are fewer than BPE tokens on code, so this rule is somewhat more lenient than
RedPajama's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from redrobe.config import CodeParams
from redrobe.text.base import FailureChecks, ratio
from redrobe.text.normalize import raw_words

CODE_EMPTY = "code_empty"
CODE_MAX_LINE_LENGTH = "code_max_line_length"
CODE_MEAN_LINE_LENGTH = "code_mean_line_length"
CODE_LOW_ALNUM_FRACTION = "code_low_alnum_fraction"
CODE_LOW_ALPHA_PER_TOKEN = "code_low_alpha_per_token"

# Per-byte lookup tables for the ASCII fast path of char_stats (most source files are
# ASCII): built from the same str predicates and regex classes as the slow path, so
# both paths count exactly the same things.
_ASCII = [chr(i) for i in range(128)]
_IS_ALNUM = np.array([c.isalnum() for c in _ASCII], dtype=np.int64)
_IS_ALPHA = np.array([c.isalpha() for c in _ASCII], dtype=np.int64)
# WordPunct character class: 0 whitespace, 1 word character, 2 anything else
_WORD_CHAR = re.compile(r"\w")
_CLASS = np.array([0 if c.isspace() else 1 if _WORD_CHAR.match(c) else 2 for c in _ASCII],
                  dtype=np.int8)


class CodeRules(FailureChecks):
    """File-level filters for source code, checked in RedPajama-1T's order."""

    name = "code"
    config: CodeParams

    def _failures(self, text: str) -> Iterator[str]:
        # a generator: check() stops at the first failure, reasons() runs every check
        c = self.config
        if not text.strip():
            yield CODE_EMPTY
            return  # the checks below need a line and a character
        line_lengths = list(map(len, text.splitlines()))
        if max(line_lengths) > c.max_line_length:
            yield CODE_MAX_LINE_LENGTH
        if len(text) / len(line_lengths) > c.max_mean_line_length:
            yield CODE_MEAN_LINE_LENGTH
        alnum, alpha, tokens = char_stats(text)   # after the cheap line checks: check() may stop
        if alnum / len(text) < c.min_alnum_fraction:
            yield CODE_LOW_ALNUM_FRACTION
        if ratio(alpha, tokens) < c.min_alpha_per_token:
            yield CODE_LOW_ALPHA_PER_TOKEN


def char_stats(text: str) -> tuple[int, int, int]:
    """(alphanumeric characters, alphabetic characters, WordPunct tokens) of ``text``."""
    if not text.isascii():
        return sum(map(str.isalnum, text)), sum(map(str.isalpha, text)), len(raw_words(text))
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)            # (chars,)
    kind = _CLASS[codes]
    # a token starts at every non-space character whose class differs from the previous one
    starts = int(kind[0] != 0) + int(((kind[1:] != 0) & (kind[1:] != kind[:-1])).sum())
    return int(_IS_ALNUM[codes].sum()), int(_IS_ALPHA[codes].sum()), starts
