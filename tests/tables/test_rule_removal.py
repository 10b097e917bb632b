"""Table "rule-removal": per-rule characters and tokens removed by the Gopher, C4 and
FineWeb rule sets (alone and first-fire), the arithmetic between rows, the pooled web
slice, and the claims' verdicts, on a handful of crafted documents."""

from __future__ import annotations

import pytest

from redrobe.config import ConfigError
from redrobe.documents import Document
from redrobe.tables import rule_removal as rr
from redrobe.text import c4, fineweb, gopher

PROSE_LINES = "\n".join([
    "The history of the river valley is long and varied.",
    "Farmers settled along the banks and built small villages with stone walls.",
    "Over the centuries, the towns grew into market centres that traded grain.",
    "Travellers described the landscape as green and quiet, with orchards.",
    "Today the valley is known for its walking trails and for its old mills.",
    "Local historians have collected letters and maps that show how people lived.",
    "They adapted to floods and droughts, and to the changing price of wool.",
])
MENU = "\n".join(["Home", "About us", "Contact", "Shop now", "Login"])
NO_PUNCT = "\n".join(f"a plain sentence number {i} without any final mark at all here" for i in range(8))


def corpus() -> list[Document]:
    return [
        Document("cc0", PROSE_LINES, "common_crawl"),
        Document("cc1", MENU + "\n" + PROSE_LINES, "common_crawl"),   # C4 edits the menu away
        Document("cc2", NO_PUNCT, "common_crawl"),                    # no line ends in punctuation
        Document("c40", PROSE_LINES.replace("\n", " "), "c4"),
        Document("c41", "\n".join([PROSE_LINES] * 3), "c4"),          # repeated lines
        Document("b0", PROSE_LINES, "books"),
    ]


def run_all(make_context, docs=None, settings=None):
    ctx = make_context(rr.SPEC, docs or corpus(), settings=settings)
    results = {v.name: rr.SPEC.run_variant(v, ctx) for v in rr.SPEC.variants(ctx)}
    return ctx, results


def row(rows, slice_name, rule_set, rule):
    return rr.find(rows, rule_set, rule, slice_name)


def test_one_variant_per_rule_set_with_its_thresholds(make_context):
    ctx = make_context(rr.SPEC, corpus(), params={"clean": {"fineweb": {"short_line_thr": 0.5}}})
    variants = {v.name: v.params for v in rr.SPEC.variants(ctx)}
    assert list(variants) == ["gopher", "c4", "fineweb"]
    assert variants["gopher"]["members"] == ["gopher_quality", "gopher_repetition"]
    assert variants["fineweb"]["thresholds"]["fineweb"]["short_line_thr"] == 0.5
    assert variants["c4"]["normalization"] == "NFC"


def test_each_rule_counts_the_characters_of_what_it_removes(make_context):
    docs = corpus()
    ctx, results = run_all(make_context, docs)
    table = rr.SPEC.build(results, ctx)
    chars = {d.id: len(d.text) for d in docs}
    cc_chars = chars["cc0"] + chars["cc1"] + chars["cc2"]
    # FineWeb: cc2 has no punctuated line; cc1's menu lines make it short-line heavy
    punct = row(table.rows, "common_crawl", "fineweb", fineweb.FINEWEB_LINE_PUNCT_RATIO)
    assert punct["ours_alone_docs"] == 1
    assert punct["ours_alone_chars_pct"] == round(100 * chars["cc2"] / cc_chars, 2)
    # C4 drops cc1's five menu lines (no punctuation) and keeps the rest: an edit
    edits = results["c4"]["slices"]["common_crawl"]["first"][rr.LINE_EDITS]
    assert edits[0] == 1 and edits[1] == len(MENU) + 1     # the menu and its newline
    no_punct = results["c4"]["slices"]["common_crawl"]["alone"][c4.C4_LINE_NO_TERMINAL_PUNCTUATION]
    assert no_punct[1] == len(MENU.replace("\n", "")) + len(NO_PUNCT.replace("\n", ""))
    # Gopher repetition: c41 repeats every line
    dup = results["gopher"]["slices"]["c4"]["alone"][gopher.GOPHER_DUP_LINE_FRAC]
    assert dup[:2] == [1, chars["c41"]]
    assert all(r["first_fire_mismatches"] == 0 for r in results.values())


def test_first_fire_rows_add_up_to_any_and_web_pools_its_slices(make_context):
    ctx, results = run_all(make_context)
    for _name, result in results.items():
        rows = rr.rows_of(result, ["common_crawl", "c4"])
        for slice_name in ("common_crawl", "c4", "books", rr.WEB):
            mine = [r for r in rows if r["slice"] == slice_name]
            any_row = next(r for r in mine if r["rule"] == rr.ANY)
            reasons = [r for r in mine if r["rule"] not in
                       (rr.ANY, rr.LINE_EDITS, rr.TOP_NGRAMS, rr.DUP_NGRAMS, *rr.C4_LINES)]
            assert sum(r["ours_first_docs"] for r in reasons) == any_row["ours_first_docs"]
            assert any_row["ours_first_docs"] == any_row["ours_alone_docs"]
            assert sum(r["ours_alone_docs"] for r in reasons) >= any_row["ours_alone_docs"]
        s = result["slices"]
        web = rr.pool_slices(s, ["common_crawl", "c4"])
        assert web["chars"] == s["common_crawl"]["chars"] + s["c4"]["chars"]
        assert web["tokens"] == s["common_crawl"]["tokens"] + s["c4"]["tokens"]
    c4_web = rr.pool_slices(results["c4"]["slices"], ["common_crawl", "c4"])["alone"]
    assert c4_web[rr.LINE_EDITS][1] == sum(c4_web.get(r, [0, 0, 0])[1] for r in rr.C4_LINES)


def test_paper_numbers_sit_beside_web_rows_only(make_context):
    ctx, results = run_all(make_context)
    table = rr.SPEC.build(results, ctx)
    assert row(table.rows, rr.WEB, "fineweb", fineweb.FINEWEB_LINE_PUNCT_RATIO)["paper_tokens_pct"] == 10.14
    assert row(table.rows, rr.WEB, "gopher", rr.TOP_NGRAMS)["paper_tokens_pct"] == 56.71
    assert row(table.rows, rr.WEB, "gopher", rr.ANY)["paper_chars_pct"] == 15.23
    assert row(table.rows, rr.WEB, "c4", c4.C4_LINE_NO_TERMINAL_PUNCTUATION)["paper_chars_pct"] == 22.73
    assert row(table.rows, "books", "gopher", rr.ANY)["paper_chars_pct"] is None
    assert row(table.rows, rr.WEB, "c4", c4.C4_LINE_POLICY)["ours_first_docs"] is None
    assert len(table.claims) == 2 and all(c.holds is not None for c in table.claims)


def test_same_inputs_give_the_same_result(make_context):
    _, first = run_all(make_context)
    _, again = run_all(make_context)
    assert first == again


def test_one_rule_set_alone_leaves_the_other_claim_unchecked(make_context):
    ctx, results = run_all(make_context, settings={"rule_sets": ["fineweb"]})
    assert list(results) == ["fineweb"]
    table = rr.SPEC.build(results, ctx)
    assert {r["rule_set"] for r in table.rows} == {"fineweb"}
    assert table.claims[1].holds is None


def test_bad_settings_name_the_key(make_context):
    with pytest.raises(ConfigError, match=r"tables\.rule_removal\.rule_sets"):
        make_context(rr.SPEC, corpus(), settings={"rule_sets": ["gopher", "nope"]})
    with pytest.raises(ConfigError, match=r"tables\.rule_removal\.web_slices"):
        make_context(rr.SPEC, corpus(), settings={"web_slices": []})


def _claim_rows(short, punct, dup, no_punct, gopher_any):
    def r(rule_set, rule, tokens=None, chars=None):
        return {"slice": rr.WEB, "rule_set": rule_set, "rule": rule,
                "ours_alone_tokens_pct": tokens, "ours_alone_chars_pct": chars}
    return [r("fineweb", fineweb.FINEWEB_SHORT_LINE_RATIO, short),
            r("fineweb", fineweb.FINEWEB_LINE_PUNCT_RATIO, punct),
            r("fineweb", fineweb.FINEWEB_CHAR_DUP_RATIO, dup),
            r("c4", c4.C4_LINE_NO_TERMINAL_PUNCTUATION, chars=no_punct),
            r("gopher", rr.ANY, chars=gopher_any)]


def test_claim_verdicts_on_hand_made_rows():
    rows = _claim_rows(3.37, 10.14, 12.47, 22.73, 15.23)      # the papers' own numbers
    assert rr.short_line_claim(rows).holds is True
    assert rr.no_punctuation_claim(rows).holds is True
    rows = _claim_rows(11.0, 10.14, 12.47, 10.0, 15.23)
    assert rr.short_line_claim(rows).holds is False
    assert rr.no_punctuation_claim(rows).holds is False
    assert rr.short_line_claim(rows[3:]).holds is None
