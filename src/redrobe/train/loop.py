"""The training loop (nanoGPT style): one function that reads top to bottom.

It trains any causal LM whose forward takes ``input_ids`` and returns ``.logits``
(a ``LlamaForCausalLM`` for pretraining, a peft model for LoRA) on window batches
from a ``batches(step, micro)`` callable (see :mod:`redrobe.train.data`):

    config = TrainConfig(steps=300, lr=1e-3, min_lr=1e-4, warmup_steps=30, weight_decay=0.1)
    result = train(model, batches, config, val={"books": [window, ...]},
                   on_step=lambda record: print(record.step, record.loss))

Each step: learning rate from :func:`lr_at`, ``grad_accum`` micro-batches of
forward/backward under the chosen precision, gradient clipping, an AdamW update
(weight decay on 2-D weights only), and every ``eval_every`` steps (and at the end)
the mean validation loss on fixed windows. Everything random is seeded from
``config.seed``, so on CPU the same inputs give the same loss curve.

Options:

- ``fused`` (default on): a plain ``LlamaForCausalLM`` runs the fused forward and
  chunked cross-entropy of :mod:`redrobe.model.fused`, with the same parameters and
  the same loss up to float rounding. Any other model runs its own forward.
- ``keep_memory`` (default on): on CPU, glibc keeps freed memory for the next step
  (:mod:`redrobe.train.host`).
- ``gradient_checkpointing``: recompute activations in the backward pass
  (``use_reentrant=False``).
- ``compile``: ``torch.compile`` the loss function.
- ``flops_per_token`` + ``peak_flops``: a per-step MFU (:mod:`redrobe.train.mfu`).

Validation: ``val`` maps slice names to fixed windows; each evaluation reports the loss
per slice and "overall" (mean over all of them). ``val_buckets`` (optional) maps
curriculum buckets to windows of the same held-out documents, regrouped by difficulty:
their losses come as ``bucket/<name>`` beside the slices and stay out of "overall". So
every evaluation says which slice and which bucket a validation loss comes from.

Checkpoints and resume: pass a :class:`~redrobe.train.checkpoint.Checkpointer`; every
``every`` steps and after the last one the loop saves the stepper state (model,
optimizer, loss scaler), the step (= schedule and data position, since batches are a
pure function of the step), all RNG states and the records so far. With
``resume=True`` it first loads the newest valid checkpoint of the same fingerprint and
continues from the next step; on CPU the resumed curve equals the uninterrupted one
bit for bit. Restored records are replayed through ``on_step`` so a tracker sees the
whole curve.

The stepper seam: how gradients become an update. ``train(..., stepper=None)`` uses
:class:`PlainStepper` (AdamW, fp16 GradScaler, clipping). Another engine (DeepSpeed,
:mod:`redrobe.train.deepspeed`) implements the same small protocol:

    class Stepper(Protocol):
        module: torch.nn.Module            # what the loop calls forward on (and evaluates)
        def backward(self, loss): ...      # loss is already divided by grad_accum: do not rescale
        def step(self, lr: float) -> float:  # set lr, (unscale,) clip to config.grad_clip,
                                             # optimizer step, zero grads; returns the pre-clip
                                             # global grad norm
        def state_dict(self) -> dict: ...  # everything needed to resume: model weights,
        def load_state_dict(self, state): ...  # optimizer, scaler; tensors + plain containers

``step`` is called once per optimizer step, after ``grad_accum`` backward calls. When
a stepper is given, the loop does not move ``model`` to a device or build an
optimizer: the stepper owns both. ``state_dict`` is called only on steps that save a
checkpoint, in every process; the Checkpointer decides where it goes.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from redrobe.model import fused as fused_llama
from redrobe.train.checkpoint import Checkpointer, rng_state, set_rng_state
from redrobe.train.data import CurriculumBatches, curriculum_plan, eval_windows
from redrobe.train.host import keep_freed_memory
from redrobe.train.mfu import mfu
from redrobe.train.precision import autocast
from redrobe.train.schedule import lr_at

if TYPE_CHECKING:
    from redrobe.config import OptimizerParams

Batches = Callable[[int, int], torch.Tensor]  # (step, micro) -> (B, T + 1) token windows


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0       # max global grad norm; 0 disables clipping
    grad_accum: int = 1
    eval_every: int = 0          # 0: evaluate only after the last step
    precision: str = "fp32"      # fp32 | bf16 | fp16 (see redrobe.train.precision)
    device: str = "cpu"
    seed: int = 0
    gradient_checkpointing: bool = False
    compile: bool = False          # torch.compile the loss function
    fused: bool = True             # fused LLaMA forward where the model allows (redrobe.model.fused)
    keep_memory: bool = True       # on CPU, glibc keeps freed blocks (redrobe.train.host)
    flops_per_token: float = 0.0   # model FLOPs per trained token (redrobe.train.mfu)
    peak_flops: float = 0.0        # measured peak FLOP/s; 0: no MFU

    @classmethod
    def from_params(cls, optimizer: OptimizerParams, **run: Any) -> TrainConfig:
        """The config of a section that trains (pretrain, lora, evaluate.math, a table's
        ``lm``): its optimizer and schedule (``OptimizerParams.optimizer_settings``) plus
        the run's own settings (``precision``, ``device``, ``seed``, ...)."""
        return cls(**optimizer.optimizer_settings(), **run)


#: prefix of the per-bucket validation losses in StepRecord.val_losses
BUCKET_PREFIX = "bucket/"


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step: mean train loss of its micro-batches, lr, cumulative tokens."""

    step: int
    loss: float
    lr: float
    tokens: int
    tokens_per_s: float
    grad_norm: float
    val_loss: float | None = None
    val_losses: dict[str, float] = field(default_factory=dict)
    mfu: float | None = None        # model FLOPs utilisation, where a peak was given

    def as_metrics(self) -> dict[str, float]:
        """Flat per-step metrics for a tracker (validation ones only where measured)."""
        metrics = {"train_loss": self.loss, "lr": self.lr, "tokens": float(self.tokens),
                   "tokens_per_s": self.tokens_per_s, "grad_norm": self.grad_norm}
        if self.mfu is not None:
            metrics["mfu"] = self.mfu
        metrics.update({f"val_loss_{name}": v for name, v in self.val_losses.items()})
        return metrics


@dataclass(frozen=True)
class TrainResult:
    records: list[StepRecord]
    initial_val: dict[str, float]    # validation losses before the first update
    train_seconds: float             # time in steps, evaluation excluded
    resumed_from: int | None = None  # the checkpoint step this run continued from
    resume_note: str = ""            # why it resumed, or why it started fresh
    checkpoints: list[str] = field(default_factory=list)  # files written by this run

    @property
    def tokens(self) -> int:
        return self.records[-1].tokens if self.records else 0

    @property
    def final_val(self) -> dict[str, float]:
        evaluated = [r for r in self.records if r.val_losses]
        return evaluated[-1].val_losses if evaluated else {}


def next_token_loss(model: torch.nn.Module, windows: torch.Tensor,
                    fused: bool = True) -> torch.Tensor:
    """Mean cross-entropy of predicting ``windows[:, 1:]`` from ``windows[:, :-1]``;
    through :mod:`redrobe.model.fused` when ``fused`` and the model allows it."""
    return loss_function(model, fused)(windows)


def loss_function(model: torch.nn.Module,
                  fused: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`next_token_loss` of ``model`` with the fused-or-not choice made once (it
    walks the model's modules, so a loop asks once rather than every micro-batch)."""
    if fused and fused_llama.supports(model):
        return functools.partial(fused_llama.next_token_loss, model)
    return functools.partial(transformers_loss, model)


def transformers_loss(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """:func:`next_token_loss` through the model's own forward (any causal LM)."""
    x, y = windows[:, :-1], windows[:, 1:]                 # (B, T), (B, T)
    logits = model(input_ids=x, use_cache=False).logits    # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


def configure_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; only matrices (2-D) get weight decay,
    as in GPT-2/nanoGPT: decaying norms and biases only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    # fused: one kernel for the whole update; on CPU foreach falls back to a kernel per
    # tensor (benchmarks/train_vs_trainer.py: +8-11 % tokens/s on 16 threads, ~3 % on 2)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             fused=True)


class Stepper(Protocol):
    """How gradients become an update (see the module docstring)."""

    @property
    def module(self) -> torch.nn.Module: ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def step(self, lr: float) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class PlainStepper:
    """One-device torch: AdamW (:func:`configure_optimizer`), a GradScaler for fp16
    (a no-op otherwise), global-norm clipping."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig) -> None:
        self.module, self.grad_clip = model, config.grad_clip
        self.optimizer = configure_optimizer(model, config)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.scaler = torch.amp.GradScaler(config.device, enabled=config.precision == "fp16")

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, lr: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
        max_norm = self.grad_clip if self.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm).item()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


@torch.no_grad()
def estimate_loss(model: torch.nn.Module, val: Mapping[str, Sequence[torch.Tensor]],
                  precision: str, device: str, fused: bool = True) -> dict[str, float]:
    """Mean loss per slice over fixed windows, plus "overall" (mean over all windows)."""
    was_training = model.training
    model.eval()
    losses: dict[str, float] = {}
    total, count = 0.0, 0
    loss = loss_function(model, fused)
    for name, batches in val.items():
        if not batches:
            continue
        s, n = 0.0, 0
        for windows in batches:
            with autocast(precision, device):
                s += loss(windows.to(device)).item() * len(windows)
            n += len(windows)
        losses[name] = s / n
        total, count = total + s, count + n
    if count:
        losses["overall"] = total / count
    model.train(was_training)
    return losses


def evaluate(model: torch.nn.Module, val: Mapping[str, Sequence[torch.Tensor]],
             val_buckets: Mapping[str, Sequence[torch.Tensor]], config: TrainConfig
             ) -> dict[str, float]:
    """Losses per slice and "overall", then per bucket as ``bucket/<name>``."""
    losses = estimate_loss(model, val, config.precision, config.device, config.fused)
    by_bucket = estimate_loss(model, val_buckets, config.precision, config.device, config.fused)
    losses.update({BUCKET_PREFIX + b: v for b, v in by_bucket.items() if b != "overall"})
    return losses


def split_bucket_losses(losses: Mapping[str, float]
                        ) -> tuple[dict[str, float], dict[str, float]]:
    """:func:`evaluate`'s losses back into (per slice, per bucket), "overall" left out."""
    slices, buckets = {}, {}
    for name, value in losses.items():
        if name.startswith(BUCKET_PREFIX):
            buckets[name.removeprefix(BUCKET_PREFIX)] = value
        elif name != "overall":
            slices[name] = value
    return slices, buckets


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each layer's activations in the backward pass, non-reentrant (works with
    frozen inputs, as in LoRA). transformers 5 renamed the switch to activation checkpointing."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def train(model: torch.nn.Module, batches: Batches, config: TrainConfig,
          val: Mapping[str, Sequence[torch.Tensor]] | None = None,
          on_step: Callable[[StepRecord], None] | None = None,
          stepper: Stepper | None = None, checkpointer: Checkpointer | None = None,
          resume: bool = False,
          val_buckets: Mapping[str, Sequence[torch.Tensor]] | None = None) -> TrainResult:
    """Train ``model`` in place for ``config.steps`` optimizer steps (see the module docstring)."""
    torch.manual_seed(config.seed)  # dropout (LoRA) is the only randomness left here
    device, val, val_buckets = config.device, val or {}, val_buckets or {}
    if device == "cpu" and config.keep_memory:
        keep_freed_memory()  # no page faults for the same tensors every step
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    if stepper is None:
        model.to(device)
        stepper = PlainStepper(model, config)
    stepper.module.train()
    model_loss = loss_function(stepper.module, config.fused)
    if config.compile:
        model_loss = torch.compile(model_loss)

    state, note = checkpointer.latest() if checkpointer is not None and resume else (None, "")
    if state is None:
        records: list[StepRecord] = []
        initial_val = evaluate(stepper.module, val, val_buckets, config)
        train_seconds = 0.0
    else:
        stepper.load_state_dict(state["stepper"])
        records = [StepRecord(**r) for r in state["records"]]
        initial_val, train_seconds = dict(state["initial_val"]), state["train_seconds"]
        set_rng_state(state["rng"])  # last: nothing above may draw from it
        for record in records:
            if on_step is not None:
                on_step(record)
    first = state["step"] + 1 if state is not None else 1
    tokens = records[-1].tokens if records else 0
    written: list[str] = []

    for step in range(first, config.steps + 1):
        started = time.perf_counter()
        lr = lr_at(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                   total_steps=config.steps)

        # gradient accumulation: average the loss over micro-batches
        step_loss, step_tokens = 0.0, 0
        for micro in range(config.grad_accum):
            windows = batches(step, micro).to(device)      # (B, T + 1)
            with autocast(config.precision, device):
                loss = model_loss(windows) / config.grad_accum
            stepper.backward(loss)
            step_loss += loss.item()
            step_tokens += windows[:, 1:].numel()
        grad_norm = stepper.step(lr)

        elapsed = time.perf_counter() - started
        train_seconds += elapsed
        tokens += step_tokens
        val_losses = {}
        if step == config.steps or (config.eval_every and step % config.eval_every == 0):
            val_losses = evaluate(stepper.module, val, val_buckets, config)
        tokens_per_s = step_tokens / elapsed
        record = StepRecord(step=step, loss=step_loss, lr=lr, tokens=tokens,
                            tokens_per_s=tokens_per_s, grad_norm=grad_norm,
                            val_loss=val_losses.get("overall"), val_losses=val_losses,
                            mfu=(mfu(tokens_per_s, config.flops_per_token, config.peak_flops)
                                 if config.flops_per_token and config.peak_flops else None))
        records.append(record)
        if on_step is not None:
            on_step(record)
        if checkpointer is not None and checkpointer.due(step, config.steps):
            written.append(str(checkpointer.save(step, {
                "stepper": stepper.state_dict(), "rng": rng_state(),
                "records": [asdict(r) for r in records], "initial_val": initial_val,
                "train_seconds": train_seconds})))

    return TrainResult(records=records, initial_val=initial_val, train_seconds=train_seconds,
                       resumed_from=state["step"] if state is not None else None,
                       resume_note=note, checkpoints=written)


def train_on_array(model: torch.nn.Module, tokens: np.ndarray, val_tokens: np.ndarray, *,
                   seq_len: int, batch_size: int, eval_batches: int, config: TrainConfig,
                   on_step: Callable[[StepRecord], None] | None = None) -> TrainResult:
    """Train on one token array (a one-bucket curriculum), validating on another.

    Used by LoRA: the slice's packed training documents, read as contiguous windows
    in lanes exactly like a pretraining bucket; the validation loss is reported
    under the name "val".
    """
    plan = curriculum_plan([("train", len(tokens))], config.steps, min_tokens=seq_len + 1)
    batches = CurriculumBatches([tokens], plan, seq_len, batch_size,
                                grad_accum=config.grad_accum, seed=config.seed)
    val = {"val": eval_windows(val_tokens, seq_len, batch_size, eval_batches)}
    return train(model, batches, config, val=val, on_step=on_step)
