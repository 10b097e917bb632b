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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from redrobe.train.data import CurriculumBatches, curriculum_plan, eval_windows
from redrobe.train.precision import autocast
from redrobe.train.schedule import lr_at

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

    def as_metrics(self) -> dict[str, float]:
        """Flat per-step metrics for a tracker (validation ones only where measured)."""
        metrics = {"train_loss": self.loss, "lr": self.lr, "tokens": float(self.tokens),
                   "tokens_per_s": self.tokens_per_s, "grad_norm": self.grad_norm}
        metrics.update({f"val_loss_{name}": v for name, v in self.val_losses.items()})
        return metrics


@dataclass(frozen=True)
class TrainResult:
    records: list[StepRecord]
    initial_val: dict[str, float]    # validation losses before the first update
    train_seconds: float             # time in steps, evaluation excluded

    @property
    def tokens(self) -> int:
        return self.records[-1].tokens if self.records else 0

    @property
    def final_val(self) -> dict[str, float]:
        evaluated = [r for r in self.records if r.val_losses]
        return evaluated[-1].val_losses if evaluated else {}


def next_token_loss(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting ``windows[:, 1:]`` from ``windows[:, :-1]``."""
    x, y = windows[:, :-1], windows[:, 1:]                 # (B, T), (B, T)
    logits = model(input_ids=x, use_cache=False).logits    # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


def configure_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; only matrices (2-D) get weight decay,
    as in GPT-2/nanoGPT: decaying norms and biases only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2),
                             foreach=True)


@torch.no_grad()
def estimate_loss(model: torch.nn.Module, val: Mapping[str, Sequence[torch.Tensor]],
                  precision: str, device: str) -> dict[str, float]:
    """Mean loss per slice over fixed windows, plus "overall" (mean over all windows)."""
    was_training = model.training
    model.eval()
    losses: dict[str, float] = {}
    total, count = 0.0, 0
    for name, batches in val.items():
        if not batches:
            continue
        s, n = 0.0, 0
        for windows in batches:
            with autocast(precision, device):
                s += next_token_loss(model, windows.to(device)).item() * len(windows)
            n += len(windows)
        losses[name] = s / n
        total, count = total + s, count + n
    if count:
        losses["overall"] = total / count
    model.train(was_training)
    return losses


def train(model: torch.nn.Module, batches: Batches, config: TrainConfig,
          val: Mapping[str, Sequence[torch.Tensor]] | None = None,
          on_step: Callable[[StepRecord], None] | None = None) -> TrainResult:
    """Train ``model`` in place for ``config.steps`` optimizer steps."""
    torch.manual_seed(config.seed)  # dropout (LoRA) is the only randomness left here
    device, val = config.device, val or {}
    model.to(device).train()
    optimizer = configure_optimizer(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    scaler = torch.amp.GradScaler(device, enabled=config.precision == "fp16")
    initial_val = estimate_loss(model, val, config.precision, device)
    records: list[StepRecord] = []
    tokens, train_seconds = 0, 0.0

    for step in range(1, config.steps + 1):
        started = time.perf_counter()
        lr = lr_at(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                   total_steps=config.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # gradient accumulation: average the loss over micro-batches
        step_loss, step_tokens = 0.0, 0
        for micro in range(config.grad_accum):
            windows = batches(step, micro).to(device)      # (B, T + 1)
            with autocast(config.precision, device):
                loss = next_token_loss(model, windows) / config.grad_accum
            scaler.scale(loss).backward()
            step_loss += loss.item()
            step_tokens += windows[:, 1:].numel()

        scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
        max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, max_norm).item()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        elapsed = time.perf_counter() - started
        train_seconds += elapsed
        tokens += step_tokens
        val_losses = {}
        if step == config.steps or (config.eval_every and step % config.eval_every == 0):
            val_losses = estimate_loss(model, val, config.precision, device)
        record = StepRecord(step=step, loss=step_loss, lr=lr, tokens=tokens,
                            tokens_per_s=step_tokens / elapsed, grad_norm=grad_norm,
                            val_loss=val_losses.get("overall"), val_losses=val_losses)
        records.append(record)
        if on_step is not None:
            on_step(record)

    return TrainResult(records=records, initial_val=initial_val, train_seconds=train_seconds)


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
