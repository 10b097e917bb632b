"""Every preset runs on real text (the Python documentation's pydoc topics, shipped with
the interpreter) and on crafted documents, and removes only with its own named reasons.

    pytest tests/text/test_presets.py -q
"""

from __future__ import annotations

from collections import Counter
from pydoc_data.topics import topics

import pytest

from redrobe.config import Clean
from redrobe.documents import Document
from redrobe.text import c4, fineweb, gopher
from redrobe.text.rules import KEPT, Cleaner, build_rule_sets

CLEAN = Clean()
#: what each default preset may remove a document for
PRESET_REASON_PREFIX = {"gopher": "gopher_", "c4": "c4_", "fineweb": "fineweb_",
                        "redpajama_v2_example": "expr_rpv2_"}
REAL = [Document(f"pydoc-{name}", text, "books") for name, text in sorted(topics.items())]


def words(count: int, start: int = 0) -> str:
    return " ".join(f"tok{i:04d}" for i in range(start, start + count))


#: preset -> (crafted text, the reason it must give)
CRAFTED = {
    "gopher": [("Too short to keep.", gopher.GOPHER_SHORT_DOC),
               ("\n".join(["The same line of the old play, again and again."] * 6),
                gopher.GOPHER_DUP_LINE_FRAC)],
    "c4": [("The first sentence is fine.\n" * 3 + "Lorem ipsum dolor sit amet, consectetur.",
            c4.C4_LOREM_IPSUM),
           ("def f(x):\n    return x\n", c4.C4_TOO_FEW_SENTENCES)],
    "fineweb": [("\n".join(f"Menu item {i}" for i in range(12)), fineweb.FINEWEB_LINE_PUNCT_RATIO)],
    "redpajama_v2_example": [
        ("Too short to keep.", "expr_rpv2_word_count"),
        (" ".join(f"supercalifragilistic{i}" for i in range(60)), "expr_rpv2_mean_word_length"),
        (words(60) + " #" * 10, "expr_rpv2_symbol_word_ratio"),
        ("\n".join(f"\u2022 tok{i:04d}" for i in range(60)), "expr_rpv2_bullet_lines"),
        (" ".join(f"the cat tok{i:04d}" for i in range(30)), "expr_rpv2_top_2gram"),
    ],
}


def cleaner(preset: str) -> Cleaner:
    return Cleaner(CLEAN.normalization, build_rule_sets(CLEAN.resolve([preset]), CLEAN))


def test_the_four_presets_exist_and_resolve() -> None:
    assert set(CLEAN.presets) == set(PRESET_REASON_PREFIX)
    assert CLEAN.resolve(["gopher"]) == ["gopher_quality", "gopher_repetition"]
    assert CLEAN.resolve(["c4"]) == ["c4"] and CLEAN.resolve(["fineweb"]) == ["fineweb"]
    assert CLEAN.resolve(["redpajama_v2_example"]) == [f"expr:{n}" for n in CLEAN.expressions]


@pytest.mark.parametrize("preset", sorted(PRESET_REASON_PREFIX))
def test_preset_on_real_documentation_text(preset: str) -> None:
    outcomes = list(cleaner(preset)(REAL))
    reasons = Counter(o.reason for o in outcomes if o.reason is not None)
    assert all(o.error is None for o in outcomes)
    assert reasons, f"{preset} removed none of {len(REAL)} real documents"
    assert all(r.startswith(PRESET_REASON_PREFIX[preset]) for r in reasons), reasons
    kept = {o.doc.id for o in outcomes if o.status == KEPT}
    assert {"pydoc-naming", "pydoc-execmodel"} <= kept          # long, clean prose


@pytest.mark.parametrize("preset, text, reason",
                         [(p, t, r) for p, cases in sorted(CRAFTED.items()) for t, r in cases])
def test_preset_gives_its_reason_on_a_crafted_document(preset: str, text: str, reason: str) -> None:
    (outcome,) = cleaner(preset)([Document("d", text, "common_crawl")])
    assert outcome.reason == reason


def test_rule_sets_mix_presets_rule_sets_and_expressions() -> None:
    clean = Clean(rule_sets={"web": ["gopher", "expr:short", "fineweb"]},
                  expressions={"short": "rps_doc_word_count < 200"})
    web = Cleaner.for_slice("web", clean)
    assert web.rule_set_names == ["gopher_quality", "gopher_repetition", "expr:short", "fineweb"]
    assert web.needs_signals
    (outcome,) = web([Document("d", topics["naming"][:1200], "web")])
    assert (outcome.reason, outcome.rule_set) == ("expr_short", "expr:short")


def test_redefined_preset_changes_every_slice_that_lists_it() -> None:
    clean = Clean(presets={**CLEAN.presets, "c4": ["c4", "fineweb"]})
    assert Cleaner.for_slice("c4", clean).rule_set_names == ["gopher_quality", "gopher_repetition",
                                                             "c4", "fineweb"]
    assert clean.validate() == []


@pytest.mark.parametrize("clean, problem", [
    (Clean(rule_sets={"x": ["gopher", "gopher_quality"]}), "rule_sets.x: 'gopher_quality' is listed twice"),
    (Clean(rule_sets={"x": ["nope"]}), "rule_sets.x: unknown rule set or preset 'nope'"),
    (Clean(presets={"p": ["gopher"]}), "presets.p: unknown rule set or preset 'gopher'"),
    (Clean(presets={"p": ["expr:zzz"]}), "presets.p: 'expr:zzz': no expression 'zzz'"),
    (Clean(expressions={"bad name": "rps_doc_word_count < 1"}), "expressions.bad name: name must be"),
])
def test_bad_presets_and_entries_are_config_problems(clean: Clean, problem: str) -> None:
    assert any(p.startswith(problem) for p in clean.validate()), clean.validate()


def test_signals_are_computed_only_when_stored_or_read() -> None:
    assert not Cleaner(CLEAN.normalization, build_rule_sets(["c4"], CLEAN)).needs_signals
    (outcome,) = Cleaner(CLEAN.normalization, build_rule_sets(["c4"], CLEAN))(REAL[:1])
    assert outcome.columns == {}
    (stored,) = Cleaner(CLEAN.normalization, [], store_signals=True)(REAL[:1])
    assert set(stored.columns) == {"quality_signals", "language"}
