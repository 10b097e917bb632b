r"""RedPajama-V2 quality signals of one document, in RedPajama-V2's storage format.

    from redrobe.text.rpv2 import compute_signals, doc_score, line_scores, signals_to_json
    signals = compute_signals(doc.text)        # {"rps_doc_word_count": [[0, 523, 91]], ...}
    doc_score(signals, "rps_doc_word_count")   # 91.0
    line_scores(signals, "rps_lines_num_words")  # numpy array, one value per line
    column = signals_to_json(signals)          # the `quality_signals` string column

    signals, lang = compute_signals_with_language(doc.text)   # lang -> meta["language"]

Every signal is a list of ``[start, end, score]`` spans over the raw text: one span
``[0, len(text), score]`` for a document-level signal (``rps_doc_*``,
``redrobe_lang_score``), one span per line for a line-level one (``rps_lines_*``).
A line is what RedPajama-V2's ``split_paragraphs`` yields: the characters up to and
including a ``"\n"``, or the characters after the last ``"\n"``; empty lines are kept,
and a text ending in ``"\n"`` has no empty line after it. ``[start, end)`` is the
line's slice of the raw text, its ``"\n"`` included. Scores are rounded to 8 decimals;
a score that is undefined (e.g. mean word length of a text without words) is ``None``
(JSON ``null``), exactly where RedPajama-V2 stores ``None``.

Definitions (docs/references.md, "RedPajama-V2 quality signals", and RedPajama-V2's
app/src/core/quality_signals, branch main, whose edge cases we follow so stored values
compare one to one):

- views: ``normalized`` = :func:`redrobe.text.normalize.normalized_text` (already
  RedPajama-V2's: ASCII punctuation out → lowercase → whitespace collapsed → NFD),
  ``normalized_words`` its whitespace split, ``raw_words`` the WordPunct tokens,
  ``normalized lines`` each raw line normalized on its own;
- word count, mean word length, unique-word fraction, unigram entropy (natural log),
  the top/dupe n-gram fractions: normalized words (n-grams via
  :class:`redrobe.text.signals.NgramIndex`);
- stop-word fraction (case-sensitive), all-caps and no-letter fractions, symbol/word
  ratio: raw words; the stop-word list is RedPajama-V2's English list (from
  6/stopwords-json) for English;
- curly brackets per raw character; "lorem ipsum" per normalized character;
  sentences = matches of ``\b[^.!?]+[.!?]*`` in the raw text;
- per line: terminal punctuation (``. ! ? ”`` after trailing whitespace), bullet
  start (after leading whitespace), uppercase characters / raw line length (``"\n"``
  counted), numeric characters / normalized line length, normalized words, and the
  words equal to "javascript";
- ``redrobe_lang_score``: probability of the top language (:mod:`redrobe.text.langid`),
  our addition in place of cc_net's fastText score (not available offline).

Other languages (``per_language``, the default): RedPajama-V2 computes its signals per
language with a stop-word list per language; here the document's identified language
picks a :class:`~redrobe.text.languages.LanguageProfile`, whose stop words, word
splitting (scripts without spaces are cut into characters), sentence ends and line
ends replace the English ones, and whose "word without a letter" means without a letter
of any script (RedPajama-V2's ``[a-zA-Z]`` test would call every Chinese word one).
English, and every language without a profile of its own, get exactly the English
definitions above. ``per_language=False`` computes the English definitions for every
document.

RedPajama-V2's edge cases kept on purpose: the stop-word fraction is 0.0 (not None)
without words; ``rps_lines_start_with_bulletpoint`` of an empty text is one span
``[0, 0, None]`` while the other line signals are empty lists.

Speed: the views are computed once per document; per-line character counts come
from one numpy pass over the whole text (code point → class lookup table, cumulative
sums at line boundaries) instead of a Python loop per character.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable

import numpy as np

from redrobe.expressions import doc_score as doc_score  # re-exported: part of this API
from redrobe.text import langid
from redrobe.text.languages import ENGLISH, LETTER, RPV2_STOP_WORDS_EN, LanguageProfile, profile
from redrobe.text.normalize import normalized_text
from redrobe.text.signals import PRECISION, NgramIndex

#: one signal: ``[start, end, score]`` spans (score: int, float or None)
Spans = list[list]
#: signal name -> spans, RedPajama-V2's ``quality_signals`` record
Signals = dict[str, Spans]

TOP_NGRAM_SIZES = (2, 3, 4)
DUPE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)
LANG_SCORE = "redrobe_lang_score"

DOC_SIGNALS = (
    "rps_doc_word_count",
    "rps_doc_mean_word_length",
    "rps_doc_frac_unique_words",
    "rps_doc_unigram_entropy",
    "rps_doc_stop_word_fraction",
    "rps_doc_symbol_to_word_ratio",
    "rps_doc_frac_no_alph_words",
    "rps_doc_frac_all_caps_words",
    "rps_doc_frac_lines_end_with_ellipsis",
    "rps_doc_curly_bracket",
    "rps_doc_lorem_ipsum",
    "rps_doc_num_sentences",
    *(f"rps_doc_frac_chars_top_{n}gram" for n in TOP_NGRAM_SIZES),
    *(f"rps_doc_frac_chars_dupe_{n}grams" for n in DUPE_NGRAM_SIZES),
)
LINE_SIGNALS = (
    "rps_lines_ending_with_terminal_punctution_mark",  # (sic): RedPajama-V2's spelling
    "rps_lines_start_with_bulletpoint",
    "rps_lines_num_words",
    "rps_lines_javascript_counts",
    "rps_lines_numerical_chars_fraction",
    "rps_lines_uppercase_letter_fraction",
)
#: every signal :func:`compute_signals` returns, in a stable order
SIGNAL_NAMES = DOC_SIGNALS + LINE_SIGNALS + (LANG_SCORE,)

SYMBOLS = ("#", "...", "…")
ELLIPSES = ("...", "…")
TERMINAL_PUNCTUATION = (".", "!", "?", "”")
BULLETS = ("\u2022", "\u2023", "\u25B6", "\u25C0", "\u25E6",
           "\u25A0", "\u25A1", "\u25AA", "\u25AB", "\u2013")
LOREM_IPSUM = "lorem ipsum"
JAVASCRIPT = "javascript"

# RedPajama-V2 counts with re.IGNORECASE on the lowercased text, which also matches
# e.g. "ipſum" (long s); kept for equal counts
_LOREM_IPSUM = re.compile(LOREM_IPSUM, re.IGNORECASE)
# One match per WordPunct word holding an ASCII letter (punctuation runs hold none): \b
# opens a match only at the start of a \w run and the possessive run of non-letter word
# characters never backtracks, so the scan stays linear.
_WORD_WITH_ASCII_LETTER = re.compile(r"\b[^\WA-Za-z]*+[A-Za-z]")

# RedPajama-V2's English stop words (from github.com/6/stopwords-json), matched
# case-sensitively against raw words; other languages: their profile's list
STOP_WORDS_EN = RPV2_STOP_WORDS_EN


# ----------------------------------------------------------------------- public API
def compute_signals(text: str, *, lang_max_chars: int = langid.DEFAULT_MAX_CHARS,
                    per_language: bool = True) -> Signals:
    """All :data:`SIGNAL_NAMES` of ``text`` as ``[start, end, score]`` spans, with the
    identified language's lists (English's with ``per_language=False``)."""
    return compute_signals_with_language(text, lang_max_chars=lang_max_chars,
                                         per_language=per_language)[0]


def compute_signals_with_language(
    text: str, *, lang_max_chars: int = langid.DEFAULT_MAX_CHARS, per_language: bool = True
) -> tuple[Signals, str]:
    """(:func:`compute_signals`, ISO 639 language code): one language-id pass for both,
    so a stage can store the code in ``meta["language"]``."""
    lang, lang_score = langid.identify(text, lang_max_chars)
    return signals_for(text, profile(lang) if per_language else ENGLISH, lang_score), lang


def signals_for(text: str, language: LanguageProfile, lang_score: float) -> Signals:
    """Every signal of ``text`` with ``language``'s lists and splitting; ``lang_score``
    (the identifier's probability) becomes ``redrobe_lang_score``. For a caller that has
    identified the language already (the clean stage: the rules need it too)."""
    lines = raw_lines(text)
    norm_lines = normalized_lines(text, lines)
    # the document's normalized view is its non-empty normalized lines joined by one
    # space (normalizing a line and normalizing the whole text act alike per line)
    normalized = " ".join(filter(None, norm_lines))
    signals = (_document_signals(text, normalized, language)
               | _line_signals(text, lines, norm_lines, language))
    signals[LANG_SCORE] = _doc(text, round(lang_score, PRECISION))
    return {name: signals[name] for name in SIGNAL_NAMES}


def line_scores(signals: Signals, name: str) -> np.ndarray:
    """(lines,) float64 scores of a line-level signal, NaN where undefined."""
    return np.array([span[2] for span in signals[name]], dtype=np.float64).reshape(-1)


def signals_to_json(signals: Signals) -> str:
    """Deterministic JSON (sorted keys, no whitespace) for the ``quality_signals`` column."""
    return json.dumps(signals, sort_keys=True, separators=(",", ":"), allow_nan=False)


def signals_from_json(payload: str) -> Signals:
    """Inverse of :func:`signals_to_json` (ints stay ints, floats round-trip exactly)."""
    signals = json.loads(payload)
    if not isinstance(signals, dict) or not all(isinstance(v, list) for v in signals.values()):
        raise ValueError("quality_signals JSON must map signal names to lists of spans")
    return signals


# ------------------------------------------------------------------------------ views
def raw_lines(text: str) -> list[str]:
    r"""RedPajama-V2's lines without their ``"\n"``: empty lines kept, nothing after a
    final ``"\n"``, no line at all for an empty text."""
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    return lines


def normalized_lines(text: str, lines: list[str]) -> list[str]:
    r""":func:`~redrobe.text.normalize.normalized_text` of every line of ``text``.

    One normalization of the whole text, with each ``"\n"`` replaced by a private-use
    sentinel, instead of one call per line (books and code have thousands): the
    sentinel is no whitespace or punctuation, has no case and no decomposition, so
    punctuation removal, lowercasing (final sigma included), whitespace collapsing
    and NFD treat it exactly as the line break they stop at. A text that already
    holds the sentinel is normalized line by line."""
    if _LINE_SENTINEL in text:
        return [normalized_text(line) for line in lines]
    joined = normalized_text(text.replace("\n", _LINE_SENTINEL))
    # collapsing leaves at most one space on each side of a sentinel
    pieces = [piece.strip(" ") for piece in joined.split(_LINE_SENTINEL)]
    return pieces[:len(lines)]  # a final "\n" leaves one extra (empty) piece


_LINE_SENTINEL = "\ue000"


# ----------------------------------------------------------------- document signals
def _doc(text: str, score: float | None) -> Spans:
    return [[0, len(text), score]]


def _fraction(numerator: float, denominator: int) -> float | None:
    """numerator / denominator rounded like RedPajama-V2; None when undefined."""
    return round(numerator / denominator, PRECISION) if denominator else None


def _document_signals(text: str, normalized: str, language: LanguageProfile) -> Signals:
    words = language.split_normalized(normalized)
    index = NgramIndex(words)
    signals = _word_signals(text, index) | _raw_word_signals(text, bool(words), language)
    signals |= {
        "rps_doc_curly_bracket": _doc(text, _fraction(text.count("{") + text.count("}"),
                                                      len(text)) or 0.0),
        "rps_doc_lorem_ipsum": _doc(text, _lorem_ipsum(normalized)),
        "rps_doc_num_sentences": _doc(text, float(len(language.sentence_pattern.findall(text)))),
    }
    for n in TOP_NGRAM_SIZES:
        signals[f"rps_doc_frac_chars_top_{n}gram"] = _doc(text, index.frac_chars_top_ngram(n))
    for n in DUPE_NGRAM_SIZES:
        signals[f"rps_doc_frac_chars_dupe_{n}grams"] = _doc(text, index.frac_chars_dupe_ngrams(n))
    return signals


def _word_signals(text: str, index: NgramIndex) -> Signals:
    """Signals over normalized words."""
    num_words = index.num_words
    counts = np.bincount(index.word_ids).tolist()   # per distinct word, first-seen order
    # summed in first-seen order like RedPajama-V2's Counter, for identical rounding
    entropy = sum(-c / num_words * math.log(c / num_words) for c in counts)
    return {
        "rps_doc_word_count": _doc(text, num_words),
        "rps_doc_mean_word_length": _doc(text, _fraction(index.total_chars, num_words)),
        "rps_doc_frac_unique_words": _doc(text, _fraction(len(counts), num_words)),
        "rps_doc_unigram_entropy": _doc(text, round(entropy, PRECISION) if num_words else None),
    }


def _raw_word_signals(text: str, has_normalized_words: bool, language: LanguageProfile) -> Signals:
    """Signals over WordPunct tokens of the raw text."""
    tokens = language.raw_words(text)
    num = len(tokens)
    stop_words = sum(map(language.stop_words.__contains__, tokens))
    symbols = sum(map(text.count, SYMBOLS))
    with_letter = (len(_WORD_WITH_ASCII_LETTER.findall(text)) if language is ENGLISH
                   else sum(1 for token in tokens if LETTER.search(token)))
    return {
        # RedPajama-V2 returns 0.0, not None, for a text without normalized words
        "rps_doc_stop_word_fraction": _doc(
            text, _fraction(stop_words, num) if has_normalized_words else 0.0),
        "rps_doc_symbol_to_word_ratio": _doc(text, _fraction(symbols, num)),
        "rps_doc_frac_no_alph_words": _doc(
            text, round(1.0 - with_letter / num, PRECISION) if num else None),
        "rps_doc_frac_all_caps_words": _doc(text, _fraction(sum(map(str.isupper, tokens)), num)),
    }


def _lorem_ipsum(normalized: str) -> float:
    if LOREM_IPSUM not in normalized:   # RedPajama-V2's early exit, kept for equal values
        return 0.0
    return round(len(_LOREM_IPSUM.findall(normalized)) / len(normalized), PRECISION)


# --------------------------------------------------------------------- line signals
def _line_signals(text: str, lines: list[str], norm_lines: list[str],
                  language: LanguageProfile) -> Signals:
    if not lines:   # empty text; the bullet-point span is RedPajama-V2's quirk
        return {name: [] for name in LINE_SIGNALS} | {
            "rps_lines_start_with_bulletpoint": [[0, 0, None]],
            "rps_doc_frac_lines_end_with_ellipsis": _doc(text, None)}
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) + 1  # + "\n"
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ends[-1] = len(text)   # the last line has no "\n" unless the text ends with one
    bounds = (starts.tolist(), ends.tolist())
    stripped = [line.rstrip() for line in lines]
    marks = language.line_ends(TERMINAL_PUNCTUATION)   # English: TERMINAL_PUNCTUATION
    ends_sentence = (functools.partial(language.ends_sentence, ends=marks) if language.space_ends_sentence
                     else operator.methodcaller("endswith", marks))
    split = str.split if language.plain else language.split_normalized
    return {
        "rps_lines_ending_with_terminal_punctution_mark": _per_line(
            bounds, [float(ends_sentence(s)) for s in stripped]),
        "rps_lines_start_with_bulletpoint": _per_line(
            bounds, [float(line.lstrip().startswith(BULLETS)) for line in lines]),
        "rps_lines_num_words": _per_line(bounds, [len(split(n)) for n in norm_lines]),
        "rps_lines_javascript_counts": _per_line(bounds, [
            float(n.split().count(JAVASCRIPT)) if JAVASCRIPT in n else 0.0 for n in norm_lines]),
        "rps_lines_numerical_chars_fraction": _per_line(
            bounds, _char_fractions(norm_lines, str.isnumeric)),
        "rps_lines_uppercase_letter_fraction": _per_line(
            bounds, _char_fractions(lines, str.isupper, ends - starts)),
        "rps_doc_frac_lines_end_with_ellipsis": _doc(
            text, _fraction(sum(s.endswith(ELLIPSES) for s in stripped), len(lines))),
    }


def _per_line(bounds: tuple[list[int], list[int]], scores: list) -> Spans:
    return [[start, end, score] for start, end, score in zip(*bounds, scores)]


def _char_fractions(lines: list[str], predicate: Callable[[str], bool],
                    lengths: np.ndarray | None = None) -> list[float]:
    """Per line: characters satisfying ``predicate`` / ``lengths`` (default: line
    lengths) rounded to 8 decimals, 0.0 for a zero length; one vectorized pass."""
    joined = "".join(lines)
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:   # surrogatepass: a stray surrogate is a character like any other
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cumulative = np.concatenate(([0], np.cumsum(_char_table(predicate)[codes], dtype=np.int64)))
    line_lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    bounds = np.concatenate(([0], np.cumsum(line_lengths)))
    hits = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    lengths = line_lengths if lengths is None else lengths
    # np.round gives the same doubles as Python's round(x, 8) on these ratios (checked
    # against it in the tests) at a fraction of the cost per line
    scores = np.round(hits / np.maximum(lengths, 1), PRECISION)
    return scores.tolist()


@functools.cache
def _char_table(predicate: Callable[[str], bool]) -> np.ndarray:
    """(0x110000,) bool: ``predicate(chr(c))`` for every code point; built once per
    process (about 0.3 s), read-only."""
    table = np.fromiter(map(predicate, map(chr, range(0x110000))), dtype=bool, count=0x110000)
    table.flags.writeable = False
    return table
