"""Every reason a rule set's checks give on their own (``reasons``, C4's ``report``), and
that its first one is what ``check`` reports (the per-rule counts of the rule-removal table).

    pytest tests/text/test_rule_reasons.py -q
"""

from __future__ import annotations

import pytest

from redrobe.config import C4Params, FineWebParams, GopherQualityParams, GopherRepetitionParams
from redrobe.text import c4, fineweb, gopher

PROSE = ("The history of the river valley is long and varied. Farmers settled along the banks "
         "and built small villages with stone walls. Over the centuries, the towns grew into "
         "market centres that traded grain, wool and timber with distant cities. Travellers "
         "described the landscape as green and quiet, with orchards that bloomed every spring.")
PROSE_LINES = PROSE.replace(". ", ".\n")


def test_gopher_quality_lists_every_failing_check_in_order() -> None:
    rules = gopher.GopherQualityRules(GopherQualityParams())
    text = "### ### ### ###"   # no words at all: short, mean length 0, hashes, no letters, no stop words
    assert rules.reasons(text) == [gopher.GOPHER_SHORT_DOC, gopher.GOPHER_BELOW_AVG_WORD_LENGTH,
                                   gopher.GOPHER_TOO_MANY_HASHES, gopher.GOPHER_BELOW_ALPHA_THRESHOLD,
                                   gopher.GOPHER_TOO_FEW_STOP_WORDS]
    assert rules.check(text).reason == gopher.GOPHER_SHORT_DOC
    assert rules.reasons(PROSE * 2) == [] and rules.check(PROSE * 2).keep


def test_gopher_repetition_reports_line_and_ngram_checks_together() -> None:
    rules = gopher.GopherRepetitionRules(GopherRepetitionParams())
    text = "\n".join([PROSE_LINES] * 3)      # every line three times
    reasons = rules.reasons(text)
    assert reasons[0] == rules.check(text).reason == gopher.GOPHER_DUP_LINE_FRAC
    assert gopher.GOPHER_DUP_LINE_CHAR_FRAC in reasons and gopher.GOPHER_DUP_5GRAM in reasons
    assert rules.reasons(PROSE_LINES) == []


def test_fineweb_counts_each_rule_on_its_own() -> None:
    rules = fineweb.FineWebRules(FineWebParams())
    text = "\n".join(["short line", "another one", "short line"] * 5)   # no punctuation, short, repeated
    reasons = rules.reasons(text)
    assert reasons == [fineweb.FINEWEB_LINE_PUNCT_RATIO, fineweb.FINEWEB_SHORT_LINE_RATIO,
                       fineweb.FINEWEB_CHAR_DUP_RATIO, fineweb.FINEWEB_LIST_RATIO]
    assert rules.check(text).reason == reasons[0]


def test_c4_report_names_page_rules_alone_and_dropped_lines_per_filter() -> None:
    rules = c4.C4Rules(C4Params())
    noise = ["Menu Home About", "Click here to enable javascript now.", "Ok."]
    text = "\n".join([*noise, "Lorem ipsum dolor sit amet.", "The value is {x} here.", PROSE_LINES])
    report = rules.report(text)
    # each page-level rule as if alone: both fire; check() stops at the first
    assert report.reasons == [c4.C4_LOREM_IPSUM, c4.C4_CURLY_BRACKET]
    assert rules.check(text).reason == c4.C4_LOREM_IPSUM
    assert report.dropped == {c4.C4_LINE_NO_TERMINAL_PUNCTUATION: ["Menu Home About"],
                              c4.C4_LINE_JAVASCRIPT: ["Click here to enable javascript now."],
                              c4.C4_LINE_TOO_FEW_WORDS: ["Ok."]}


@pytest.mark.parametrize("text", [PROSE_LINES, "Menu\n" + PROSE_LINES + "\nShare this", "tiny"])
def test_c4_report_text_is_what_check_keeps(text: str) -> None:
    rules = c4.C4Rules(C4Params())
    report, decision = rules.report(text), rules.check(text)
    assert (report.reasons[:1] or [None])[0] == decision.reason
    if decision.keep:
        assert report.text == (decision.text if decision.text is not None else text)
        dropped = sum(len(line) for lines in report.dropped.values() for line in lines)
        assert dropped == (len("Menu") + len("Share this") if "Menu" in text else 0)
