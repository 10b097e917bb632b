"""Learning-rate schedule: linear warmup to the peak, then cosine decay to ``min_lr``.

A pure function of the step (the nanoGPT schedule, with the decay ending exactly on
the last step so the final update uses ``min_lr``):

    lr_at(step, lr=1e-3, min_lr=1e-4, warmup_steps=30, total_steps=300)

``step`` is 1-based: the learning rate of the ``step``-th optimizer update.
"""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate of optimizer update ``step`` (1-based)."""
    if step <= warmup_steps:
        return lr * step / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = min(1.0, (step - warmup_steps) / decay_steps) if decay_steps > 0 else 1.0
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)
