"""Paper table "lora-rank": validation loss by LoRA rank r (Hu et al. 2021, Table 16).

    redrobe reproduce lora-rank --scale sample

How it runs. Variant ``base`` pretrains a tiny LLaMA (:mod:`redrobe.tables.lm`) on the
training split of every slice EXCEPT the adaptation slice (``settings.slice``, default
books), so adapting to that slice is a real domain shift; it saves the model (and the
slice's packed tokens, tokenized once for every run) under ``ctx.artifacts("base")`` and
measures its loss on the slice's held-out documents (the "no adaptation" row). Variants
``r1``, ``r2``, ... (one per rank) load that base, wrap it with peft LoRA on
``target_modules`` (default W_q and W_v, as Table 16 adapts) through
:func:`redrobe.lora.apply_lora`, and continue language modelling on the slice's training
documents with the tables' training path (:func:`redrobe.tables.lm.train_lm`); variant
``full`` fine-tunes every weight instead, the reference. Every adaptation run takes the
same steps on the same token budget and reports its final loss on the same validation
windows, so the rows differ only in what is trained.

Trainable parameters are counted twice: from peft's model
(:func:`redrobe.lora.trainable_parameters`) and from the closed form r·(d_in + d_out)
per adapted matrix (:func:`redrobe.lora.lora_parameter_count`); a row shows both and
whether they match.

Alpha policy (``alpha_policy``): "fixed" (default) keeps alpha constant for every rank,
as the paper does ("we simply set alpha to the first r we try and do not tune it", §4.1):
with Adam the update of B·A then has roughly the same size whatever r, so one learning
rate serves every rank; our alpha is 8, the first rank we tried (params.yaml lora.r).
"rank" sets alpha = r (scale alpha/r = 1) instead. The learning rates were chosen once
per method (LoRA at r = 8, full fine-tuning) and are not tuned per rank.

The claim "most of the gain at small r, then a plateau" is checked with an explicit
criterion on our numbers (:func:`plateau_claim`): the gain of r = ``small_rank`` over
the base is at least ``gain_share_pct`` % of the best LoRA gain, and the losses of all
ranks >= ``plateau_from`` lie within ``plateau_nats`` of each other.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from redrobe.config import ConfigError
from redrobe.errors import InputError
from redrobe.lora import apply_lora, lora_parameter_count, projection_shapes, trainable_parameters
from redrobe.model import variants as model_variants
from redrobe.model.llama import llama_config
from redrobe.tables.lm import LMSettings, held_out_loss, model_params, new_model, pack, train_lm
from redrobe.tables.spec import CORPUS, TOKENIZER, Claim, Context, Table, TableSpec, Variant, pct

#: LoRA Table 16 (GPT-2 Medium on E2E NLG): validation loss by rank r (docs/references.md, "Paper tables")
PAPER_LOSS = {1: 1.23, 2: 1.21, 4: 1.18, 8: 1.17, 16: 1.16, 32: 1.16, 64: 1.16, 128: 1.16,
              256: 1.16, 512: 1.16, 1024: 1.17}
BASE, FULL = "base", "full"
#: in ctx.artifacts("base"): the adaptation slice's packed tokens, tokenized once for all runs
TRAIN_TOKENS, VAL_TOKENS = "adapt-train.npy", "adapt-val.npy"


@dataclass(frozen=True)
class BaseLM(LMSettings):
    """The tiny base model and its pretraining budget (hidden >= 64 so r = 64 is a valid
    rank of W_q and W_v)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 172
    seq_len: int = 64
    steps: int = 1500
    batch_size: int = 8
    lr: float = 0.006
    min_lr: float = 0.0006
    warmup_steps: int = 50
    weight_decay: float = 0.1
    eval_batches: int = 8
    # one thread: a hidden-64 model's matmuls are too small for a second one to pay, and
    # on a busy 2-core machine two threads spin-wait (measured 1.09 vs 0.11 s a step)
    threads: int = 1


@dataclass(frozen=True)
class AdaptSettings:
    """The adaptation budget, the same for every rank and for full fine-tuning."""

    steps: int = 150
    batch_size: int = 8
    lr: float = 0.04               # LoRA, every rank (chosen once, at r = 8)
    full_lr: float = 0.004         # full fine-tuning (chosen once)
    final_lr_fraction: float = 0.1  # cosine decay to this share of the peak lr
    warmup_steps: int = 20
    weight_decay: float = 0.01     # LoRA paper Table 11 (GPT-2, E2E)
    dropout: float = 0.1           # LoRA dropout, LoRA paper Table 11 (GPT-2, E2E)
    eval_batches: int = 16         # validation windows: eval_batches * batch_size

    def validate(self) -> list[str]:
        problems = []
        if min(self.steps, self.batch_size, self.eval_batches) < 1:
            problems.append("steps, batch_size, eval_batches: must be >= 1")
        if self.lr <= 0 or self.full_lr <= 0:
            problems.append("lr, full_lr: must be > 0")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            problems.append("final_lr_fraction: must be in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout: must be in [0, 1)")
        return problems


@dataclass(frozen=True)
class Settings:
    """params.tables.lora_rank (defaults: the sample scale)."""

    slice: str = "books"           # adaptation slice: its training docs adapt, held-out validate
    ranks: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    alpha_policy: Literal["fixed", "rank"] = "fixed"
    alpha: int = 8                 # with alpha_policy "fixed": alpha for every rank
    lm: BaseLM = field(default_factory=BaseLM)
    adapt: AdaptSettings = field(default_factory=AdaptSettings)
    # the claim's criterion: r = small_rank reaches >= gain_share_pct % of the best LoRA
    # gain over the base, and losses for r >= plateau_from lie within plateau_nats
    small_rank: int = 4
    gain_share_pct: float = 90.0
    plateau_from: int = 8
    plateau_nats: float = 0.02

    def validate(self) -> list[str]:
        problems = []
        if not self.ranks or min(self.ranks) < 1 or sorted(set(self.ranks)) != self.ranks:
            problems.append(f"ranks: must be increasing positive integers, got {self.ranks}")
        shapes = projection_shapes(_shape_config(self.lm))
        unknown = sorted(set(self.target_modules) - set(shapes))
        if not self.target_modules or unknown:
            problems.append(f"target_modules: must name LLaMA projections {sorted(shapes)}, "
                            f"got {self.target_modules}")
        elif self.ranks:
            limit = min(min(shapes[m]) for m in self.target_modules)
            if max(self.ranks) > limit:
                problems.append(f"ranks: r = {max(self.ranks)} exceeds min(d_in, d_out) = "
                                f"{limit} of {self.target_modules} (lm.hidden_size "
                                f"{self.lm.hidden_size}): a rank above that is no low rank")
        if self.alpha < 1:
            problems.append("alpha: must be >= 1")
        for key in ("small_rank", "plateau_from"):
            if getattr(self, key) not in self.ranks:
                problems.append(f"{key}: {getattr(self, key)} is not one of ranks {self.ranks}")
        if not 0.0 < self.gain_share_pct <= 100.0:
            problems.append("gain_share_pct: must be in (0, 100]")
        if self.plateau_nats < 0:
            problems.append("plateau_nats: must be >= 0")
        return problems


def _shape_config(lm: LMSettings) -> Any:
    """The LLaMA config of ``lm``'s shape (the vocabulary does not change projection shapes)."""
    return llama_config(model_params(lm), vocab_size=2, bos_id=None, eos_id=None, pad_id=None)


def alpha_for(settings: Settings, r: int) -> int:
    """LoRA alpha at rank r; the update is scaled by alpha / r (LoRA §4.1)."""
    return settings.alpha if settings.alpha_policy == "fixed" else r


def adapt_lm(lm: LMSettings, adapt: AdaptSettings, lr: float) -> LMSettings:
    """The base model's settings with the adaptation budget: same steps, batch and
    validation windows for every rank and for full fine-tuning; only the lr differs."""
    return dataclasses.replace(
        lm, steps=adapt.steps, batch_size=adapt.batch_size, lr=lr,
        min_lr=lr * adapt.final_lr_fraction, warmup_steps=adapt.warmup_steps,
        weight_decay=adapt.weight_decay, eval_batches=adapt.eval_batches)


# --- variants ----------------------------------------------------------------------------

def variants(ctx: Context) -> list[Variant]:
    s: Settings = ctx.settings
    slices = ctx.params.shared.slices
    if s.slice not in slices or len(slices) < 2:
        raise ConfigError([f"tables.lora_rank.slice: {s.slice!r} must be one of shared.slices "
                           f"{slices}, and another slice must remain to pretrain the base"])
    lm = dataclasses.asdict(s.lm)
    # the budget every adaptation run shares; the lr (and LoRA's dropout) go per kind, so
    # changing full_lr reruns only "full" and changing lr only the ranks
    budget = {k: v for k, v in dataclasses.asdict(s.adapt).items()
              if k not in ("lr", "full_lr", "dropout")}
    common = {"slice": s.slice, "lm": lm, "adapt": budget, "seed": ctx.seed}
    base = Variant(BASE, {"kind": BASE, "slice": s.slice, "lm": lm, "seed": ctx.seed,
                          "eval": {"batch_size": s.adapt.batch_size,
                                   "eval_batches": s.adapt.eval_batches}})
    ranks = [Variant(f"r{r}", {"kind": "lora", "r": r, "alpha": alpha_for(s, r),
                               "target_modules": list(s.target_modules), "lr": s.adapt.lr,
                               "dropout": s.adapt.dropout, **common},
                     after=(BASE,)) for r in s.ranks]
    full = Variant(FULL, {"kind": FULL, "lr": s.adapt.full_lr, **common}, after=(BASE,))
    return [base, *ranks, full]


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    kind = variant.params["kind"]
    run = {BASE: _run_base, "lora": _run_lora, FULL: _run_full}[kind]
    return run(variant.params, ctx)


def _split(ctx: Context, docs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Packed tokens of the training and the held-out documents of ``docs``."""
    docs = list(docs)
    return (pack(ctx.tokenizer, [d for d in docs if not ctx.is_validation(d)]),
            pack(ctx.tokenizer, [d for d in docs if ctx.is_validation(d)]))


def _slice_tokens(ctx: Context, name: str, lm: LMSettings) -> tuple[np.ndarray, np.ndarray]:
    train, val = _split(ctx, ctx.documents(name))
    if len(train) <= lm.seq_len or len(val) <= lm.seq_len:
        raise InputError(f"slice {name!r}: {len(train)} training and {len(val)} held-out "
                         f"tokens; each needs more than one window ({lm.seq_len + 1})")
    return train, val


def _run_base(p: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Pretrain on every slice but the adaptation slice; save; loss on the slice's held-out docs."""
    lm = LMSettings(**p["lm"])
    adapt_train, adapt_val = _slice_tokens(ctx, p["slice"], lm)   # fail before training
    others = [d for d in ctx.documents() if d.source != p["slice"]]
    train, val = _split(ctx, others)
    model = new_model(ctx.tokenizer, lm, seed=p["seed"])
    result = train_lm(model, train, {"pretrain": val}, lm, seed=p["seed"])
    model.to("cpu")
    out = ctx.artifacts(BASE)
    model_variants.save_model(model, out)
    np.save(out / TRAIN_TOKENS, adapt_train)
    np.save(out / VAL_TOKENS, adapt_val)
    # the windows every adaptation run validates on (same seq_len, batch, eval_batches)
    eval_lm = dataclasses.replace(lm, **p["eval"])
    loss = held_out_loss(model, {p["slice"]: adapt_val}, eval_lm)[p["slice"]]
    return {"kind": BASE, "val_loss": loss,
            "pretrain_slices": sorted({d.source for d in others}),
            "pretrain_tokens_seen": result.tokens, "pretrain_stream_tokens": len(train),
            "pretrain_val_loss": result.final_val.get("pretrain"),
            "adapt_train_tokens": len(adapt_train), "adapt_val_tokens": len(adapt_val),
            "total_parameters": trainable_parameters(model)["total"],
            "train_seconds": round(result.train_seconds, 3)}


def _adapt(model: torch.nn.Module, p: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Continue language modelling on the slice's training docs; the common result keys."""
    lr = p["lr"]
    lm = adapt_lm(LMSettings(**p["lm"]), AdaptSettings(**p["adapt"]), lr)
    train, val = (np.load(ctx.artifacts(BASE) / name) for name in (TRAIN_TOKENS, VAL_TOKENS))
    started = time.perf_counter()
    result = train_lm(model, train, {p["slice"]: val}, lm, seed=p["seed"])
    counts = trainable_parameters(model)
    return {"val_loss": result.final_val[p["slice"]],
            "initial_val_loss": result.initial_val[p["slice"]],
            "final_train_loss": result.records[-1].loss, "lr": lr,
            "trainable_counted": counts["trainable"], "total_parameters": counts["total"],
            "tokens_seen": result.tokens, "adapt_stream_tokens": len(train),
            "train_seconds": round(time.perf_counter() - started, 3)}


def _run_lora(p: dict[str, Any], ctx: Context) -> dict[str, Any]:
    base = model_variants.load_model(ctx.artifacts(BASE))
    r, targets = p["r"], p["target_modules"]
    formula = lora_parameter_count(base.config, r, targets)
    # r * (d_in + d_out) per adapted matrix: the terms, so a reader can redo the sum
    shapes = projection_shapes(base.config)
    sizes = [sum(shapes[m]) for m in targets]
    torch.manual_seed(p["seed"])   # LoRA's A matrices are drawn at random (B = 0)
    model = apply_lora(base, r=r, alpha=p["alpha"], dropout=p["dropout"],
                       target_modules=targets)
    result = _adapt(model, p, ctx)
    return {"kind": "lora", "r": r, "alpha": p["alpha"], "scale": p["alpha"] / r,
            "trainable_formula": formula, "d_in_plus_d_out": sizes,
            "layers": base.config.num_hidden_layers, **result}


def _run_full(p: dict[str, Any], ctx: Context) -> dict[str, Any]:
    model = model_variants.load_model(ctx.artifacts(BASE))
    return {"kind": FULL, **_adapt(model, p, ctx)}


# --- the table ---------------------------------------------------------------------------


def formula_text(result: dict[str, Any]) -> str:
    """"r·(d_in+d_out) per matrix x layers", e.g. "8·(128+128)·2"."""
    terms = "+".join(str(n) for n in result["d_in_plus_d_out"])
    return f"{result['r']}·({terms})·{result['layers']}"


def lora_row(r: int, res: dict[str, Any], base_loss: float, best_gain: float) -> dict[str, Any]:
    gain = base_loss - res["val_loss"]
    return {"method": f"LoRA r={r}", "r": r, "alpha": res["alpha"],
            "ours_val_loss": round(res["val_loss"], 4), "paper_val_loss": PAPER_LOSS.get(r),
            "ours_gain_nats": round(gain, 4), "ours_gain_pct_of_best_lora": pct(gain, best_gain),
            "ours_trainable_formula": res["trainable_formula"],
            "ours_trainable_counted": res["trainable_counted"],
            "counts_match": res["trainable_formula"] == res["trainable_counted"],
            "formula": formula_text(res), "ours_total_parameters": res["total_parameters"],
            "ours_trainable_pct": pct(res["trainable_counted"], res["total_parameters"])}


def other_row(method: str, res: dict[str, Any], base_loss: float,
              best_gain: float) -> dict[str, Any]:
    gain = base_loss - res["val_loss"]
    trainable = res.get("trainable_counted", 0)
    return {"method": method, "r": None, "alpha": None,
            "ours_val_loss": round(res["val_loss"], 4), "paper_val_loss": None,
            "ours_gain_nats": round(gain, 4), "ours_gain_pct_of_best_lora": pct(gain, best_gain),
            "ours_trainable_formula": None, "ours_trainable_counted": trainable,
            "counts_match": None, "formula": None,
            "ours_total_parameters": res["total_parameters"],
            "ours_trainable_pct": pct(trainable, res["total_parameters"])}


def formula_claim(loras: dict[int, dict[str, Any]]) -> Claim:
    """peft's trainable count equals r·(d_in + d_out) summed over adapted matrices."""
    bad = [r for r, res in loras.items() if res["trainable_formula"] != res["trainable_counted"]]
    return Claim(
        "LoRA trains r·(d_in + d_out) parameters per adapted matrix (LoRA §4)",
        not bad,
        "criterion: for every rank, peft's count of trainable parameters equals "
        "lora_parameter_count; " + (f"mismatch at r = {bad}" if bad else
                                   f"equal at all {len(loras)} ranks"))


def plateau_claim(base_loss: float, losses: dict[int, float], small_rank: int,
                  gain_share_pct: float, plateau_from: int, plateau_nats: float) -> Claim:
    """Most of the gain at small r, then a plateau (Table 16), on our numbers."""
    text = ("Most of the gain comes at small r, then the loss plateaus (Table 16: 1.23 at "
            "r=1, 1.18 at r=4, 1.16-1.17 for r = 8..1024)")
    criterion = (f"criterion: r={small_rank} reaches >= {gain_share_pct:g} % of the best LoRA "
                 f"gain over the base, and losses for r >= {plateau_from} lie within "
                 f"{plateau_nats:g} nats (paper, r >= 8: within 0.01)")
    if small_rank not in losses or not any(r >= plateau_from for r in losses):
        return Claim(text, None, f"{criterion}; ranks {sorted(losses)} do not cover it")
    best_r = min(losses, key=lambda r: (losses[r], r))
    best_gain = base_loss - losses[best_r]
    if best_gain <= 0:
        return Claim(text, False, f"{criterion}; no rank improves on the base "
                                  f"({base_loss:.4f} nats)")
    share = 100.0 * (base_loss - losses[small_rank]) / best_gain
    tail = [losses[r] for r in losses if r >= plateau_from]
    spread = max(tail) - min(tail)
    holds = share >= gain_share_pct and spread <= plateau_nats
    return Claim(text, holds,
                 f"{criterion}; ours: r={small_rank} gains {share:.2f} % of the best gain "
                 f"({best_gain:.4f} nats at r={best_r}), losses for r >= {plateau_from} span "
                 f"{spread:.4f} nats")


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    s: Settings = ctx.settings
    base, full = results[BASE], results[FULL]
    loras = {r: results[f"r{r}"] for r in s.ranks}
    base_loss = base["val_loss"]
    best_gain = max(base_loss - res["val_loss"] for res in loras.values())
    rows = [other_row("base (no adaptation)", base, base_loss, best_gain),
            *(lora_row(r, loras[r], base_loss, best_gain) for r in s.ranks),
            other_row("full fine-tuning", full, base_loss, best_gain)]
    claims = [formula_claim(loras),
              plateau_claim(base_loss, {r: res["val_loss"] for r, res in loras.items()},
                            s.small_rank, s.gain_share_pct, s.plateau_from, s.plateau_nats)]
    return Table(name=SPEC.name, title=SPEC.title, columns=list(rows[0]), rows=rows,
                 claims=claims, notes=notes(s, base, loras, full))


def notes(s: Settings, base: dict[str, Any], loras: dict[int, dict[str, Any]],
          full: dict[str, Any]) -> list[str]:
    lm, adapt = s.lm, s.adapt
    first = loras[s.ranks[0]]
    alpha = (f"alpha fixed at {s.alpha} for every rank (scale alpha/r), as the paper keeps it"
             if s.alpha_policy == "fixed" else "alpha = r for every rank (scale 1)")
    return [
        f"Base: LLaMA hidden {lm.hidden_size}, {lm.num_layers} layers, {lm.num_heads} heads, "
        f"{base['total_parameters']:,} parameters, pretrained {lm.steps} steps "
        f"({base['pretrain_tokens_seen']:,} tokens) on the training split of "
        f"{', '.join(base['pretrain_slices'])} (not {s.slice}); its held-out loss there: "
        f"{base['pretrain_val_loss'] or float('nan'):.4f} nats.",
        f"Adaptation: {adapt.steps} steps x {adapt.batch_size} x {lm.seq_len} tokens "
        f"({first['tokens_seen']:,} tokens) of {s.slice}'s training split for every row; "
        f"validation loss (nats/token) on {adapt.eval_batches * adapt.batch_size} fixed "
        f"windows of its held-out documents, the same for every row.",
        f"LoRA on {', '.join(s.target_modules)}, {alpha}; lr {adapt.lr:g} for every rank, "
        f"{adapt.full_lr:g} for full fine-tuning (each chosen once, not per rank); dropout "
        f"{adapt.dropout:g}, weight decay {adapt.weight_decay:g}.",
        "Gain = base loss - loss; gain % is of the best LoRA rank's gain. Trainable % = "
        "trainable / total parameters of the trained model (LoRA: base + adapters).",
        f"LoRA starts exactly at the base (B = 0): loss before the first step at r = "
        f"{s.ranks[0]} was {first['initial_val_loss']:.4f}, the base row {base['val_loss']:.4f}.",
        f"Full fine-tuning reaches {full['val_loss']:.4f}: it also retunes the embeddings "
        "and the output head, where much of a vocabulary-level domain shift lies, which "
        "LoRA on attention projections cannot reach. Table 16 has no such row (nor a base "
        "row) and its losses are on E2E NLG with GPT-2 Medium, so only the shape across r "
        "compares, not the values.",
    ]


SPEC = TableSpec(
    name="lora-rank",
    title="LoRA: validation loss by rank r",
    paper="Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models, Table 16",
    differences=[
        "GPT-2 Medium fine-tuned on E2E NLG -> a tiny LLaMA pretrained here on the other "
        "slices and adapted to language modelling on one held-out slice (books)",
        "ranks 1..64 (the paper goes to 1024; r is bounded by the hidden size 64)",
        "same steps and tokens for every rank and for full fine-tuning; one lr for all ranks",
        "base and full fine-tuning rows are ours only (Table 16 has neither)",
    ],
    settings=Settings, variants=variants, run_variant=run_variant, build=build,
    needs=(CORPUS, TOKENIZER),
)
