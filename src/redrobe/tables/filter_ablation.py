"""Filter ablation: tiny models at equal tokens on the training split filtered four ways.

Does the cleaning pipeline make better training data? Each variant filters the training
split (``not ctx.is_validation``) with more of the pipeline's steps, trains the same tiny
LLaMA (:mod:`redrobe.tables.lm`) for the same ``lm.tokens``, and reports held-out
perplexity per slice on clean text:

    none             every training document, raw
    gopher           Gopher quality + repetition rules (and the code rules on code slices)
    gopher-c4        + the C4 rules
    gopher-c4-dedup  + exact and MinHash-LSH near-duplicate removal (redrobe.dedup)

    redrobe reproduce filter-ablation --scale sample

A slice only ever runs the rule sets that ``params.clean.rule_sets`` gives it (the clean
stage's choice), among those the variant enables: books get Gopher repetition only,
github gets the code rules and never the prose rules, c4 / common_crawl / wikipedia get
all of them. Rule thresholds, presets and normalization come from ``params.clean``; the
dedup pass is the dedup stage's exact + MinHash plan (:func:`redrobe.dedup.shards.plan_removals`,
``params.dedup``) over shards of the filtered documents; semantic dedup is left out.

The evaluation set is the same for every variant: the validation documents that the
strictest variant's rules keep, with the text as those rules leave it (C4 drops lines),
so every model is scored on clean text. The paper side (C4's heuristic filtering and
dedup beat unfiltered text, Raffel et al. 2020 §3.4.1, Table 8; RedPajama's dataset
ablations) is benchmark scores of large models, quoted as a direction only.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from redrobe.config import EXPRESSION_PREFIX, Clean, ConfigError, Dedup
from redrobe.dedup.shards import plan_removals, sketch_shard
from redrobe.documents import Document, ShardWriter, Status, shard_path
from redrobe.tables import lm as tiny
from redrobe.tables.lm import LMSettings
from redrobe.tables.spec import Claim, Context, Table, TableSpec, Variant, pct
from redrobe.text.rules import Cleaner, build_rule_sets

#: the four variants in order: (name, the Settings field listing the rule sets it adds, dedup)
NONE, GOPHER, GOPHER_C4, GOPHER_C4_DEDUP = "none", "gopher", "gopher-c4", "gopher-c4-dedup"
FILTERS = (NONE, GOPHER, GOPHER_C4, GOPHER_C4_DEDUP)

#: what the papers found, as a direction only (their numbers are benchmark scores of large
#: models after pretraining on billions of tokens, not reproducible here)
PAPER_DIRECTION = {
    NONE: "baseline: unfiltered C4 scores below C4 on every benchmark (T5 Table 8)",
    GOPHER: "not reported separately",
    GOPHER_C4: "not reported separately",
    GOPHER_C4_DEDUP: "better than unfiltered (C4 = heuristic filters + dedup, T5 §3.4.1)",
}


@dataclass(frozen=True)
class Settings:
    """params.tables.filter_ablation: the rule sets each step adds, the model, the claim."""

    # entries resolved by params.clean (presets such as "gopher", rule sets, expr:<name>):
    # the "gopher" step and every later one enable these ("code": the code slices' rules)
    gopher_rule_sets: list[str] = field(default_factory=lambda: ["gopher", "code"])
    # the "gopher-c4" step adds these
    c4_rule_sets: list[str] = field(default_factory=lambda: ["c4"])
    lm: LMSettings = field(default_factory=lambda: LMSettings(steps=150))
    # claim: gopher-c4-dedup's mean perplexity must be below none's by more than this (%);
    # at sample scale "none" retrained with other seeds spreads by ~2 % (sd), ~5 % (range)
    min_improvement_pct: float = 5.0

    def validate(self) -> list[str]:
        problems = []
        if not self.gopher_rule_sets:
            problems.append("gopher_rule_sets: must name at least one rule set or preset")
        if not self.c4_rule_sets:
            problems.append("c4_rule_sets: must name at least one rule set or preset")
        if not 0.0 <= self.min_improvement_pct < 100.0:
            problems.append("min_improvement_pct: must be in [0, 100)")
        return problems


# ----------------------------------------------------------------------------- filters

def enabled_rule_sets(name: str, s: Settings, clean: Clean) -> list[str]:
    """Rule sets (resolved names) the variant ``name`` enables; ConfigError naming the
    settings key when an entry resolves to nothing in params.clean."""
    problems = []
    for key in ("gopher_rule_sets", "c4_rule_sets"):
        try:
            clean.resolve(getattr(s, key))
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ConfigError(problems, f"tables.{SPEC.key}")
    entries = {NONE: [], GOPHER: s.gopher_rule_sets}.get(name, s.gopher_rule_sets + s.c4_rule_sets)
    return clean.resolve(entries)


def slice_rule_sets(enabled: Sequence[str], clean: Clean) -> dict[str, list[str]]:
    """Per slice of ``params.clean.rule_sets``: its resolved rule sets that are enabled,
    in the clean stage's order. Slices not listed there keep every document."""
    on = set(enabled)
    return {slice_name: [r for r in clean.resolve(entries) if r in on]
            for slice_name, entries in sorted(clean.rule_sets.items())}


def rule_params(names: Iterable[str], clean: Clean) -> dict[str, Any]:
    """The thresholds (or expression) of each rule set, for DVC to track."""
    out: dict[str, Any] = {}
    for name in sorted(set(names)):
        if name.startswith(EXPRESSION_PREFIX):
            out[name] = clean.expressions[name[len(EXPRESSION_PREFIX):]]
        else:
            out[name] = dataclasses.asdict(getattr(clean, name))
    return out


def variants(ctx: Context) -> list[Variant]:
    s: Settings = ctx.settings
    clean, dedup = ctx.params.clean, ctx.params.dedup
    strictest = slice_rule_sets(enabled_rule_sets(GOPHER_C4, s, clean), clean)
    used = {r for rules in strictest.values() for r in rules}
    out = []
    for name in FILTERS:
        out.append(Variant(name, {
            "filter": name,
            "rule_sets": slice_rule_sets(enabled_rule_sets(name, s, clean), clean),
            "dedup": dataclasses.asdict(dedup) if name == GOPHER_C4_DEDUP else None,
            "eval_rule_sets": strictest,
            "rule_params": rule_params(used, clean),
            "normalization": clean.normalization,
            "lm": dataclasses.asdict(s.lm),
            "seed": ctx.seed,
        }))
    return out


def apply_rules(docs: Iterable[Document], rules: dict[str, list[str]], clean: Clean,
                removed: Counter) -> list[Document]:
    """Kept documents (as cleaned) of slices with rules; documents of other slices as read.

    Removed (and quarantined) documents are counted in ``removed`` by reason."""
    cleaners = {name: Cleaner(clean.normalization, build_rule_sets(names, clean))
                for name, names in rules.items() if names}
    kept = []
    for doc in docs:
        cleaner = cleaners.get(doc.source)
        if cleaner is None:
            kept.append(doc)
            continue
        outcome = next(iter(cleaner([doc])))
        if outcome.status == Status.KEPT:
            kept.append(outcome.doc)
        else:
            removed[outcome.reason or Status.QUARANTINED.value] += 1
    return kept


def deduplicate(docs: Sequence[Document], dedup: Dedup, workdir: Path, batch_docs: int,
                removed: Counter) -> list[Document]:
    """The dedup stage's exact + MinHash plan over ``docs``: the first of each cluster
    in (slice, row) order is kept. Documents go through one shard per slice."""
    by_slice: dict[str, list[Document]] = {}
    for doc in docs:
        by_slice.setdefault(doc.source, []).append(doc)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        sketches = []
        for name, items in sorted(by_slice.items()):
            path = shard_path(tmp, name, 0)
            with ShardWriter(path) as writer:
                writer.write_all(items)
            sketches.append(sketch_shard(str(path), dedup, batch_docs))
        plan = plan_removals(sketches, dedup)   # verification re-reads the shards: inside
    kept = []
    for (_name, items), removals in zip(sorted(by_slice.items()), plan.removals):
        for row, doc in enumerate(items):
            if row in removals:
                removed[removals[row][1]] += 1
            else:
                kept.append(doc)
    return kept


def eval_streams(ctx: Context, rules: dict[str, list[str]],
                 ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Clean held-out text per slice (validation documents the strictest rules keep, as
    cleaned), packed; and the number of documents per slice."""
    val = apply_rules((d for d in ctx.documents() if ctx.is_validation(d)), rules,
                      ctx.params.clean, Counter())
    by_slice: dict[str, list[Document]] = {}
    for doc in val:
        by_slice.setdefault(doc.source, []).append(doc)
    return ({name: tiny.pack(ctx.tokenizer, docs) for name, docs in sorted(by_slice.items())},
            {name: len(docs) for name, docs in sorted(by_slice.items())})


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    started = time.perf_counter()
    p = variant.params
    lm, seed = LMSettings(**p["lm"]), p["seed"]
    train = [d for d in ctx.documents() if not ctx.is_validation(d)]
    removed: Counter = Counter()
    kept = apply_rules(train, p["rule_sets"], ctx.params.clean, removed)
    if p["dedup"] is not None:
        ctx.work.mkdir(parents=True, exist_ok=True)
        kept = deduplicate(kept, ctx.params.dedup, ctx.work, ctx.params.shared.batch_docs, removed)
    parts = {name: tiny.pack(ctx.tokenizer, [d for d in kept if d.source == name])
             for name in sorted({d.source for d in train})}
    stream = np.concatenate(list(parts.values()))   # slice by slice; windows are drawn shuffled
    if len(stream) < lm.seq_len + 1:
        raise ValueError(f"filter-ablation: {variant.name} keeps {len(stream)} training tokens, "
                         f"less than one window of lm.seq_len + 1 = {lm.seq_len + 1}")
    val, val_docs = eval_streams(ctx, p["eval_rule_sets"])
    model = tiny.new_model(ctx.tokenizer, lm, seed)
    tiny.train_lm(model, stream, {}, lm, seed)
    losses = tiny.held_out_loss(model, val, lm)
    per_slice = {name: v for name, v in losses.items() if name != "overall"}
    return {
        "filter": variant.name,
        "input_documents": dict(sorted(Counter(d.source for d in train).items())),
        "kept_documents": {name: sum(d.source == name for d in kept)
                           for name in sorted({d.source for d in train})},
        "removed_by_reason": dict(sorted(removed.items())),
        "kept_tokens": {name: len(a) for name, a in parts.items()},
        "training_tokens": len(stream),
        "budget_tokens": lm.tokens,
        "repeats": round(tiny.repeats(lm.tokens, len(stream)), 4),
        "eval_documents": val_docs,
        "eval_tokens": {name: len(a) for name, a in val.items()},
        "held_out_loss": {name: round(v, 6) for name, v in per_slice.items()},
        "perplexity": {name: round(math.exp(v), 4) for name, v in per_slice.items()},
        "mean_perplexity": round(mean_perplexity(per_slice), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def mean_perplexity(losses: dict[str, float]) -> float:
    """Unweighted mean over slices of exp(loss): every slice counts the same."""
    return sum(math.exp(v) for v in losses.values()) / len(losses) if losses else float("nan")


# ----------------------------------------------------------------------------- table


def rows_for(results: dict[str, dict[str, Any]], slices: Sequence[str]) -> list[dict[str, Any]]:
    base = results.get(NONE)
    rows = []
    for name in [f for f in FILTERS if f in results]:
        r = results[name]
        docs_in, docs_kept = sum(r["input_documents"].values()), sum(r["kept_documents"].values())
        row = {
            "filter": name,
            "ours_train_documents": docs_kept,
            "ours_removed_documents": sum(r["removed_by_reason"].values()),
            "ours_train_documents_kept_pct": pct(docs_kept, docs_in),
            "ours_train_tokens": r["training_tokens"],
            "ours_train_tokens_kept_pct": (pct(r["training_tokens"], base["training_tokens"])
                                           if base else None),
            "ours_repeats": round(r["repeats"], 4),
        }
        row.update({f"ours_ppl_{s}": round(r["perplexity"][s], 2) if s in r["perplexity"] else None
                    for s in slices})
        row["ours_mean_ppl"] = round(r["mean_perplexity"], 2)
        row["ours_mean_ppl_vs_none_pct"] = (
            round(100 * (r["mean_perplexity"] / base["mean_perplexity"] - 1), 2) if base else None)
        row["paper_direction"] = PAPER_DIRECTION[name]
        rows.append(row)
    return rows


def removal_note(results: dict[str, dict[str, Any]]) -> list[str]:
    """What the strictest variant removed from the training split, by reason."""
    last = next((results[f] for f in reversed(FILTERS) if f in results), None)
    if last is None or not last["removed_by_reason"]:
        return []
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(last["removed_by_reason"].items(),
                                                        key=lambda kv: (-kv[1], kv[0])))
    return [f"{last['filter']} removed {sum(last['removed_by_reason'].values())} training "
            f"documents: {reasons}."]


def filtering_claim(results: dict[str, dict[str, Any]], s: Settings) -> Claim:
    text = ("Filtering (Gopher + C4 rules + dedup) gives lower held-out perplexity on clean "
            "text than no filter (T5 §3.4.1: filtered C4 beats unfiltered)")
    base, full = results.get(NONE), results.get(GOPHER_C4_DEDUP)
    if base is None or full is None:
        return Claim(text, None, "needs the none and gopher-c4-dedup runs")
    change = 100 * (full["mean_perplexity"] / base["mean_perplexity"] - 1)
    holds = change < -s.min_improvement_pct
    return Claim(text, holds,
                 f"criterion: mean perplexity over the {len(full['perplexity'])} evaluation "
                 f"slices of gopher-c4-dedup is more than {s.min_improvement_pct} % below "
                 f"none's; measured {full['mean_perplexity']:.2f} vs {base['mean_perplexity']:.2f} "
                 f"({change:+.2f} %)")


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    s: Settings = ctx.settings
    first = next(iter(results.values()), {})
    slices = sorted(first.get("eval_documents", {}))
    rows = rows_for(results, slices)
    columns = (["filter", "ours_train_documents", "ours_removed_documents",
                "ours_train_documents_kept_pct",
                "ours_train_tokens", "ours_train_tokens_kept_pct", "ours_repeats"]
               + [f"ours_ppl_{x}" for x in slices]
               + ["ours_mean_ppl", "ours_mean_ppl_vs_none_pct", "paper_direction"])
    lm = s.lm
    eval_docs = first.get("eval_documents", {})
    notes = [
        f"Scale: {ctx.scale}; every model is the same tiny LLaMA (hidden {lm.hidden_size}, "
        f"{lm.num_layers} layers, seq {lm.seq_len}) trained {lm.steps} steps x {lm.batch_size} "
        f"windows = {lm.tokens:,} tokens, drawn shuffled from the variant's training stream "
        "(repeats = budget / kept tokens).",
        "Evaluation (the same for every variant): the validation documents the gopher-c4 rules "
        f"keep, as cleaned ({', '.join(f'{k}: {v}' for k, v in eval_docs.items())} documents), "
        f"up to {lm.eval_batches * lm.batch_size} windows per slice; ours_mean_ppl is the "
        "unweighted mean of the per-slice perplexities. Dedup is not applied to the evaluation "
        "documents.",
        *removal_note(results),
        "Per-slice rules follow params.clean.rule_sets: books get Gopher repetition only, "
        "github the code rules only (never the prose rules), from the gopher step on.",
        "Paper side: the T5 (C4) and RedPajama papers report downstream benchmark scores of "
        "large models; those numbers are not reproducible at this scale and are not printed, "
        "only the direction the papers found.",
    ]
    return Table(name=SPEC.name, title=SPEC.title, columns=columns, rows=rows,
                 claims=[filtering_claim(results, s)], notes=notes)


SPEC = TableSpec(
    name="filter-ablation",
    title="Training on filtered vs unfiltered text at equal tokens",
    paper="Raffel et al. 2020, Exploring the Limits of Transfer Learning with a Unified "
          "Text-to-Text Transformer (JMLR 21), §3.4.1, Table 8 (C4 vs unfiltered C4); "
          "Weber et al. 2024, RedPajama: an Open Dataset for Training Large Language Models "
          "(dataset ablations)",
    differences=[
        "Metric: held-out perplexity of tiny LMs on clean validation text, not downstream "
        "benchmark scores (GLUE, SQuAD, ...) of large models; the papers' numbers are not "
        "reproducible at this scale and only their direction is quoted.",
        "Filters: our Gopher, C4 and code rule sets (redrobe.text) with params.clean "
        "thresholds, per slice as the clean stage applies them, and the dedup stage's exact + "
        "MinHash-LSH pass; T5's C4 also dedups repeated three-sentence spans and filters "
        "bad words and language, and RedPajama-V2 filters on quality signals.",
        "Budget: every variant sees the same number of tokens (far fewer than its training "
        "set), so filtering changes which text is seen, not how often.",
        "Data: a few hundred documents of five slices at sample scale, one seed per variant.",
    ],
    settings=Settings,
    variants=variants,
    run_variant=run_variant,
    build=build,
)


__all__ = ["FILTERS", "PAPER_DIRECTION", "SPEC", "Settings", "build", "filtering_claim",
           "run_variant", "variants"]
