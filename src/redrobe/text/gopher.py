"""Gopher quality and repetition rule sets (Rae et al. 2021, App. A and Table A1).

    rules = GopherQualityRules(params.clean.gopher_quality)
    rules(doc)          # Decision: KEEP or remove(GOPHER_SHORT_DOC), ...
    rules.reasons(text) # every check that fails, each on its own: [GOPHER_SHORT_DOC, ...]

Sources and thresholds: docs/references.md, "Rule sets: Gopher, C4, FineWeb".

Checks run in datatrove's order and the first failing one names the reason; the
reason strings follow datatrove's, prefixed ``gopher_`` (one renamed: datatrove's
``gopher_enough_stop_words`` is :data:`GOPHER_TOO_FEW_STOP_WORDS` here).

Differences from datatrove, by design:

- Words for the quality rules are whitespace tokens, not tokenizer tokens. datatrove
  splits with a spaCy/NLTK tokenizer where every punctuation mark is a word of its
  own (docs/references.md, "Benchmark anchors"); that split is most of its cost and it makes
  verse and plays fail the "80 % of words contain a letter" rule (a Shakespeare play scores about
  0.79 that way, about 1.0 on whitespace tokens). A token counts as a word when it
  holds a letter or digit; its length is measured without the punctuation at its
  ends, and stop words are matched the same way (case-sensitive, as datatrove does).
  The stop-word rule counts distinct stop words ("at least two of the following
  words", Rae et al. 2021 App. A), as datatrove does.
- The n-gram repetition rules use the RedPajama-V2 signals (:mod:`redrobe.text.signals`)
  on normalized words: every occurrence of a repeated n-gram counts and the
  denominator is the characters of all words. datatrove counts repeats after the
  first and divides by the raw text length. Thresholds are Gopher Table A1 either way.
- Duplicate lines/paragraphs follow datatrove: paragraphs split on blank lines,
  lines on runs of newlines, repeats after the first counted, chars over text length.

Other languages (a :class:`~redrobe.text.languages.LanguageProfile` other than
English): words come from the profile (scripts without spaces are cut into characters,
:mod:`redrobe.text.languages`) and the stop words are the language's list; a language
without a list (Lao, Khmer, Myanmar, ...) skips the stop-word check, which it cannot
pass or fail meaningfully. Thresholds per language: ``clean.language_thresholds``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterator, Sequence

from redrobe.config import GopherQualityParams, GopherRepetitionParams
from redrobe.text.base import FailureChecks, ratio
from redrobe.text.languages import ENGLISH, GOPHER_STOP_WORDS_EN, LanguageProfile
from redrobe.text.signals import NgramIndex

# ------------------------------------------------------------------ reasons: quality
GOPHER_SHORT_DOC = "gopher_short_doc"
GOPHER_LONG_DOC = "gopher_long_doc"
GOPHER_BELOW_AVG_WORD_LENGTH = "gopher_below_avg_threshold"
GOPHER_ABOVE_AVG_WORD_LENGTH = "gopher_above_avg_threshold"
GOPHER_TOO_MANY_HASHES = "gopher_too_many_hashes"
GOPHER_TOO_MANY_ELLIPSIS = "gopher_too_many_ellipsis"
GOPHER_TOO_MANY_BULLETS = "gopher_too_many_bullets"
GOPHER_TOO_MANY_END_ELLIPSIS = "gopher_too_many_end_ellipsis"
GOPHER_BELOW_ALPHA_THRESHOLD = "gopher_below_alpha_threshold"
GOPHER_TOO_FEW_STOP_WORDS = "gopher_too_few_stop_words"

# --------------------------------------------------------------- reasons: repetition
GOPHER_DUP_PARA_FRAC = "gopher_dup_para_frac"
GOPHER_DUP_PARA_CHAR_FRAC = "gopher_dup_para_char_frac"
GOPHER_DUP_LINE_FRAC = "gopher_dup_line_frac"
GOPHER_DUP_LINE_CHAR_FRAC = "gopher_dup_line_char_frac"


def top_ngram_reason(n: int) -> str:
    return f"gopher_top_{n}gram"


def dup_ngram_reason(n: int) -> str:
    return f"gopher_dup_{n}gram"


# the n-gram reasons of the default Table A1 thresholds
GOPHER_TOP_2GRAM, GOPHER_TOP_3GRAM, GOPHER_TOP_4GRAM = (top_ngram_reason(n) for n in (2, 3, 4))
(GOPHER_DUP_5GRAM, GOPHER_DUP_6GRAM, GOPHER_DUP_7GRAM, GOPHER_DUP_8GRAM, GOPHER_DUP_9GRAM,
 GOPHER_DUP_10GRAM) = (dup_ngram_reason(n) for n in range(5, 11))

# Gopher's stop words (Rae et al. 2021, App. A: "the, be, to, of, and, that, have, with")
STOP_WORDS = GOPHER_STOP_WORDS_EN
# RedPajama-V2's bullet characters (rps_lines_start_with_bulletpoint) plus the ASCII
# hyphen, which datatrove >= 0.3 also counts as a bullet.
BULLETS = ("\u2022", "\u2023", "\u25b6", "\u25c0", "\u25e6", "\u25a0", "\u25a1", "\u25aa",
           "\u25ab", "\u2013", "-")
ELLIPSES = ("...", "\u2026")
# punctuation stripped from a token's ends before measuring it / matching stop words
_EDGE_PUNCTUATION = string.punctuation + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_LETTER = re.compile(r"[^\W\d_]")
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")


class GopherQualityRules(FailureChecks):
    """Document-level Gopher quality heuristics, checked in datatrove's order."""

    name = "gopher_quality"
    config: GopherQualityParams
    language_aware = True
    thresholds = {"min_words": "<", "max_words": ">", "min_mean_word_length": "<",
                  "max_mean_word_length": ">", "max_symbol_word_ratio": ">",
                  "max_bullet_lines_ratio": ">", "max_ellipsis_lines_ratio": ">",
                  "max_non_alpha_words_ratio": "<", "min_stop_words": "<"}

    def _failures(self, text: str) -> Iterator[str]:
        # a generator: check() stops at the first failure, reasons() runs every check
        c = self.config
        n_tokens, n_words, word_chars, alpha_tokens, stop_words = word_stats(text, self.profile)
        if n_words < c.min_words:
            yield GOPHER_SHORT_DOC
        if n_words > c.max_words:
            yield GOPHER_LONG_DOC
        mean_length = ratio(word_chars, n_words)
        if mean_length < c.min_mean_word_length:
            yield GOPHER_BELOW_AVG_WORD_LENGTH
        if mean_length > c.max_mean_word_length:
            yield GOPHER_ABOVE_AVG_WORD_LENGTH
        # symbol-to-word ratio, separately for "#" and for ellipses
        if ratio(text.count("#"), n_tokens) > c.max_symbol_word_ratio:
            yield GOPHER_TOO_MANY_HASHES
        if ratio(text.count("...") + text.count("\u2026"), n_tokens) > c.max_symbol_word_ratio:
            yield GOPHER_TOO_MANY_ELLIPSIS
        yield from self._line_failures(text)
        yield from self._word_failures(n_tokens, alpha_tokens, stop_words)

    def _line_failures(self, text: str) -> Iterator[str]:
        lines = text.splitlines() or [""]
        bullets = sum(1 for line in lines if line.lstrip().startswith(BULLETS))
        if bullets / len(lines) > self.config.max_bullet_lines_ratio:
            yield GOPHER_TOO_MANY_BULLETS
        ellipsis_ended = sum(1 for line in lines if line.rstrip().endswith(ELLIPSES))
        if ellipsis_ended / len(lines) > self.config.max_ellipsis_lines_ratio:
            yield GOPHER_TOO_MANY_END_ELLIPSIS

    def _word_failures(self, n_tokens: int, alpha_tokens: int, stop_words: int) -> Iterator[str]:
        # "max_non_alpha_words_ratio" (datatrove's name) is the minimum share of tokens
        # that contain a letter: Gopher keeps documents where >= 80 % of words do.
        if ratio(alpha_tokens, n_tokens) < self.config.max_non_alpha_words_ratio:
            yield GOPHER_BELOW_ALPHA_THRESHOLD
        # a language without a stop-word list cannot be judged by it
        if stop_words < self.config.min_stop_words and self.profile.gopher_stop_words:
            yield GOPHER_TOO_FEW_STOP_WORDS

    def statistics(self, text: str) -> dict[str, float]:
        n_tokens, n_words, word_chars, alpha_tokens, stop_words = word_stats(text, self.profile)
        lines = text.splitlines() or [""]
        mean_length = ratio(word_chars, n_words)
        symbols = max(text.count("#"), text.count("...") + text.count("\u2026"))
        return {"min_words": n_words, "max_words": n_words,
                "min_mean_word_length": mean_length, "max_mean_word_length": mean_length,
                "max_symbol_word_ratio": ratio(symbols, n_tokens),
                "max_bullet_lines_ratio": sum(line.lstrip().startswith(BULLETS) for line in lines)
                / len(lines),
                "max_ellipsis_lines_ratio": sum(line.rstrip().endswith(ELLIPSES) for line in lines)
                / len(lines),
                "max_non_alpha_words_ratio": ratio(alpha_tokens, n_tokens),
                "min_stop_words": stop_words if self.profile.gopher_stop_words else float("inf")}


def word_stats(text: str, profile: LanguageProfile = ENGLISH) -> tuple[int, int, int, int, int]:
    """(tokens, words, word characters, tokens holding a letter, distinct stop words).

    Tokens are whitespace tokens (``profile.tokens``: scripts without spaces are cut
    into words); a word is a token holding a letter or digit, measured and matched
    against the profile's Gopher stop words (English: :data:`STOP_WORDS`) without the
    punctuation at its ends.
    """
    tokens = Counter(profile.tokens(text))  # each distinct token examined once, weighed by count
    n_tokens = n_words = word_chars = alpha_tokens = 0
    stop_list = profile.gopher_stop_words
    # Gopher: "at least two of the following English words": distinct stop words
    stop_words = set(stop_list & tokens.keys())
    for token, count in tokens.items():
        n_tokens += count
        if token.isalpha():  # the common case, no regex needed: all letters
            n_words += count
            alpha_tokens += count
            word_chars += count * len(token)
        elif _LETTER_OR_DIGIT.search(token):
            core = token.strip(_EDGE_PUNCTUATION)
            n_words += count
            word_chars += count * len(core)
            if core.isalpha() or _LETTER.search(token):
                alpha_tokens += count
            if core in stop_list:
                stop_words.add(core)
        # else pure punctuation/symbols: a token but not a word
    return n_tokens, n_words, word_chars, alpha_tokens, len(stop_words)


class GopherRepetitionRules(FailureChecks):
    """Gopher repetition heuristics (Table A1): repeated lines, paragraphs and n-grams,
    checked in Table A1's order."""

    name = "gopher_repetition"
    config: GopherRepetitionParams
    language_aware = True

    def __init__(self, config: GopherRepetitionParams, profile: LanguageProfile = ENGLISH) -> None:
        super().__init__(config, profile)
        # params keys are strings ("2": 0.2); check n-grams in increasing n, which is
        # also the order NgramIndex builds them in
        self.top_n_grams = sorted((int(n), limit) for n, limit in config.top_n_grams.items())
        self.dup_n_grams = sorted((int(n), limit) for n, limit in config.dup_n_grams.items())
        self.thresholds = {"dup_para_frac": ">", "dup_para_char_frac": ">", "dup_line_frac": ">",
                           "dup_line_char_frac": ">",
                           **{f"top_n_grams.{n}": ">" for n in config.top_n_grams},
                           **{f"dup_n_grams.{n}": ">" for n in config.dup_n_grams}}

    def _failures(self, text: str) -> Iterator[str]:
        # a generator: check() stops at the first failure (and never builds the n-gram
        # index when a line or paragraph check already failed); reasons() runs them all
        c = self.config
        stripped = text.strip()
        paragraphs = _paragraphs(stripped)
        repeats, repeat_chars = repeated_items(paragraphs)
        if ratio(repeats, len(paragraphs)) > c.dup_para_frac:
            yield GOPHER_DUP_PARA_FRAC
        if ratio(repeat_chars, len(text)) > c.dup_para_char_frac:
            yield GOPHER_DUP_PARA_CHAR_FRAC
        lines = _lines(stripped)
        repeats, repeat_chars = repeated_items(lines)
        if ratio(repeats, len(lines)) > c.dup_line_frac:
            yield GOPHER_DUP_LINE_FRAC
        if ratio(repeat_chars, len(text)) > c.dup_line_char_frac:
            yield GOPHER_DUP_LINE_CHAR_FRAC
        yield from self._ngram_failures(NgramIndex(self.profile.normalized_words(text)))

    def _ngram_failures(self, index: NgramIndex) -> Iterator[str]:
        for n, limit in self.top_n_grams:
            if index.frac_chars_top_ngram(n) > limit:
                yield top_ngram_reason(n)
        for n, limit in self.dup_n_grams:
            if index.frac_chars_dupe_ngrams(n) > limit:
                yield dup_ngram_reason(n)


    def statistics(self, text: str) -> dict[str, float]:
        stripped = text.strip()
        paragraphs, lines = _paragraphs(stripped), _lines(stripped)
        para_repeats, para_chars = repeated_items(paragraphs)
        line_repeats, line_chars = repeated_items(lines)
        index = NgramIndex(self.profile.normalized_words(text))
        return {"dup_para_frac": ratio(para_repeats, len(paragraphs)),
                "dup_para_char_frac": ratio(para_chars, len(text)),
                "dup_line_frac": ratio(line_repeats, len(lines)),
                "dup_line_char_frac": ratio(line_chars, len(text)),
                **{f"top_n_grams.{n}": index.frac_chars_top_ngram(n) for n, _ in self.top_n_grams},
                **{f"dup_n_grams.{n}": index.frac_chars_dupe_ngrams(n) for n, _ in self.dup_n_grams}}


def _paragraphs(stripped: str) -> list[str]:
    """``re.split(r"\n{2,}", stripped)`` for a stripped text, ~5x faster with str.split."""
    paragraphs = stripped.split("\n\n")
    if "\n\n\n" not in stripped:   # every break is exactly two newlines
        return paragraphs
    # a run of k > 2 newlines leaves "" (k // 2 - 1 times) and, for odd k, a leading
    # "\n" on the next piece; no piece ends in "\n" (the leftmost "\n\n" splits first)
    return [p.lstrip("\n") for p in paragraphs if p]


def _lines(stripped: str) -> list[str]:
    """``re.split(r"\n+", stripped)`` for a stripped text (no newline at either end),
    where a run of newlines leaves only empty strings between them."""
    lines = stripped.split("\n")
    return [line for line in lines if line] if "\n\n" in stripped else lines


def repeated_items(items: Sequence[str]) -> tuple[int, int]:
    """(number of items equal to an earlier item, their characters)."""
    counts = Counter(items)
    if len(counts) == len(items):   # the common case: nothing repeats
        return 0, 0
    return (len(items) - len(counts),
            sum(len(item) * (count - 1) for item, count in counts.items() if count > 1))
