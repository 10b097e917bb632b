"""filter-ablation: per-slice rule choice, what each step removes, accounting, determinism,
the shared evaluation set, the table arithmetic and the claim's criterion, settings."""

from __future__ import annotations

import json
import math
import random

import pytest

from redrobe.config import ConfigError, params_from_dict
from redrobe.dedup import EXACT_DUPLICATE
from redrobe.documents import Document
from redrobe.tables import filter_ablation as fa
from redrobe.tables.spec import Context

TINY_LM = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
           "seq_len": 16, "steps": 5, "batch_size": 2, "warmup_steps": 1, "eval_batches": 1,
           "threads": 1}
WORDS = ["the", "and", "of", "to", "with", "that", "have", "river", "stone", "light", "winter", "garden",
         "letter", "market", "window", "morning", "harbour", "village", "evening", "mountain", "silver",
         "kitchen", "orchard"]


def prose(rng: random.Random, lines: int = 7, terminal: str = ".") -> str:
    """Lines of 8-14 random words: passes Gopher (enough stop words, varied n-grams) and,
    with terminal punctuation, C4 (>= 5 sentences)."""
    return "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))).capitalize()
                     + terminal for _ in range(lines))


def corpus() -> list[Document]:
    rng = random.Random(11)
    docs: list[Document] = []

    def add(source: str, text: str) -> None:
        docs.append(Document(id=f"{source}-{len(docs):03d}", text=text, source=source, meta={}))

    for _ in range(10):
        add("c4", prose(rng))
    for _ in range(3):
        add("c4", "Too short to be a document.")           # gopher_short_doc
        add("c4", prose(rng, terminal=""))                 # Gopher passes, C4 drops every line
    twin = prose(rng)
    for _ in range(3):
        add("c4", twin)                                    # exact duplicates: dedup keeps one
    for _ in range(6):
        add("wikipedia", prose(rng, lines=9))
    add("books", "A short verse of few words")             # books: Gopher repetition only
    for _ in range(4):
        add("books", prose(rng, lines=12))
    for k in range(6):                                     # github: code rules only
        add("github", "\n".join(f"def compute_total_{k}_{i}(values, offset):\n"
                                 f"    result = sum(values) + offset * {i}\n    return result"
                                 for i in range(5)))
    return docs


@pytest.fixture
def ctx(make_context) -> Context:
    return make_context(fa.SPEC, corpus(), settings={"lm": TINY_LM},
                        params={"shared": {"val_fraction": 0.2}})


@pytest.fixture
def results(ctx) -> dict[str, dict]:
    return {v.name: fa.run_variant(v, ctx) for v in fa.variants(ctx)}


def test_variants_enable_rules_per_slice_as_the_clean_stage_does(ctx):
    vs = {v.name: v for v in fa.variants(ctx)}
    assert list(vs) == list(fa.FILTERS)
    for v in vs.values():
        json.dumps(v.params)
    assert all(rules == [] for rules in vs["none"].params["rule_sets"].values())
    gopher = vs["gopher"].params["rule_sets"]
    assert gopher["c4"] == ["gopher_quality", "gopher_repetition"]
    assert gopher["books"] == ["gopher_repetition"]
    assert gopher["github"] == ["code"]          # never the prose rules
    assert vs["gopher-c4"].params["rule_sets"]["c4"] == ["gopher_quality", "gopher_repetition",
                                                          "c4"]
    assert vs["gopher-c4"].params["rule_sets"]["github"] == ["code"]
    assert [v.params["dedup"] is not None for v in vs.values()] == [False, False, False, True]
    assert len({json.dumps(v.params["eval_rule_sets"]) for v in vs.values()}) == 1
    assert vs["none"].params["rule_params"]["c4"]["min_sentences"] == 5   # tracked by DVC


def test_each_step_removes_what_it_should_and_documents_add_up(results):
    assert results["none"]["removed_by_reason"] == {}
    assert results["none"]["kept_documents"] == results["none"]["input_documents"]
    gopher = results["gopher"]["removed_by_reason"]
    assert set(gopher) == {"gopher_short_doc"}
    assert "c4_too_few_sentences" in results["gopher-c4"]["removed_by_reason"]
    assert EXACT_DUPLICATE in results["gopher-c4-dedup"]["removed_by_reason"]
    assert EXACT_DUPLICATE not in results["gopher-c4"]["removed_by_reason"]
    for r in results.values():
        assert sum(r["input_documents"].values()) == (sum(r["kept_documents"].values())
                                                     + sum(r["removed_by_reason"].values()))
        assert r["training_tokens"] == sum(r["kept_tokens"].values())
        assert r["repeats"] == pytest.approx(r["budget_tokens"] / r["training_tokens"], abs=1e-4)
    # books and github never see the prose rules that would drop them
    for name in ("gopher", "gopher-c4"):
        for slice_name in ("github", "books"):
            assert (results[name]["kept_documents"][slice_name]
                    == results["none"]["kept_documents"][slice_name])
    tokens = [results[n]["training_tokens"] for n in fa.FILTERS]
    assert tokens == sorted(tokens, reverse=True) and tokens[0] > tokens[-1]


def test_every_variant_is_scored_on_the_same_clean_text(ctx, results):
    evals = {json.dumps([r["eval_documents"], r["eval_tokens"]]) for r in results.values()}
    assert len(evals) == 1
    r = results["none"]
    assert set(r["perplexity"]) == set(r["eval_documents"])
    for name, loss in r["held_out_loss"].items():
        assert r["perplexity"][name] == pytest.approx(math.exp(loss), rel=1e-4)
    assert r["mean_perplexity"] == pytest.approx(
        sum(r["perplexity"].values()) / len(r["perplexity"]), rel=1e-4)
    # the short c4 documents never reach the evaluation set
    val = [d for d in ctx.documents() if ctx.is_validation(d)]
    passing = [d for d in val if d.text != "Too short to be a document." and not
               (d.source == "c4" and not d.text.rstrip().endswith("."))]
    assert sum(r["eval_documents"].values()) == len(passing)


def test_run_is_deterministic(ctx):
    v = {v.name: v for v in fa.variants(ctx)}["gopher-c4-dedup"]
    a, b = fa.run_variant(v, ctx), fa.run_variant(v, ctx)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


# ----------------------------------------------------------------------------- table logic

def fake(name: str, docs: int, tokens: int, ppl: dict[str, float], budget: int = 1000) -> dict:
    return {"filter": name, "input_documents": {"c4": 100}, "kept_documents": {"c4": docs},
            "removed_by_reason": {"x": 100 - docs}, "kept_tokens": {"c4": tokens},
            "training_tokens": tokens, "budget_tokens": budget, "repeats": budget / tokens,
            "eval_documents": {"c4": 5, "books": 2}, "eval_tokens": {"c4": 500, "books": 900},
            "held_out_loss": {k: math.log(v) for k, v in ppl.items()},
            "perplexity": ppl, "mean_perplexity": sum(ppl.values()) / len(ppl), "seconds": 1.0}


def hand_context(**settings) -> Context:
    params = params_from_dict({"tables": {"filter_ablation": settings}})
    return Context(params=params, settings=fa.SPEC.load_settings(params), scale="test", work=None)


def test_rows_percentages_add_up_and_claim_follows_the_criterion():
    results = {"none": fake("none", 100, 8000, {"c4": 120.0, "books": 80.0}),
               "gopher": fake("gopher", 90, 7000, {"c4": 110.0, "books": 82.0}),
               "gopher-c4": fake("gopher-c4", 80, 6000, {"c4": 100.0, "books": 84.0}),
               "gopher-c4-dedup": fake("gopher-c4-dedup", 75, 5000, {"c4": 98.0, "books": 90.0})}
    table = fa.build(results, hand_context())
    assert [r["filter"] for r in table.rows] == list(fa.FILTERS)
    assert all(list(r) == table.columns for r in table.rows)
    last = table.rows[-1]
    assert last["ours_train_documents_kept_pct"] == 75.0
    assert last["ours_train_documents"] + last["ours_removed_documents"] == 100
    assert any("gopher-c4-dedup removed 25 training documents: x 25." == n for n in table.notes)
    assert last["ours_train_tokens_kept_pct"] == 62.5
    assert last["ours_ppl_books"] == 90.0 and last["ours_mean_ppl"] == 94.0
    assert last["ours_mean_ppl_vs_none_pct"] == -6.0
    assert last["ours_repeats"] == 0.2
    assert table.claims[0].holds is True and "-6.00 %" in table.claims[0].detail
    # a 10 % margin is not met by a 6 % improvement
    assert fa.filtering_claim(results, fa.Settings(min_improvement_pct=10.0)).holds is False
    assert fa.filtering_claim({"none": results["none"]}, fa.Settings()).holds is None


@pytest.mark.parametrize("settings, key", [
    ({"min_improvement_pct": 150}, "tables.filter_ablation.min_improvement_pct"),
    ({"gopher_rule_sets": []}, "tables.filter_ablation.gopher_rule_sets"),
    ({"lm": {"steps": 0}}, "tables.filter_ablation.lm.steps"),
    ({"filters": ["none"]}, "tables.filter_ablation.filters"),
])
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        hand_context(**settings)


def test_unknown_rule_set_names_the_entry(make_context):
    ctx = make_context(fa.SPEC, corpus(), settings={"gopher_rule_sets": ["gopherr"]})
    with pytest.raises(ConfigError, match=r"gopher_rule_sets: .*gopherr"):
        fa.variants(ctx)
