"""Token arrays and the batches the training loop eats, in curriculum order.

Inputs are flat arrays of token ids (documents concatenated, each followed by eos),
such as the memory-mapped ``bucket-NN.bin`` / ``val-<slice>.bin`` files of the bucket
stage (:mod:`redrobe.curriculum.layout`). A training example is a window of
``seq_len + 1`` tokens: inputs are its first ``seq_len`` tokens, targets the last
``seq_len``.

Curriculum: training walks the buckets easy -> hard; each bucket gets a share of the
optimizer steps proportional to its tokens (:func:`curriculum_plan`). Within a bucket
the batch's rows are ``batch_size`` lanes spread evenly over the bucket, shifted by a
seeded offset, and each micro-batch advances every lane by ``seq_len`` tokens, so a
bucket is read as contiguous windows in order (every token predicted once per pass)
while the rows of one batch come from different parts of it:

    plan = curriculum_plan([(name, len(a)) for name, a in buckets], steps=300,
                           min_tokens=seq_len + 1)
    batches = CurriculumBatches([a for _, a in buckets], plan, seq_len,
                                batch_size=16, grad_accum=1, seed=1234)
    window = batches(step=1, micro=0)   # (16, seq_len + 1) int64
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Phase:
    """A contiguous range of optimizer steps (1-based, inclusive) spent on one bucket."""

    bucket: int
    name: str
    first_step: int
    last_step: int
    tokens: int

    @property
    def steps(self) -> int:
        return self.last_step - self.first_step + 1

    def as_dict(self, tokens_per_step: int) -> dict[str, Any]:
        """For the metrics JSON; ``passes`` is how often the bucket is read (repetition)."""
        return {"bucket": self.name, "first_step": self.first_step, "last_step": self.last_step,
                "steps": self.steps, "bucket_tokens": self.tokens,
                "passes": round(self.steps * tokens_per_step / self.tokens, 3)}


def curriculum_plan(buckets: Sequence[tuple[str, int]], steps: int, min_tokens: int) -> list[Phase]:
    """Split ``steps`` over the buckets in order, proportional to their tokens.

    Buckets with fewer than ``min_tokens`` (one window) cannot give a batch and get no
    steps. Rounding uses largest remainders (ties to the easier bucket), so the shares
    sum to exactly ``steps``; buckets whose share rounds to zero are left out.
    """
    usable = [(i, name, n) for i, (name, n) in enumerate(buckets) if n >= min_tokens]
    total = sum(n for _, _, n in usable)
    if total == 0:
        raise ValueError(f"no bucket holds a full window of {min_tokens} tokens")
    exact = [steps * n / total for _, _, n in usable]
    shares = [int(e) for e in exact]
    by_remainder = sorted(range(len(usable)), key=lambda k: (-(exact[k] - shares[k]), k))
    for k in by_remainder[: steps - sum(shares)]:
        shares[k] += 1
    plan, step = [], 1
    for (i, name, n), share in zip(usable, shares):
        if share:
            plan.append(Phase(i, name, step, step + share - 1, n))
            step += share
    return plan


def lane_starts(n_tokens: int, window: int, lanes: int, position: int, offset: int) -> np.ndarray:
    """Start of each lane's window at micro-batch ``position`` of a pass over an array.

    Lane ``i`` starts at ``offset + i * n_tokens // lanes`` and moves ``window - 1``
    tokens per micro-batch (consecutive windows share one boundary token, so each
    token is a target once); starts wrap within the valid range ``[0, n - window]``.
    """
    valid = n_tokens - window + 1
    lane = np.arange(lanes, dtype=np.int64)
    return (offset + lane * (n_tokens // lanes) + position * (window - 1)) % valid


def gather(array: np.ndarray, starts: Sequence[int], window: int) -> torch.Tensor:
    """Rows ``array[s : s + window]`` as an int64 tensor of shape (len(starts), window)."""
    return torch.from_numpy(np.stack([np.asarray(array[s:s + window], dtype=np.int64)
                                      for s in starts]))


class CurriculumBatches:
    """``batches(step, micro)`` -> the (batch_size, seq_len + 1) window batch of that micro-step."""

    def __init__(self, arrays: Sequence[np.ndarray], plan: Sequence[Phase], seq_len: int,
                 batch_size: int, grad_accum: int, seed: int) -> None:
        self.arrays, self.plan = arrays, list(plan)
        self.window, self.batch_size, self.grad_accum = seq_len + 1, batch_size, grad_accum
        # One seeded offset per bucket: where its lanes begin.
        self.offsets = {p.bucket: int(np.random.default_rng([seed, p.bucket]).integers(
            0, p.tokens - self.window + 1)) for p in self.plan}

    def phase(self, step: int) -> Phase:
        for p in self.plan:
            if p.first_step <= step <= p.last_step:
                return p
        raise IndexError(f"step {step} is outside the plan (1..{self.plan[-1].last_step})")

    def __call__(self, step: int, micro: int) -> torch.Tensor:
        p = self.phase(step)
        position = (step - p.first_step) * self.grad_accum + micro
        starts = lane_starts(p.tokens, self.window, self.batch_size, position, self.offsets[p.bucket])
        return gather(self.arrays[p.bucket], starts, self.window)


def eval_windows(array: np.ndarray, seq_len: int, batch_size: int, batches: int) -> list[torch.Tensor]:
    """Fixed validation batches: up to ``batches * batch_size`` non-overlapping windows
    spread evenly over ``array`` (the same every evaluation, so the curve is smooth)."""
    window = seq_len + 1
    count = min(batches * batch_size, len(array) // window)
    if count == 0:
        return []
    starts = np.linspace(0, len(array) - window, count).astype(np.int64)
    return [gather(array, starts[i:i + batch_size], window) for i in range(0, count, batch_size)]
