"""t5-repeats: nested token subsets, repeats arithmetic, determinism, claim logic, settings."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import pytest

from redrobe.config import ConfigError, params_from_dict
from redrobe.documents import Document
from redrobe.tables import t5_repeats as t5
from redrobe.tables.lm import LMSettings
from redrobe.tables.spec import Context

TINY_LM = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
           "seq_len": 16, "steps": 5, "batch_size": 2, "warmup_steps": 1, "eval_batches": 1,
           "threads": 1}
WORDS = ["the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his",
         "on", "be", "at", "by", "had", "river", "stone", "light", "winter", "garden", "letter", "market",
         "song", "north", "window"]


def corpus(n: int = 40) -> list[Document]:
    rng = random.Random(7)
    docs = []
    for i in range(n):
        source = ("books", "c4", "wikipedia")[i % 3]
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))) + "."
        docs.append(Document(id=f"{source}-{i:03d}", text=text, source=source, meta={}))
    return docs


@pytest.fixture
def ctx(make_context) -> Context:
    return make_context(t5.SPEC, corpus(), settings={"denominators": [1, 4, 16], "lm": TINY_LM,
                                                     "pool": "split"},
                        params={"shared": {"val_fraction": 0.2}})


def by_name(ctx: Context) -> dict[str, t5.Variant]:
    return {v.name: v for v in t5.variants(ctx)}


def test_variants_one_per_fraction_with_everything_the_run_reads(ctx):
    vs = t5.variants(ctx)
    assert [v.name for v in vs] == ["d1", "d4", "d16"]
    for v in vs:
        json.dumps(v.params)   # JSON-able for DVC
        assert v.params["lm"] == {**dataclasses.asdict(LMSettings()), **TINY_LM}
        assert v.params["seed"] == ctx.seed and v.params["pool"] == "split"
    assert [v.params["denominator"] for v in vs] == [1, 4, 16]


def test_subsets_are_nested_token_prefixes_and_repeats_follow_the_budget(ctx):
    streams = t5.slice_streams(ctx, ctx.seed)
    again = t5.slice_streams(ctx, ctx.seed)               # seeded permutation per slice
    assert all(np.array_equal(streams[k], again[k]) for k in streams)
    assert sorted(streams) == ["books", "c4", "wikipedia"]
    small, large = t5.subset(streams, 16), t5.subset(streams, 4)
    for name in streams:                                  # nested prefixes of every slice
        assert np.array_equal(small[name], large[name][:len(small[name])])
        assert np.array_equal(large[name], streams[name][:len(streams[name]) // 4])
    results = {name: t5.run_variant(v, ctx) for name, v in by_name(ctx).items()}
    budget = 5 * 2 * 16
    for r in results.values():
        d = r["denominator"]
        assert r["training_tokens"] == sum(len(s) for s in streams.values())
        assert r["unique_tokens_by_slice"] == {k: len(s) // d for k, s in streams.items()}
        assert r["unique_tokens"] == sum(r["unique_tokens_by_slice"].values())
        assert r["budget_tokens"] == budget
        assert r["repeats"] == pytest.approx(budget / r["unique_tokens"], abs=1e-4)
        assert r["perplexity"] == pytest.approx(math.exp(r["loss_nats"]), rel=1e-4)
        assert r["loss_nats"] == pytest.approx(r["held_out_loss"]["overall"])
    # fewer unique tokens -> fewer documents and more repeats
    docs = [results[n]["documents"] for n in ("d1", "d4", "d16")]
    reps = [results[n]["repeats"] for n in ("d1", "d4", "d16")]
    assert docs == sorted(docs, reverse=True) and docs[0] > docs[-1]
    assert reps == sorted(reps) and reps[0] < reps[-1]
    # the validation documents are never trained on
    train_ids = {d.id for d in ctx.documents() if not ctx.is_validation(d)}
    assert results["d1"]["documents"] == len(train_ids)


def test_run_is_deterministic(ctx):
    v = by_name(ctx)["d4"]
    a, b = t5.run_variant(v, ctx), t5.run_variant(v, ctx)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_a_subset_shorter_than_one_window_is_an_error(make_context):
    ctx = make_context(t5.SPEC, corpus(12), settings={"denominators": [1, 100000], "lm": TINY_LM},
                       params={"shared": {"val_fraction": 0.2}})
    with pytest.raises(ValueError, match="less than one window"):
        t5.run_variant(by_name(ctx)["d100000"], ctx)


def test_documents_touched_counts_a_cut_document():
    eos = 1
    assert t5.documents_touched(np.array([5, 6, 1, 7, 1], dtype=np.uint32), eos) == 2
    assert t5.documents_touched(np.array([5, 6, 1, 7], dtype=np.uint32), eos) == 2
    assert t5.documents_touched(np.array([5], dtype=np.uint32), eos) == 1
    assert t5.documents_touched(np.array([], dtype=np.uint32), eos) == 0


# ----------------------------------------------------------------------------- table logic

def fake(d: int, loss: float, unique: int, budget: int = 1000) -> dict:
    return {"denominator": d, "training_tokens": 4096, "unique_tokens": unique,
            "documents": 10 // d + 1, "budget_tokens": budget, "repeats": budget / unique,
            "held_out_loss": {"overall": loss}, "loss_nats": loss, "perplexity": math.exp(loss),
            "final_train_loss": loss, "seconds": 1.0}


def hand_context(**settings) -> Context:
    params = params_from_dict({"tables": {"t5_repeats": settings}})
    return Context(params=params, settings=t5.SPEC.load_settings(params), scale="test", work=None)


def test_rows_put_paper_rows_beside_ours_and_deltas_add_up():
    results = {"d1": fake(1, 5.0, 4096), "d4": fake(4, 5.02, 1024), "d16": fake(16, 5.3, 256),
               "d2": fake(2, 5.01, 2048)}
    table = t5.build(results, hand_context(denominators=[1, 2, 4, 16]))
    assert [r["fraction"] for r in table.rows] == ["1/1", "1/2", "1/4", "1/16"]
    assert all(list(r) == table.columns for r in table.rows)
    d4 = table.rows[2]
    assert d4["paper_repeats"] == 64 and d4["paper_glue"] == 82.87 and d4["paper_squad"] == 80.97
    assert d4["paper_glue_vs_full"] == round(82.87 - 83.28, 2)
    assert d4["ours_loss_vs_full_nats"] == pytest.approx(0.02)
    assert d4["ours_perplexity_vs_full_pct"] == pytest.approx(round(100 * (math.exp(0.02) - 1), 2))
    assert table.rows[1]["paper_glue"] is None   # 1/2 has no paper row
    assert table.rows[0]["ours_loss_vs_full_nats"] == 0 and table.rows[0]["paper_repeats"] is None
    assert d4["ours_repeats"] == round(1000 / 1024, 4)


@pytest.mark.parametrize("losses, holds", [
    ((5.0, 5.03, 5.5), True),     # flat at few repeats, worse at many
    ((5.0, 5.2, 5.5), False),     # not flat
    ((5.0, 5.03, 5.05), False),   # does not degrade enough
])
def test_claim_verdict_follows_the_stated_criterion(losses, holds):
    # budget 1000: d1 and d2 are seen < 1 time, d4 = 2 repeats (fewest > 1), d16 = 8 (most)
    results = {"d1": fake(1, losses[0], 4096), "d2": fake(2, 4.99, 2048),
               "d4": fake(4, losses[1], 500), "d16": fake(16, losses[2], 125)}
    claim = t5.repeats_claim(list(results.values()),
                             t5.Settings(denominators=[1, 2, 4, 16], flat_tolerance_nats=0.05,
                                         degrade_margin_nats=0.1))
    assert claim.holds is holds
    assert "1/4" in claim.detail and "1/16" in claim.detail


def test_claim_not_checked_without_baseline_or_repeats():
    s = t5.Settings()
    assert t5.repeats_claim([fake(4, 5.0, 100), fake(16, 5.0, 50)], s).holds is None
    assert t5.repeats_claim([fake(1, 5.0, 4096), fake(4, 5.0, 2000)], s).holds is None


@pytest.mark.parametrize("settings, key", [
    ({"denominators": [4, 16]}, "tables.t5_repeats.denominators"),
    ({"denominators": [1, 0]}, "tables.t5_repeats.denominators"),
    ({"denominators": [1, 4, 4]}, "tables.t5_repeats.denominators"),
    ({"flat_tolerance_nats": -1}, "tables.t5_repeats.flat_tolerance_nats"),
    ({"lm": {"hidden_size": 30, "num_heads": 4}}, "tables.t5_repeats.lm.hidden_size"),
    ({"repeats": 3}, "tables.t5_repeats.repeats"),
])
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        hand_context(**settings)


def test_note_separates_fewer_documents_from_repetition():
    results = [fake(1, 5.0, 4096), fake(4, 5.2, 2048), fake(16, 5.5, 250)]
    note = t5.unrepeated_note(results, results[0])
    assert len(note) == 1 and "+0.2000 nats" in note[0] and "1/4" in note[0]
    assert t5.unrepeated_note(results[:1] + results[2:], results[0]) == []


def test_budget_pool_makes_one_over_d_seen_d_times(make_context):
    lm = {**TINY_LM, "steps": 8}                          # 8 x 2 x 16 = 256 tokens
    ctx = make_context(t5.SPEC, corpus(), settings={"denominators": [1, 4], "lm": lm},
                       params={"shared": {"val_fraction": 0.2}})
    streams = t5.slice_streams(ctx, ctx.seed)
    pool = t5.budget_pool(streams, 256)
    total = sum(len(s) for s in streams.values())
    assert 0 < sum(len(s) for s in pool.values()) <= 256
    assert {k: len(v) for k, v in pool.items()} == {k: len(s) * 256 // total for k, s in streams.items()}
    assert all(np.array_equal(pool[k], streams[k][:len(pool[k])]) for k in streams)
    assert t5.budget_pool(streams, total + 1) is streams   # a small split is used whole
    results = {v.name: t5.run_variant(v, ctx) for v in t5.variants(ctx)}
    pooled = sum(len(s) for s in pool.values())
    assert results["d1"]["training_tokens"] == pooled and results["d1"]["unique_tokens"] == pooled
    assert results["d1"]["repeats"] == pytest.approx(256 / pooled, abs=1e-4)      # ~1
    assert results["d4"]["repeats"] == pytest.approx(256 / results["d4"]["unique_tokens"], abs=1e-4)
    assert results["d4"]["repeats"] >= 4 * results["d1"]["repeats"] - 1e-9
