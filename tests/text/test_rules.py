"""Every rule's exact reason on a crafted document; clean prose and clean code are kept.

    pytest tests/text/test_rules.py -q
"""

from __future__ import annotations

import pytest

from redrobe.config import C4Params, Clean, CodeParams, GopherQualityParams, GopherRepetitionParams
from redrobe.documents import Document
from redrobe.text import c4, code, gopher
from redrobe.text.base import KEEP
from redrobe.text.normalize import normalized_words
from redrobe.text.rules import KEPT, QUARANTINED, REMOVED, RULE_SETS, Cleaner, CleanStats, build_rule_sets
from redrobe.text.signals import NgramIndex

# A realistic paragraph: 94 words, stop words, terminal punctuation, 5 sentences.
PROSE = (
    "The history of the river valley is long and varied. Farmers settled along the banks "
    "and built small villages with stone walls. Over the centuries, the towns grew into "
    "market centres that traded grain, wool and timber with distant cities. Travellers "
    "described the landscape as green and quiet, with orchards that bloomed every spring. "
    "Today the valley is known for its walking trails and for the old mills that still stand "
    "beside the water, and local historians have collected letters and maps that show how "
    "the people of the region adapted to floods and droughts."
)
PROSE_LINES = PROSE.replace(". ", ".\n")  # one sentence per line, as web text often comes

CODE = '''"""Small helpers for reading configuration files."""

import json
from pathlib import Path


def load_settings(path: str) -> dict:
    """Read a JSON settings file and fill in the defaults."""
    settings = json.loads(Path(path).read_text(encoding="utf-8"))
    settings.setdefault("timeout", 30)
    settings.setdefault("retries", 3)
    return settings


def describe(settings: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(settings.items()))
'''


def unique_tokens(count: int, start: int = 0) -> list[str]:
    """Distinct filler words that never repeat ("tok0000", "tok0001", ...)."""
    return [f"tok{i:04d}" for i in range(start, start + count)]


def quality(text: str, **overrides) -> str | None:
    return gopher.GopherQualityRules(GopherQualityParams(**overrides)).check(text).reason


def repetition(text: str) -> str | None:
    return gopher.GopherRepetitionRules(GopherRepetitionParams()).check(text).reason


def c4_reason(text: str) -> str | None:
    return c4.C4Rules(C4Params()).check(text).reason


def code_reason(text: str) -> str | None:
    return code.CodeRules(CodeParams()).check(text).reason


# ---------------------------------------------------------------- clean documents kept

@pytest.mark.parametrize("text", [PROSE, PROSE_LINES])
def test_every_prose_rule_set_keeps_clean_prose(text: str) -> None:
    assert len(PROSE.split()) > 50
    for name in ("gopher_quality", "gopher_repetition", "c4"):
        (rule_set,) = build_rule_sets([name], Clean())
        assert rule_set(Document("d", text, "c4")).reason is None, name


def test_clean_prose_passes_c4_unchanged() -> None:
    assert c4.C4Rules(C4Params()).check(PROSE_LINES) == KEEP


def test_code_rules_keep_real_code() -> None:
    assert code_reason(CODE) is None


# ---------------------------------------------------------------- Gopher quality

def test_gopher_short_doc() -> None:
    assert quality("The cat sat on the mat with the dog.") == gopher.GOPHER_SHORT_DOC


def test_gopher_long_doc() -> None:
    assert quality("the river " * 50_001) == gopher.GOPHER_LONG_DOC


def test_gopher_below_avg_word_length() -> None:
    assert quality("it is a to be of an ox " * 8) == gopher.GOPHER_BELOW_AVG_WORD_LENGTH


def test_gopher_above_avg_word_length() -> None:
    text = "the internationalization of telecommunications " * 15
    assert quality(text) == gopher.GOPHER_ABOVE_AVG_WORD_LENGTH


def test_gopher_too_many_hashes() -> None:
    assert quality(PROSE + " #tag" * 15) == gopher.GOPHER_TOO_MANY_HASHES


def test_gopher_too_many_ellipsis() -> None:
    assert quality(PROSE + " wait..." * 15) == gopher.GOPHER_TOO_MANY_ELLIPSIS


def test_gopher_too_many_bullets() -> None:
    line = "\u2022 the walls of the old mill stand beside the quiet water"
    assert quality("\n".join([line] * 10)) == gopher.GOPHER_TOO_MANY_BULLETS


def test_gopher_too_many_end_ellipsis() -> None:
    sentences = PROSE.split(". ")
    lines = [s + ("\u2026" if i < 2 else ".") for i, s in enumerate(sentences)]
    assert quality("\n".join(lines)) == gopher.GOPHER_TOO_MANY_END_ELLIPSIS


def test_gopher_below_alpha_threshold() -> None:
    # 94 words with letters + 30 numbers: 94 / 124 = 0.76 of tokens hold a letter
    assert quality(PROSE + " 1234" * 30) == gopher.GOPHER_BELOW_ALPHA_THRESHOLD


def test_gopher_too_few_stop_words() -> None:
    text = "Bright green apples grow quickly near quiet mountain villages. " * 7
    assert quality(text) == gopher.GOPHER_TOO_FEW_STOP_WORDS


def test_whitespace_words_keep_verse() -> None:
    # punctuation-heavy verse: a tokenizer that makes every mark a word would count
    # ~30 % non-alphabetic words here; whitespace tokens all hold letters
    verse = "\n".join(["O, speak again, bright angel! for thou art,",
                       "As glorious to this night, being o'er my head,",
                       "As is a winged messenger of heaven;", "Unto the white-upturned wondering eyes,"] * 4)
    assert quality(verse) is None


# ---------------------------------------------------------------- Gopher repetition

SENTENCES = [s + "." for s in PROSE.rstrip(".").split(". ")]  # 5 distinct sentences


def test_gopher_dup_para_frac() -> None:
    a, b = SENTENCES[0], SENTENCES[1]
    assert repetition("\n\n".join([a, b, a, a])) == gopher.GOPHER_DUP_PARA_FRAC


def test_gopher_dup_para_char_frac() -> None:
    long_para = " ".join(SENTENCES)
    text = "\n\n".join([long_para, "Short one.", "Short two.", long_para])   # 1 of 4 repeated
    assert repetition(text) == gopher.GOPHER_DUP_PARA_CHAR_FRAC


def test_gopher_dup_line_frac() -> None:
    a, b = SENTENCES[0], SENTENCES[1]
    assert repetition("\n".join([a, b, a, a])) == gopher.GOPHER_DUP_LINE_FRAC


def test_gopher_dup_line_char_frac() -> None:
    long_line = " ".join(SENTENCES)
    text = "\n".join([long_line, "Short one.", "Short two.", long_line])
    assert repetition(text) == gopher.GOPHER_DUP_LINE_CHAR_FRAC


def test_gopher_top_2gram() -> None:
    # "big cat" in every unit: 6 chars x 12 over 12 x (6 + 7) chars = 0.46
    words = [w for tok in unique_tokens(12) for w in ("big", "cat", tok)]
    assert repetition(" ".join(words)) == gopher.GOPHER_TOP_2GRAM


def test_gopher_top_3gram() -> None:
    # 10 x "alpha bravo charl" + 8 unique fillers each: top-2 = 0.16 (<= 0.2), top-3 = 0.24
    words = [w for i in range(10) for w in ("alpha", "bravo", "charl", *unique_tokens(8, 8 * i))]
    index = NgramIndex(normalized_words(" ".join(words)))
    assert index.frac_chars_top_ngram(2) <= 0.2 and index.frac_chars_top_ngram(3) > 0.18
    assert repetition(" ".join(words)) == gopher.GOPHER_TOP_3GRAM


def test_gopher_top_4gram() -> None:
    words = [w for i in range(10)
             for w in ("alpha", "bravo", "charl", "delta", *unique_tokens(14, 14 * i))]
    index = NgramIndex(normalized_words(" ".join(words)))
    assert index.frac_chars_top_ngram(3) <= 0.18 and index.frac_chars_top_ngram(4) > 0.16
    assert repetition(" ".join(words)) == gopher.GOPHER_TOP_4GRAM


FIVE_LETTER = ["alpha", "bravo", "charl", "delta", "echos", "foxtr", "golfs", "hotel", "india", "julie"]
DUP_LIMITS = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def dup_ngram_text(n: int) -> str:
    """One n-gram of distinct words, twice, in unique filler sized so that its covered
    chars sit just above the n limit and below the (n-1) limit."""
    covered = 2 * n * 5
    target = DUP_LIMITS[n] + 0.004
    fillers = round((covered / target - covered) / 7)          # filler words are 7 chars
    half = fillers // 2
    words = (unique_tokens(half) + FIVE_LETTER[:n] + unique_tokens(fillers - half, half)
             + FIVE_LETTER[:n])
    return " ".join(words)


@pytest.mark.parametrize("n", sorted(DUP_LIMITS))
def test_gopher_dup_ngram(n: int) -> None:
    text = dup_ngram_text(n)
    index = NgramIndex(normalized_words(text))
    assert DUP_LIMITS[n] < index.frac_chars_dupe_ngrams(n)
    assert repetition(text) == gopher.dup_ngram_reason(n)


def test_dup_ngram_reason_constants() -> None:
    assert [gopher.GOPHER_DUP_5GRAM, gopher.GOPHER_DUP_10GRAM] == ["gopher_dup_5gram", "gopher_dup_10gram"]
    assert gopher.GOPHER_TOP_2GRAM == "gopher_top_2gram"


# ---------------------------------------------------------------- C4

def test_c4_lorem_ipsum() -> None:
    text = PROSE_LINES + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
    assert c4_reason(text) == c4.C4_LOREM_IPSUM


def test_c4_curly_bracket() -> None:
    text = PROSE_LINES + "\nCall the helper with { retries: 3 } in the settings."
    assert c4_reason(text) == c4.C4_CURLY_BRACKET


def test_c4_too_few_sentences() -> None:
    assert c4_reason("The mill is old. It still stands.\nIt is near the river.") == c4.C4_TOO_FEW_SENTENCES


def test_c4_drops_lines_and_keeps_the_rest() -> None:
    noise = ["Home | About | Contact",                                  # no terminal punctuation
             "Please enable JavaScript to view the comments.",           # javascript
             "This site uses cookies to improve your experience.",       # policy boilerplate
             "Thanks!",                                                  # fewer than 3 words
             "Read more about the valley in our archive...",             # ellipsis
             "  The mills were restored in 1990 [3] by volunteers.  ",   # kept: citation removed, stripped
             "{ code lines without punctuation are dropped as lines }",
             "x" * 1001 + " long word lines go."]
    decision = c4.C4Rules(C4Params()).check("\n".join(noise[:3] + PROSE_LINES.split("\n") + noise[3:]))
    assert decision.keep
    assert decision.text == PROSE_LINES + "\nThe mills were restored in 1990  by volunteers."


def test_c4_line_toggles() -> None:
    text = PROSE_LINES + "\nPlease enable JavaScript to view the comments."
    off = c4.C4Rules(C4Params(filter_javascript_lines=False)).check(text)
    assert off.keep and off.text is None          # nothing dropped: text unchanged


# ---------------------------------------------------------------- code

def test_code_empty() -> None:
    assert code_reason("  \n\t\n") == code.CODE_EMPTY


def test_code_max_line_length() -> None:
    text = "x = 1\n" * 30 + "data = '" + "a" * 1200 + "'\n"
    assert code_reason(text) == code.CODE_MAX_LINE_LENGTH


def test_code_mean_line_length() -> None:
    line = ("result = compute_total(first_value, second_value) + adjust(third_value, fourth_value) "
            "* scale_factor(fifth)")
    assert 100 < len(line) < 1000
    assert code_reason("\n".join([line] * 5)) == code.CODE_MEAN_LINE_LENGTH


def test_code_low_alnum_fraction() -> None:
    assert code_reason("# " + "=-" * 30 + "\nx = 1\n# " + "*/" * 30 + "\n") == code.CODE_LOW_ALNUM_FRACTION


def test_code_low_alpha_per_token() -> None:
    assert code_reason("1,2,3,4,5,6,7,8,9,0\n" * 20) == code.CODE_LOW_ALPHA_PER_TOKEN


# ---------------------------------------------------------------- registry and Cleaner

def test_registry_matches_config_names() -> None:
    assert set(RULE_SETS) == set(Clean.RULE_SET_NAMES)
    with pytest.raises(ValueError, match="bogus"):
        build_rule_sets(["bogus"], Clean())


def test_cleaner_applies_the_slice_rule_sets_in_order() -> None:
    cleaner = Cleaner.for_slice("c4", Clean())
    assert cleaner.rule_set_names == ["gopher_quality", "gopher_repetition", "c4"]
    noisy = PROSE_LINES + "\nPlease enable JavaScript to view the comments."
    docs = [Document("keep", noisy, "c4"), Document("short", "Too short.", "c4"),
            Document("lorem", PROSE_LINES + "\nLorem ipsum dolor sit amet, consectetur elit.", "c4"),
            Document("null", None, "c4")]  # type: ignore[arg-type]
    kept, short, lorem, null = list(cleaner(docs))
    assert (kept.status, kept.doc.text) == (KEPT, PROSE_LINES)
    assert kept.chars_edited == {"c4": len(noisy) - len(PROSE_LINES)}
    assert (short.status, short.reason, short.rule_set) \
        == (REMOVED, gopher.GOPHER_SHORT_DOC, "gopher_quality")
    assert (lorem.reason, lorem.rule_set) == (c4.C4_LOREM_IPSUM, "c4")
    assert lorem.doc.text.endswith("consectetur elit.")      # removed docs keep their original text
    assert null.status == QUARANTINED and null.error.startswith("TypeError")


def test_cleaner_normalizes_unicode_first() -> None:
    cleaner = Cleaner.for_slice("no_rules_slice", Clean(normalization="NFKC"))
    assert cleaner.rule_set_names == []
    (outcome,) = cleaner([Document("d", "\ufb01ne cafe\u0301", "x")])
    assert outcome.doc.text == "fine café" and outcome.input_chars == 9


def test_clean_stats_count_rule_sets_and_chars() -> None:
    cleaner = Cleaner.for_slice("c4", Clean())
    stats = CleanStats()
    stats.start_slice("c4", cleaner.rule_set_names)
    for outcome in cleaner([Document("a", PROSE, "c4"), Document("b", "Too short.", "c4")]):
        stats.add("c4", outcome)
    out = stats.as_dict()
    assert out["slices"]["c4"]["chars_removed_by_reason"] == {gopher.GOPHER_SHORT_DOC: 10}
    assert out["rule_sets"]["gopher_quality"]["docs_checked"] == 2
    assert out["rule_sets"]["gopher_quality"]["docs_removed"] == 1
    assert out["rule_sets"]["c4"]["docs_checked"] == 1
    assert out["slices_without_rules"] == []


@pytest.mark.parametrize("text", [CODE, "x\x1c= 1;\x0b\ty += 2 ... __init__",
                                  "café = 'naïve' + ünïcode_42\n"])
def test_code_char_stats_fast_path_equals_definitions(text: str) -> None:
    from redrobe.text.normalize import raw_words

    expected = (sum(map(str.isalnum, text)), sum(map(str.isalpha, text)), len(raw_words(text)))
    assert code.char_stats(text) == expected
