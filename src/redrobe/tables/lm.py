"""Tiny LLaMA language models for the training tables (t5-repeats, filter-ablation, lora-rank).

    lm = LMSettings(hidden_size=128, steps=200)
    tokens = pack(ctx.tokenizer, docs)                     # one uint32 stream, eos between docs
    model, result = train_lm(tokens, {"c4": val_c4}, lm, vocab_size, seed=ctx.seed)
    losses = held_out_loss(model, {"c4": val_c4}, lm)      # mean next-token loss per name

Every model of a table has the same size and sees the same number of training tokens
(``steps * batch_size * seq_len``): windows are drawn shuffled from the stream and the
stream is repeated as often as the budget needs, so a smaller stream means more repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from redrobe.config import Model, OptimizerParams
from redrobe.documents import Document
from redrobe.model.llama import build_model, llama_config
from redrobe.tokenizer import encode_texts, special_ids
from redrobe.train.data import ShuffledBatches, eval_windows
from redrobe.train.loop import TrainConfig, TrainResult, estimate_loss, train
from redrobe.train.precision import torch_setup


@dataclass(frozen=True)
class LMSettings(OptimizerParams):
    """Model size and training budget of a table's tiny models (params.tables.<t>.lm).

    The optimizer fields (steps, lr, min_lr, warmup_steps, weight_decay) are
    OptimizerParams', with the tables' defaults; :meth:`validate` stays the tables' own
    (without OptimizerParams' warmup_steps/min_lr checks, which tables never had)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 344
    seq_len: int = 128
    steps: int = 200
    batch_size: int = 8
    lr: float = 0.002
    min_lr: float = 0.0002
    warmup_steps: int = 20
    weight_decay: float = 0.1
    eval_batches: int = 8      # validation windows per name: eval_batches * batch_size
    threads: int = 0           # torch threads; 0: all cores

    @property
    def tokens(self) -> int:
        """Training tokens every model of the table sees."""
        return self.steps * self.batch_size * self.seq_len

    def validate(self) -> list[str]:
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append("hidden_size: must be a multiple of num_heads")
        if min(self.steps, self.batch_size, self.seq_len, self.num_layers) < 1:
            problems.append("steps, batch_size, seq_len, num_layers: must be >= 1")
        return problems


def pack(encoder: Any, docs: Iterable[Document], batch: int = 256) -> np.ndarray:
    """Token ids of ``docs`` in order, each followed by eos, as one uint32 array."""
    eos = special_ids(encoder)["eos"]
    docs = list(docs)
    parts: list[np.ndarray] = []
    for lo in range(0, len(docs), batch):
        for ids in encode_texts(encoder, [d.text for d in docs[lo:lo + batch]]):
            parts.append(np.asarray(ids + [eos], dtype=np.uint32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)


def model_params(lm: LMSettings) -> Model:
    return Model(hidden_size=lm.hidden_size, num_layers=lm.num_layers, num_heads=lm.num_heads,
                 num_kv_heads=lm.num_heads, intermediate_size=lm.intermediate_size,
                 max_seq_len=lm.seq_len)


def new_model(encoder: Any, lm: LMSettings, seed: int) -> torch.nn.Module:
    """A freshly initialized LLaMA of ``lm``'s size for ``encoder``'s vocabulary."""
    ids = special_ids(encoder)
    config = llama_config(model_params(lm), vocab_size=encoder.get_vocab_size(),
                          bos_id=ids["bos"], eos_id=ids["eos"], pad_id=ids["pad"])
    return build_model(config, seed=seed)


def train_config(lm: LMSettings, seed: int, precision: str = "fp32", device: str = "cpu",
                 steps: int | None = None) -> TrainConfig:
    config = TrainConfig.from_params(lm, eval_every=0, precision=precision, device=device, seed=seed)
    return replace(config, steps=steps or lm.steps)


def validation(val: Mapping[str, np.ndarray], lm: LMSettings) -> dict[str, list[torch.Tensor]]:
    """Fixed validation windows per name (names too short for one window are left out)."""
    windows = {name: eval_windows(tokens, lm.seq_len, lm.batch_size, lm.eval_batches)
               for name, tokens in val.items()}
    return {name: w for name, w in windows.items() if w}


def train_lm(model: torch.nn.Module, tokens: np.ndarray, val: Mapping[str, np.ndarray],
             lm: LMSettings, seed: int) -> TrainResult:
    """Train ``model`` for ``lm.tokens`` tokens of shuffled windows of ``tokens`` (repeated
    as the budget needs), validating on ``val`` after the last step."""
    device, precision = torch_setup(lm.threads, "auto")
    model.to(device)
    batches = ShuffledBatches([tokens], lm.seq_len, lm.batch_size, grad_accum=1, seed=seed)
    return train(model, batches, train_config(lm, seed, precision, device),
                 val=validation(val, lm))


def held_out_loss(model: torch.nn.Module, val: Mapping[str, np.ndarray],
                  lm: LMSettings) -> dict[str, float]:
    """Mean next-token loss (nats) per name, plus "overall" over all windows."""
    device, precision = torch_setup(lm.threads, "auto")
    return estimate_loss(model, validation(val, lm), precision, device)


def repeats(budget_tokens: int, stream_tokens: int) -> float:
    """How often a stream of ``stream_tokens`` is seen in ``budget_tokens`` of training."""
    return budget_tokens / stream_tokens if stream_tokens else float("inf")
