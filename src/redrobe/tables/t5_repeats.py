"""T5 Table 9 at tiny scale: held-out loss when a fixed token budget repeats less data.

Raffel et al. (2020, JMLR, §3.4.2, Table 9) pretrain on 2^35 tokens of C4 truncated to
2^29 .. 2^23 tokens, i.e. the data is repeated 64 .. 4,096 times, and find GLUE and
SQuAD flat up to ~64 repeats and clearly worse after. Here every variant trains the same
tiny LLaMA (:mod:`redrobe.tables.lm`) for the same ``lm.tokens`` on a prefix of the
training split holding 1/d of its tokens, and reports held-out loss (nats) and
perplexity on the pipeline's validation documents:

    redrobe reproduce t5-repeats --scale sample

How a subset is made, per slice: the slice's training documents (``not
ctx.is_validation``) in a permutation seeded by ``shared.seed`` are packed into one token
stream (eos after each document), and the subset 1/d keeps the first ``len(stream) // d``
tokens of every slice. So the subsets are nested (1/256 inside 1/64 inside ...) and cut
by tokens, as T5 truncates C4, and every subset keeps the full split's slice mix: T5's C4
is one kind of text, and without the per-slice cut a small prefix of our five very
different slices would change the mix (and the held-out loss) more than repetition does.
The number of repeats is ``lm.tokens / unique tokens``; below 1 the subset is not even
seen once.

What "the data" (1/1) is, by ``pool``: ``budget`` (the default) cuts every slice's stream
first to its share of ``lm.tokens`` unique tokens, so 1/1 is seen once and 1/d exactly d
times, as in T5 where the full C4 run is a single pass; ``split`` uses the whole training
split, which at sample scale is ~25x the budget, so small fractions mostly measure fewer
distinct documents rather than repetition.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from redrobe.tables import lm as tiny
from redrobe.tables.lm import LMSettings
from redrobe.tables.spec import Claim, Context, Table, TableSpec, Variant
from redrobe.tokenizer import special_ids

#: T5 Table 9 (docs/references.md, "Paper tables") keyed by our denominator: both ladders
#: shrink the data 4x per row, so our row 1/4^k sits beside the paper's k-th row.
#: (data, repeats, GLUE, SQuAD); the full C4 run sees its data less than once (no repeats: None).
PAPER: dict[int, tuple[str, int | None, float, float]] = {
    1: ("full C4", None, 83.28, 80.88),
    4: ("2^29 tokens", 64, 82.87, 80.97),
    16: ("2^27 tokens", 256, 82.62, 79.78),
    64: ("2^25 tokens", 1024, 79.55, 76.27),
    256: ("2^23 tokens", 4096, 76.34, 70.92),
}


@dataclass(frozen=True)
class Settings:
    """params.tables.t5_repeats: which fractions, the model and budget, the claim's bounds.

    The default budget is 150 steps x 8 x 128 = 153,600 tokens; with ``pool: budget`` the
    data (1/1) is that many unique tokens, seen once, and 1/256 is 600 tokens seen 256 times.
    """

    denominators: list[int] = field(default_factory=lambda: [1, 4, 16, 64, 256])
    pool: Literal["budget", "split"] = "budget"   # what 1/1 is: lm.tokens unique tokens, or the split
    lm: LMSettings = field(default_factory=lambda: LMSettings(steps=150))
    # claim: the fewest repeats > 1 stay within flat_tolerance_nats of 1/1 (flat) ...
    # (at sample scale, 1/1 retrained with other seeds spreads by ~0.03 nats (sd) and
    # 0.06 nats (range): 0.1 is about three standard deviations)
    flat_tolerance_nats: float = 0.1
    # ... and the most repeats lose more than degrade_margin_nats against 1/1 (degrades)
    degrade_margin_nats: float = 0.2

    def validate(self) -> list[str]:
        problems = []
        if not self.denominators or min(self.denominators) < 1:
            problems.append("denominators: must be a non-empty list of integers >= 1")
        elif 1 not in self.denominators:
            problems.append("denominators: must include 1 (the full training split, the baseline)")
        if len(set(self.denominators)) != len(self.denominators):
            problems.append("denominators: must not repeat a value")
        if self.flat_tolerance_nats < 0:
            problems.append("flat_tolerance_nats: must be >= 0")
        if self.degrade_margin_nats < 0:
            problems.append("degrade_margin_nats: must be >= 0")
        return problems


def fraction_name(denominator: int) -> str:
    return f"1/{denominator}"


def variants(ctx: Context) -> list[Variant]:
    s: Settings = ctx.settings
    return [Variant(f"d{d}", {"denominator": d, "lm": dataclasses.asdict(s.lm), "seed": ctx.seed,
                              "pool": s.pool})
            for d in sorted(s.denominators)]


def slice_streams(ctx: Context, seed: int) -> dict[str, np.ndarray]:
    """Per slice: its training documents in a permutation seeded by ``seed`` and the
    slice's name, packed into one stream."""
    by_slice: dict[str, list[Any]] = {}
    for doc in ctx.documents():
        if not ctx.is_validation(doc):
            by_slice.setdefault(doc.source, []).append(doc)
    streams = {}
    for name, docs in sorted(by_slice.items()):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        streams[name] = tiny.pack(ctx.tokenizer, [docs[i] for i in rng.permutation(len(docs))])
    return streams


def budget_pool(streams: dict[str, np.ndarray], tokens: int) -> dict[str, np.ndarray]:
    """Every slice's stream cut to its share of ``tokens`` (the slice mix is kept); the
    streams as they are when they hold no more than ``tokens`` in all."""
    total = sum(len(s) for s in streams.values())
    if total <= tokens:
        return streams
    return {name: s[:len(s) * tokens // total] for name, s in streams.items()}


def subset(streams: dict[str, np.ndarray], denominator: int) -> dict[str, np.ndarray]:
    """The first 1/denominator of every slice's stream (nested across denominators)."""
    return {name: s[:len(s) // denominator] for name, s in streams.items()}


def held_out_streams(ctx: Context) -> dict[str, np.ndarray]:
    """The validation documents of each slice, packed (shard order)."""
    by_slice: dict[str, list[Any]] = {}
    for doc in ctx.documents():
        if ctx.is_validation(doc):
            by_slice.setdefault(doc.source, []).append(doc)
    return {name: tiny.pack(ctx.tokenizer, docs) for name, docs in sorted(by_slice.items())}


def documents_touched(tokens: np.ndarray, eos: int) -> int:
    """Documents with at least one token in ``tokens``, a prefix of a packed stream (eos
    only ever ends a document, so a cut document is one without its eos)."""
    if not len(tokens):
        return 0
    complete = int(np.count_nonzero(tokens == eos))
    return complete + int(tokens[-1] != eos)


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    started = time.perf_counter()
    lm = LMSettings(**variant.params["lm"])
    denominator = variant.params["denominator"]
    seed = variant.params["seed"]
    streams = slice_streams(ctx, seed)
    if variant.params.get("pool", "split") == "budget":
        streams = budget_pool(streams, lm.tokens)
    parts = subset(streams, denominator)
    tokens = np.concatenate(list(parts.values()))   # windows are drawn shuffled from it
    if len(tokens) < lm.seq_len + 1:
        raise ValueError(f"t5-repeats: 1/{denominator} of the training split is {len(tokens)} "
                         f"tokens, less than one window of lm.seq_len + 1 = {lm.seq_len + 1}; "
                         f"lower the largest denominator or lm.seq_len")
    eos = special_ids(ctx.tokenizer)["eos"]
    assert eos is not None  # the pipeline's tokenizer has its special tokens
    model = tiny.new_model(ctx.tokenizer, lm, seed)
    result = tiny.train_lm(model, tokens, {}, lm, seed)
    losses = tiny.held_out_loss(model, held_out_streams(ctx), lm)
    return {
        "denominator": denominator,
        "training_tokens": sum(len(s) for s in streams.values()),
        "unique_tokens": len(tokens),
        "unique_tokens_by_slice": {name: len(p) for name, p in parts.items()},
        "documents": sum(documents_touched(p, eos) for p in parts.values()),
        "budget_tokens": lm.tokens,
        "repeats": round(tiny.repeats(lm.tokens, len(tokens)), 4),
        "held_out_loss": {name: round(v, 6) for name, v in losses.items()},
        "loss_nats": round(losses["overall"], 6),
        "perplexity": round(math.exp(losses["overall"]), 4),
        "final_train_loss": round(result.records[-1].loss, 6),
        "seconds": round(time.perf_counter() - started, 1),
    }


# ----------------------------------------------------------------------------- table

def row(result: dict[str, Any], full: dict[str, Any] | None) -> dict[str, Any]:
    d = result["denominator"]
    data, paper_repeats, glue, squad = PAPER.get(d, (None, None, None, None))
    base_glue = PAPER[1][2]
    return {
        "fraction": fraction_name(d),
        "ours_documents": result["documents"],
        "ours_unique_tokens": result["unique_tokens"],
        "ours_budget_tokens": result["budget_tokens"],
        "ours_repeats": round(result["repeats"], 4),
        "ours_loss_nats": round(result["loss_nats"], 4),
        "ours_perplexity": round(result["perplexity"], 2),
        "ours_loss_vs_full_nats": (round(result["loss_nats"] - full["loss_nats"], 4)
                                   if full else None),
        "ours_perplexity_vs_full_pct": (
            round(100 * (result["perplexity"] / full["perplexity"] - 1), 2) if full else None),
        "paper_data": data,
        "paper_repeats": paper_repeats,
        "paper_glue": glue,
        "paper_squad": squad,
        "paper_glue_vs_full": round(glue - base_glue, 2) if glue is not None else None,
    }


def repeats_claim(results: list[dict[str, Any]], s: Settings) -> Claim:
    """Flat for few repeats, worse for many (T5 Table 9), on held-out loss in nats."""
    text = "Quality is flat for few repeats and degrades with many (T5 Table 9)"
    full = next((r for r in results if r["denominator"] == 1), None)
    repeated = sorted((r for r in results if r["repeats"] > 1), key=lambda r: r["repeats"])
    if full is None or len(repeated) < 2:
        return Claim(text, None, "needs the 1/1 run and at least two fractions repeated more "
                                 f"than once; have {len(repeated)} repeated")
    few, many = repeated[0], repeated[-1]
    d_few, d_many = few["loss_nats"] - full["loss_nats"], many["loss_nats"] - full["loss_nats"]
    flat, degrades = d_few <= s.flat_tolerance_nats, d_many > s.degrade_margin_nats
    detail = (f"criterion: loss({fraction_name(few['denominator'])}, fewest repeats > 1: "
              f"{few['repeats']:.2f}) - loss(1/1) <= {s.flat_tolerance_nats} nats and "
              f"loss({fraction_name(many['denominator'])}, most repeats: {many['repeats']:.2f}) "
              f"- loss(1/1) > {s.degrade_margin_nats} nats; measured {d_few:+.4f} "
              f"({'flat' if flat else 'not flat'}) and {d_many:+.4f} "
              f"({'degrades' if degrades else 'does not degrade enough'})")
    return Claim(text, flat and degrades, detail)


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    s: Settings = ctx.settings
    ordered = sorted(results.values(), key=lambda r: r["denominator"])
    full = next((r for r in ordered if r["denominator"] == 1), None)
    rows = [row(r, full) for r in ordered]
    lm = s.lm
    first = ordered[0] if ordered else {}
    notes = [
        f"Scale: {ctx.scale}; every model is the same tiny LLaMA (hidden {lm.hidden_size}, "
        f"{lm.num_layers} layers, seq {lm.seq_len}) trained {lm.steps} steps x {lm.batch_size} "
        f"windows = {lm.tokens:,} tokens; the data (1/1) is "
        f"{first.get('training_tokens', 0):,} tokens "
        f"({'the budget' if s.pool == 'budget' else 'the whole training split'}, pool: {s.pool}).",
        "Subsets are nested token prefixes, per slice, of the training documents in a "
        f"permutation seeded by shared.seed = {ctx.seed}, so every subset keeps the slice mix; "
        "repeats = budget tokens / unique tokens (below 1: part of the subset is never seen).",
        "Held-out loss: mean next-token loss (nats) over fixed windows of the validation "
        f"documents ({lm.eval_batches * lm.batch_size} windows per slice, all slices pooled); "
        "perplexity = exp(loss). Lower is better; the paper's GLUE/SQuAD are higher-is-better "
        "scores after fine-tuning, so compare directions, not values.",
        "Paper rows sit beside ours by position on the 4x ladder (our 1/4^k beside the paper's "
        "k-th row); the paper repeats its rows 64..4,096 times, ours see ours_repeats.",
    ]
    notes += unrepeated_note(ordered, full)
    return Table(name=SPEC.name, title=SPEC.title, columns=row_columns(), rows=rows,
                 claims=[repeats_claim(ordered, s)], notes=notes)


def unrepeated_note(results: list[dict[str, Any]], full: dict[str, Any] | None) -> list[str]:
    """How much loss the fractions seen at most once already lose against 1/1: the part
    of the trend that fewer distinct documents, not repetition, accounts for."""
    once = [r for r in results if r["denominator"] != 1 and r["repeats"] <= 1]
    if full is None or not once:
        return []
    worst = max(once, key=lambda r: r["loss_nats"] - full["loss_nats"])
    return [f"Without any repetition (fractions seen at most once), loss already changes by up "
            f"to {worst['loss_nats'] - full['loss_nats']:+.4f} nats against 1/1 "
            f"({fraction_name(worst['denominator'])}, {worst['documents']} documents vs "
            f"{full['documents']}): that much of the trend comes from fewer distinct documents "
            "(or run-to-run noise), not from repeats."]


def row_columns() -> list[str]:
    return ["fraction", "ours_documents", "ours_unique_tokens", "ours_budget_tokens",
            "ours_repeats", "ours_loss_nats", "ours_perplexity", "ours_loss_vs_full_nats",
            "ours_perplexity_vs_full_pct", "paper_data", "paper_repeats", "paper_glue",
            "paper_squad", "paper_glue_vs_full"]


SPEC = TableSpec(
    name="t5-repeats",
    title="Repeating data at a fixed token budget (T5 Table 9)",
    paper="Raffel et al. 2020, Exploring the Limits of Transfer Learning with a Unified "
          "Text-to-Text Transformer (JMLR 21), §3.4.2, Table 9",
    differences=[
        "Model and budget: a tiny LLaMA (~2.5 M parameters at sample scale) trained on "
        "~1.5e5 tokens instead of T5-Base (220 M) pretrained on 2^35 tokens.",
        "Metric: held-out language-model loss/perplexity on our validation documents instead "
        "of GLUE and SQuAD scores after fine-tuning.",
        "Rows: the paper's rows are full C4 (< 1 pass) and C4 truncated to 2^29, 2^27, 2^25, "
        "2^23 tokens = 64, 256, 1,024, 4,096 repeats; ours are the data cut to 1/1, 1/4, "
        "1/16, 1/64, 1/256 (the same 4x ladder). With pool: budget the data is the budget's "
        "worth of unique tokens, so our repeats are 1, 4, 16, 64, 256: the paper's ladder "
        "starts at 64 repeats, ours at 1.",
        "Data: our training split mixes five slices (books, wikipedia, c4, common_crawl, "
        "github) instead of C4 only; each subset is cut per slice so it keeps the mix, but a "
        "small subset still covers far fewer documents (a few pages of one book at 1/256): "
        "less diversity as well as more repeats, as in the paper.",
        "One seed per fraction; the paper also reports one run per row.",
    ],
    settings=Settings,
    variants=variants,
    run_variant=run_variant,
    build=build,
)


__all__ = ["PAPER", "SPEC", "Settings", "build", "repeats_claim", "run_variant", "variants"]
