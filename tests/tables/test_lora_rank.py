"""lora-rank: parameter counts vs the formula, fractions, the base's domain shift,
determinism, the plateau verdict on hand-made results, and settings errors."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from redrobe.config import ConfigError
from redrobe.documents import Document
from redrobe.tables import lora_rank as lr
from redrobe.tables.spec import Context

# hidden 64 so r = 64 is a valid rank of W_q and W_v; one layer, a few steps
TINY_LM = {"hidden_size": 64, "num_layers": 1, "num_heads": 4, "intermediate_size": 64,
           "seq_len": 16, "steps": 4, "batch_size": 2, "warmup_steps": 1, "eval_batches": 1,
           "threads": 1}
TINY_ADAPT = {"steps": 3, "batch_size": 2, "warmup_steps": 1, "eval_batches": 2}
TINY = {"ranks": [1, 2, 64], "small_rank": 2, "plateau_from": 2, "lm": TINY_LM,
        "adapt": TINY_ADAPT}
PLAIN = ["the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his",
         "on", "be", "at", "by", "had"]
BOOKISH = ["river", "stone", "light", "winter", "garden", "letter", "market", "song", "north", "window",
           "thee"]


def corpus(n: int = 36) -> list[Document]:
    """books speaks another vocabulary than c4 and wikipedia: a domain shift to adapt to."""
    rng = random.Random(11)
    docs = []
    for i in range(n):
        source = ("books", "c4", "wikipedia")[i % 3]
        words = BOOKISH + PLAIN[:4] if source == "books" else PLAIN
        text = " ".join(rng.choice(words) for _ in range(rng.randint(60, 120))) + "."
        docs.append(Document(id=f"{source}-{i:03d}", text=text, source=source, meta={}))
    return docs


@pytest.fixture
def ctx(make_context) -> Context:
    return make_context(lr.SPEC, corpus(), settings=TINY,
                        params={"shared": {"val_fraction": 0.25}})


@pytest.fixture
def results(ctx) -> dict[str, dict]:
    out = {}
    for v in lr.variants(ctx):   # in order: base first, the others read its artifacts
        out[v.name] = lr.run_variant(v, ctx)
    return out


def test_variants_base_then_one_per_rank_and_full(ctx):
    vs = lr.variants(ctx)
    assert [v.name for v in vs] == ["base", "r1", "r2", "r64", "full"]
    assert all(v.after == ("base",) for v in vs[1:]) and vs[0].after == ()
    for v in vs:
        json.dumps(v.params)   # JSON-able for DVC
        assert v.params["lm"] == {**dataclasses.asdict(lr.BaseLM()), **TINY_LM}
        assert v.params["seed"] == ctx.seed
    budget = {**dataclasses.asdict(lr.AdaptSettings()), **TINY_ADAPT}
    lora_lr, full_lr, dropout = budget.pop("lr"), budget.pop("full_lr"), budget.pop("dropout")
    for v in vs[1:]:   # the same budget; each kind only the lr it trains with
        assert v.params["adapt"] == budget
        assert v.params["lr"] == (full_lr if v.name == "full" else lora_lr)
        assert ("dropout" in v.params) == (v.name != "full")
    assert all(v.params["dropout"] == dropout for v in vs[1:4])
    # alpha fixed (the paper's policy): the same alpha, so the scale alpha/r shrinks with r
    assert [v.params["alpha"] for v in vs[1:4]] == [8, 8, 8]


def test_alpha_policy_rank_gives_scale_one(make_context):
    c = make_context(lr.SPEC, corpus(), settings={**TINY, "alpha_policy": "rank"},
                     params={"shared": {"val_fraction": 0.25}})
    assert [v.params["alpha"] for v in lr.variants(c) if v.params["kind"] == "lora"] == [1, 2, 64]


def test_parameter_counts_match_the_formula_and_fractions_add_up(ctx, results):
    base = results["base"]
    # the base never saw the adaptation slice: adaptation is a domain shift
    assert base["pretrain_slices"] == ["c4", "wikipedia"]
    for r in (1, 2, 64):
        res = results[f"r{r}"]
        # r * (d_in + d_out) for W_q (64 -> 64) and W_v (64 -> 64), one layer
        assert res["trainable_formula"] == r * (64 + 64) * 2 == res["trainable_counted"]
        assert res["total_parameters"] == base["total_parameters"] + res["trainable_counted"]
        # LoRA starts at the base (B = 0): its first validation loss is the base row's
        assert res["initial_val_loss"] == pytest.approx(base["val_loss"], abs=1e-5)
        assert res["tokens_seen"] == 3 * 2 * 16
    full = results["full"]
    assert full["trainable_counted"] == full["total_parameters"] == base["total_parameters"]

    table = lr.build(results, ctx)
    rows = {row["method"]: row for row in table.rows}
    assert [row["method"] for row in table.rows] == [
        "base (no adaptation)", "LoRA r=1", "LoRA r=2", "LoRA r=64", "full fine-tuning"]
    for r in (1, 2, 64):
        row = rows[f"LoRA r={r}"]
        assert row["counts_match"] is True and row["formula"] == f"{r}·(128+128)·1"
        assert row["ours_trainable_pct"] == round(
            100 * row["ours_trainable_counted"] / row["ours_total_parameters"], 2)
        assert row["paper_val_loss"] == lr.PAPER_LOSS[r]
        assert row["ours_gain_nats"] == pytest.approx(
            rows["base (no adaptation)"]["ours_val_loss"] - row["ours_val_loss"], abs=2e-4)
    assert rows["full fine-tuning"]["ours_trainable_pct"] == 100.0
    assert rows["base (no adaptation)"]["ours_gain_nats"] == 0.0
    best = max(rows[f"LoRA r={r}"]["ours_gain_pct_of_best_lora"] for r in (1, 2, 64))
    assert best == 100.0
    assert table.claims[0].holds is True
    assert table.columns == list(table.rows[0])


def test_a_count_mismatch_fails_the_formula_claim():
    good = {"trainable_formula": 256, "trainable_counted": 256}
    assert lr.formula_claim({1: good}).holds is True
    claim = lr.formula_claim({1: good, 2: {"trainable_formula": 512, "trainable_counted": 513}})
    assert claim.holds is False and "r = [2]" in claim.detail


def test_runs_are_deterministic(ctx):
    vs = {v.name: v for v in lr.variants(ctx)}
    lr.run_variant(vs["base"], ctx)
    for name in ("r2", "full"):
        a, b = lr.run_variant(vs[name], ctx), lr.run_variant(vs[name], ctx)
        a.pop("train_seconds"), b.pop("train_seconds")
        assert a == b


def plateau(losses: dict[int, float], base: float = 3.0):
    return lr.plateau_claim(base, losses, small_rank=4, gain_share_pct=90.0, plateau_from=8,
                            plateau_nats=0.02)


def test_plateau_verdict_on_hand_made_results():
    # the paper's shape: 1.23 1.21 1.18 1.17 1.16 ... from a base at 3.0 -> holds
    paper = {r: lr.PAPER_LOSS[r] for r in (1, 2, 4, 8, 16, 32, 64)}
    claim = plateau(paper)
    assert claim.holds is True and "r >= 8 span 0.0100" in claim.detail
    # r=4 gains only 50 % of the best gain -> most of the gain is NOT at small r
    late = {1: 2.9, 2: 2.8, 4: 2.5, 8: 2.1, 16: 2.0, 32: 2.0, 64: 2.0}
    assert plateau(late).holds is False
    # r=4 gains enough, but the tail keeps falling by 0.05 -> no plateau
    falling = {1: 2.0, 2: 1.9, 4: 1.85, 8: 1.83, 16: 1.81, 32: 1.80, 64: 1.78}
    claim = plateau(falling)
    assert claim.holds is False and "span 0.0500" in claim.detail
    # no rank improves on the base
    assert plateau({4: 3.1, 8: 3.2}).holds is False
    # the ranks do not cover the criterion -> not checked
    assert plateau({1: 2.0, 2: 1.9}).holds is None


@pytest.mark.parametrize("settings, key", [
    ({"ranks": [1, 2, 128]}, "tables.lora_rank.ranks"),          # r > min(d_in, d_out) = 64
    ({"lm": {"hidden_size": 32, "num_heads": 4}}, "tables.lora_rank.ranks"),
    ({"ranks": [4, 2]}, "tables.lora_rank.ranks"),
    ({"target_modules": ["lm_head"]}, "tables.lora_rank.target_modules"),
    ({"small_rank": 3}, "tables.lora_rank.small_rank"),
    ({"alpha_policy": "sqrt"}, "tables.lora_rank.alpha_policy"),
    ({"adapt": {"dropout": 1.5}}, "tables.lora_rank.adapt.dropout"),
    ({"rank": [1]}, "tables.lora_rank.rank"),
])
def test_bad_settings_name_the_key(make_context, settings, key):
    with pytest.raises(ConfigError) as err:
        make_context(lr.SPEC, corpus(6), settings=settings)
    assert key in str(err.value)


def test_the_adaptation_slice_must_be_a_corpus_slice(make_context):
    c = make_context(lr.SPEC, corpus(6), settings={"slice": "arxiv_typo"})
    with pytest.raises(ConfigError, match="tables.lora_rank.slice"):
        lr.variants(c)
