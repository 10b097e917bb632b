"""RedPajama-V2 quality signals against hand-computed values and a plain reference.

    pytest tests/text/test_rpv2.py -q

The hand-computed cases write their arithmetic in comments. The reference below
re-derives every signal the slow, obvious way (RedPajama-V2's definitions: dolma line
split, Counter, per-character loops, Python round) and must agree exactly with the
vectorized module on random documents.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import re
import string
from collections import Counter

import numpy as np
import pytest

from redrobe.text import rpv2
from redrobe.text.languages import ENGLISH, profile
from redrobe.text.normalize import normalized_text, raw_words
from redrobe.text.rpv2 import (
    DOC_SIGNALS,
    LANG_SCORE,
    LINE_SIGNALS,
    SIGNAL_NAMES,
    compute_signals,
    compute_signals_with_language,
    doc_score,
    line_scores,
    normalized_lines,
    raw_lines,
    signals_from_json,
    signals_to_json,
)

# 4 lines: "The cat sat.\n" [0,13), "The cat ran...\n" [13,28), "\n" [28,29),
# "# NOTE: {x}\n" [29,41); len 41
DOC = "The cat sat.\nThe cat ran...\n\n# NOTE: {x}\n"


def _values(signals: dict, name: str) -> list:
    return [span[2] for span in signals[name]]


def test_signal_names_are_stable_and_complete() -> None:
    assert len(DOC_SIGNALS) == 21 and len(LINE_SIGNALS) == 6
    assert SIGNAL_NAMES == DOC_SIGNALS + LINE_SIGNALS + (LANG_SCORE,)
    assert len(set(SIGNAL_NAMES)) == len(SIGNAL_NAMES)
    assert "rps_lines_ending_with_terminal_punctution_mark" in SIGNAL_NAMES  # (sic)
    assert "rps_doc_frac_chars_top_4gram" in SIGNAL_NAMES
    assert "rps_doc_frac_chars_dupe_10grams" in SIGNAL_NAMES
    assert list(compute_signals(DOC)) == list(SIGNAL_NAMES)


def test_document_signals_hand_computed() -> None:
    s = compute_signals(DOC)
    # normalized: "the cat sat the cat ran note x" -> 8 words, 3*6 + 4 + 1 = 23 chars
    assert s["rps_doc_word_count"] == [[0, 41, 8]]
    assert doc_score(s, "rps_doc_mean_word_length") == 2.875               # 23 / 8
    assert doc_score(s, "rps_doc_frac_unique_words") == 0.75               # 6 distinct / 8
    # counts the:2 cat:2 sat ran note x:1 -> 2*(2/8 ln 4) + 4*(1/8 ln 8) = 2.5 ln 2
    assert doc_score(s, "rps_doc_unigram_entropy") == round(2.5 * math.log(2), 8)
    assert doc_score(s, "rps_doc_unigram_entropy") == 1.73286795
    # raw words: The cat sat . The cat ran ... # NOTE : { x } -> 14 tokens
    assert doc_score(s, "rps_doc_stop_word_fraction") == 0.07142857        # "x" only: 1/14
    assert doc_score(s, "rps_doc_symbol_to_word_ratio") == 0.14285714      # "#" + "..." = 2/14
    assert doc_score(s, "rps_doc_frac_no_alph_words") == 0.42857143        # 1 - 8/14
    assert doc_score(s, "rps_doc_frac_all_caps_words") == 0.07142857       # NOTE: 1/14
    assert doc_score(s, "rps_doc_frac_lines_end_with_ellipsis") == 0.25    # line 2 of 4
    assert doc_score(s, "rps_doc_curly_bracket") == 0.04878049             # 2 / 41 chars
    assert doc_score(s, "rps_doc_lorem_ipsum") == 0.0
    # sentences: "The cat sat.", "The cat ran...", "NOTE: {x}\n" ("#" is no \b start)
    assert doc_score(s, "rps_doc_num_sentences") == 3.0
    assert doc_score(s, "rps_doc_frac_chars_top_2gram") == 0.52173913      # "the cat": 6*2/23
    assert doc_score(s, "rps_doc_frac_chars_top_3gram") == 0.0             # every 3-gram once
    for n in range(5, 11):
        assert doc_score(s, f"rps_doc_frac_chars_dupe_{n}grams") == 0.0    # only 8 words


def test_line_signals_and_spans_hand_computed() -> None:
    s = compute_signals(DOC)
    spans = [[0, 13], [13, 28], [28, 29], [29, 41]]   # the empty line is kept
    for name in LINE_SIGNALS:
        assert [span[:2] for span in s[name]] == spans, name
    assert _values(s, "rps_lines_ending_with_terminal_punctution_mark") == [1.0, 1.0, 0.0, 0.0]
    assert _values(s, "rps_lines_start_with_bulletpoint") == [0.0] * 4
    assert _values(s, "rps_lines_num_words") == [3, 3, 0, 2]   # "note x" on line 4
    assert _values(s, "rps_lines_javascript_counts") == [0.0] * 4
    assert _values(s, "rps_lines_numerical_chars_fraction") == [0.0] * 4
    # uppercase / raw line length with its "\n": T/13, T/15, 0/1, NOTE 4/12
    assert _values(s, "rps_lines_uppercase_letter_fraction") == [
        0.07692308, 0.06666667, 0.0, 0.33333333]


def test_bullets_javascript_numbers_and_last_line_without_newline() -> None:
    text = "• Item 1\n  \u2013 JavaScript javascript, JAVASCRIPT!\nno newline 42”"
    s = compute_signals(text)
    # "• Item 1\n" = 9 chars; "  – JavaScript javascript, JAVASCRIPT!\n" = 39; last 14
    assert [span[:2] for span in s["rps_lines_num_words"]] == [[0, 9], [9, 48], [48, 62]]
    assert _values(s, "rps_lines_start_with_bulletpoint") == [1.0, 1.0, 0.0]  # en dash too
    assert _values(s, "rps_lines_ending_with_terminal_punctution_mark") == [0.0, 1.0, 1.0]  # ”
    # normalized lines: "• item 1" / "– javascript javascript javascript" / "no newline 42”"
    assert _values(s, "rps_lines_num_words") == [3, 4, 3]
    assert _values(s, "rps_lines_javascript_counts") == [0.0, 3.0, 0.0]
    # numeric / normalized length: 1/8, 0, 2/14
    assert _values(s, "rps_lines_numerical_chars_fraction") == [0.125, 0.0, 0.14285714]
    # uppercase / raw length: I 1/9, J S JAVASCRIPT 12/39, 0/14
    assert _values(s, "rps_lines_uppercase_letter_fraction") == [0.11111111, 0.30769231, 0.0]
    assert doc_score(s, "rps_doc_frac_lines_end_with_ellipsis") == 0.0


def test_numeric_fraction_uses_the_nfd_normalized_line() -> None:
    s = compute_signals("Café 12")
    # normalized "cafe\u0301 12" has 8 chars (é -> e + U+0301): 2/8; raw "Café 12": C 1/7
    assert _values(s, "rps_lines_numerical_chars_fraction") == [0.25]
    assert _values(s, "rps_lines_uppercase_letter_fraction") == [0.14285714]
    assert s["rps_lines_num_words"] == [[0, 7, 2]]


def test_repetition_signals_hand_computed() -> None:
    s = compute_signals("One two three four five, one two three four five six.")
    # words one two three four five one two three four five six: 2*19 + 3 = 41 chars
    assert doc_score(s, "rps_doc_frac_chars_dupe_5grams") == 0.92682927  # 38/41
    assert doc_score(s, "rps_doc_frac_chars_dupe_6grams") == 0.0         # all 6-grams once
    assert doc_score(s, "rps_doc_frac_chars_top_2gram") == 0.29268293    # "one two": 6*2/41
    assert doc_score(s, "rps_doc_frac_chars_top_3gram") == 0.53658537    # 11*2/41
    assert doc_score(s, "rps_doc_frac_chars_top_4gram") == 0.73170732    # 15*2/41


def test_lorem_ipsum_and_sentences() -> None:
    s = compute_signals("Lorem ipsum dolor. Lorem, ipsum!")
    # normalized "lorem ipsum dolor lorem ipsum": 29 chars, 2 hits -> 2/29
    assert doc_score(s, "rps_doc_lorem_ipsum") == 0.06896552
    assert doc_score(s, "rps_doc_num_sentences") == 2.0   # "Lorem ipsum dolor." "Lorem, ipsum!"


def test_empty_and_blank_texts_follow_redpajama_edge_cases() -> None:
    s = compute_signals("")
    assert doc_score(s, "rps_doc_word_count") == 0.0
    assert math.isnan(doc_score(s, "rps_doc_mean_word_length"))          # None: undefined
    assert s["rps_doc_mean_word_length"] == [[0, 0, None]]
    assert s["rps_doc_stop_word_fraction"] == [[0, 0, 0.0]]              # 0.0, not None
    assert s["rps_doc_frac_lines_end_with_ellipsis"] == [[0, 0, None]]   # no lines
    assert s["rps_lines_start_with_bulletpoint"] == [[0, 0, None]]       # RedPajama-V2 quirk
    assert all(s[name] == [] for name in LINE_SIGNALS[2:]) and s[LINE_SIGNALS[0]] == []
    assert s[LANG_SCORE] == [[0, 0, 0.0]]
    blank = compute_signals("\n  \n")   # two lines, no words at all
    assert [span[:2] for span in blank["rps_lines_num_words"]] == [[0, 1], [1, 4]]
    assert math.isnan(doc_score(blank, "rps_doc_frac_all_caps_words"))   # no raw words
    assert doc_score(blank, "rps_doc_frac_lines_end_with_ellipsis") == 0.0


def test_line_views() -> None:
    assert raw_lines("") == [] and raw_lines("a\n") == ["a"] and raw_lines("\n\nb") == ["", "", "b"]
    text = "ΟΔΟΣ\nCafe\u0301 \u0301x\n  Hi,  THERE  \n\n\tΣ"
    lines = normalized_lines(text, raw_lines(text))
    assert lines == [normalized_text(line) for line in raw_lines(text)]
    assert " ".join(filter(None, lines)) == normalized_text(text)   # the document view
    # a text that already holds the line sentinel takes the per-line path
    odd = "a\ue000b\nC"
    assert normalized_lines(odd, raw_lines(odd)) == ["a\ue000b", "c"]


def test_json_round_trip_and_accessors() -> None:
    s = compute_signals(DOC)
    payload = signals_to_json(s)
    assert " " not in payload and payload == signals_to_json(signals_from_json(payload))
    assert signals_from_json(payload) == s          # ints stay ints, floats exact
    assert list(json.loads(payload)) == sorted(SIGNAL_NAMES)
    assert line_scores(s, "rps_lines_num_words").tolist() == [3.0, 3.0, 0.0, 2.0]
    assert line_scores(compute_signals(""), "rps_lines_num_words").shape == (0,)
    assert np.isnan(line_scores(compute_signals(""), "rps_lines_start_with_bulletpoint")).all()
    with pytest.raises(ValueError, match="document-level"):
        doc_score(s, "rps_lines_num_words")
    with pytest.raises(ValueError, match="quality_signals"):
        signals_from_json("[1, 2]")


def test_deterministic_and_language_returned() -> None:
    text = "This is a plain English sentence about the weather today.\n" * 3
    first, lang = compute_signals_with_language(text)
    assert lang == "en"
    assert signals_to_json(first) == signals_to_json(compute_signals(text))
    assert 0.5 < doc_score(first, LANG_SCORE) <= 1.0
    assert pickle.loads(pickle.dumps(compute_signals)) is compute_signals


# ------------------------------------------------------------------ plain reference
def _reference(text: str) -> dict:
    """Every rps_* signal computed the obvious way from RedPajama-V2's definitions."""
    lines = [(m.group(), m.start(), m.end()) for m in re.finditer(r"[^\n]*\n|[^\n]+$", text)]
    norm = normalized_text(text)
    words = norm.split()
    raw = raw_words(text)
    n, nraw, length = len(words), len(raw), len(text)

    def doc(score: object) -> list:
        return [[0, length, score]]

    def frac(a: float, b: int) -> float | None:
        return round(a / b, 8) if b else None

    def top(k: int) -> float:
        grams = Counter(tuple(words[i:i + k]) for i in range(n - k + 1)).most_common(1)
        if not grams or grams[0][1] <= 1:
            return 0.0
        return round(sum(map(len, grams[0][0])) * grams[0][1] / sum(map(len, words)), 8)

    def dupe(k: int) -> float:
        grams = [tuple(words[i:i + k]) for i in range(n - k + 1)]
        counts, covered = Counter(grams), [0] * n
        for i, gram in enumerate(grams):
            if counts[gram] > 1:
                covered[i:i + k] = [1] * k
        total = sum(map(len, words))
        return round(sum(len(w) * c for w, c in zip(words, covered)) / total, 8) if total else 0.0

    counts = Counter(words)
    out = {
        "rps_doc_word_count": doc(n),
        "rps_doc_mean_word_length": doc(frac(sum(map(len, words)), n)),
        "rps_doc_frac_unique_words": doc(frac(len(counts), n)),
        "rps_doc_unigram_entropy": doc(round(sum(-c / n * math.log(c / n)
                                                 for c in counts.values()), 8) if n else None),
        "rps_doc_stop_word_fraction": doc(
            frac(sum(w in rpv2.STOP_WORDS_EN for w in raw), nraw) if n else 0.0),
        "rps_doc_symbol_to_word_ratio": doc(
            frac(sum(text.count(x) for x in ("#", "...", "…")), nraw)),
        "rps_doc_frac_no_alph_words": doc(
            round(1.0 - sum(bool(re.search("[a-zA-Z]", w)) for w in raw) / nraw, 8)
            if nraw else None),
        "rps_doc_frac_all_caps_words": doc(frac(sum(w.isupper() for w in raw), nraw)),
        "rps_doc_frac_lines_end_with_ellipsis": doc(
            frac(sum(t.rstrip().endswith(("...", "…")) for t, _, _ in lines), len(lines))),
        "rps_doc_curly_bracket": doc(
            round((text.count("{") + text.count("}")) / length, 8) if length else 0.0),
        "rps_doc_lorem_ipsum": doc(
            round(len(re.findall("lorem ipsum", norm, re.IGNORECASE)) / len(norm), 8)
            if "lorem ipsum" in norm else 0.0),
        "rps_doc_num_sentences": doc(float(len(re.findall(r"\b[^.!?]+[.!?]*", text)))),
    }
    out |= {f"rps_doc_frac_chars_top_{k}gram": doc(top(k)) for k in (2, 3, 4)}
    out |= {f"rps_doc_frac_chars_dupe_{k}grams": doc(dupe(k)) for k in range(5, 11)}

    def per_line(fn, normalize: bool = False) -> list:
        return [[a, b, fn(normalized_text(t) if normalize else t)] for t, a, b in lines]

    def chars(t: str, pred) -> float:
        return round(sum(map(pred, t)) / len(t), 8) if t else 0.0

    out |= {
        "rps_lines_ending_with_terminal_punctution_mark": per_line(
            lambda t: float(t.rstrip().endswith((".", "!", "?", "”")))),
        "rps_lines_start_with_bulletpoint": per_line(
            lambda t: float(t.lstrip().startswith(rpv2.BULLETS))) or [[0, 0, None]],
        "rps_lines_num_words": per_line(lambda t: len(t.split()), normalize=True),
        "rps_lines_javascript_counts": per_line(
            lambda t: float(sum(w == "javascript" for w in t.split())), normalize=True),
        "rps_lines_numerical_chars_fraction": per_line(
            lambda t: chars(t, str.isnumeric), normalize=True),
        "rps_lines_uppercase_letter_fraction": per_line(lambda t: chars(t, str.isupper)),
    }
    return out


_PIECES = ["the", "The", "CAT", "lorem ipsum", "javascript", "JavaScript", "42", "½", "٣",
           "café", "Cafe\u0301", "ΟΔΟΣ", "σ", "{", "}", "#", "...", "…", "”", "•", "\u2013",
           "x_1", "a1b", "__", "it's", "a.b", "?!", "\ue000", "straße", "İ", "\ud800"]
_SEPARATORS = [" ", " ", " ", "\n", "\n\n", "  \n", "\t", "\r\n", ". ", ", ", "\u2028", ""]


def _random_text(rng: random.Random) -> str:
    # half the documents draw from 3 pieces only, so n-grams repeat
    vocab = _PIECES + list(string.punctuation)
    vocab = rng.sample(vocab, 3) if rng.random() < 0.5 else vocab
    parts = [rng.choice(vocab) + rng.choice(_SEPARATORS) for _ in range(rng.randrange(0, 80))]
    return "".join(parts) if rng.random() < 0.9 else "".join(parts).rstrip("\n") + "\n"


def test_matches_plain_reference_on_random_documents() -> None:
    # the reference is RedPajama-V2's English definitions: per_language=False (random
    # pieces are identified as many languages); English-identified texts agree either way
    rng = random.Random(1234)
    texts = [_random_text(rng) for _ in range(300)]
    texts += ["", "\n", "a", "ΑΣ\nΑ", "word " * 30 + "\n" + "word " * 30, DOC]
    for text in texts:
        got, lang = compute_signals_with_language(text, per_language=False)
        for name, spans in _reference(text).items():
            assert got[name] == spans, (name, text)
        if profile(lang) is ENGLISH:
            assert compute_signals(text) == got
