"""Token arrays and the batches the training loop eats: curriculum schedules.

Inputs are flat arrays of token ids (documents concatenated, each followed by eos):
anything with ``len`` and slices (:class:`TokenArray`), such as the ``bucket-NN.bin`` /
``val-<slice>.bin`` files of the bucket stage (:mod:`redrobe.curriculum.layout`) read
window by window (:class:`redrobe.curriculum.cache.TokenFile`) or memory-mapped. A
training example is a window of ``seq_len + 1`` tokens: inputs are its first
``seq_len`` tokens, targets the last ``seq_len``.

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

Schedules (``pretrain.curriculum.schedule``; :func:`make_batches` builds any of them):

- ``stepwise``: the phases above. With ``replay`` r, a share r of each batch's rows
  (stochastically rounded, so exact in expectation) comes from the buckets easier
  than the current phase's, chosen by tokens, at seeded random positions: rehearsal
  of earlier data against forgetting.
- ``smooth``: competence-based pacing (Platanios et al. 2019, NAACL, §4): at progress
  ``t`` (0 at step 1, 1 at the last) the competence is ``c(t) = min(1, sqrt(t (1 -
  c0²) / T + c0²))`` with ``c0 = competence_start`` and ``T = pacing_end``, and each
  row's window starts uniformly within the easiest ``c(t)`` share of all training
  tokens (the buckets laid end to end easy -> hard, each in (score, id) order, so a
  token's position is its difficulty rank). Bengio et al. 2009 ("Curriculum
  learning", ICML) is the original easy-to-hard argument. ``replay`` draws from the
  buckets easier than the frontier (the bucket holding the c(t) point), as above.
- ``shuffled``: the baseline: every non-overlapping window of every bucket in one
  seeded permutation per epoch; no curriculum, no replay. The permutation is a keyed
  Feistel bijection evaluated only at the batch's positions
  (:class:`redrobe.train.shuffle.KeyedPermutation`): O(1) memory per epoch.

Every schedule is a pure function of ``(step, micro)`` (random draws come from a
generator seeded by ``(seed, step, micro)``), so a run resumed at any step reads
exactly the data of an uninterrupted one. ``rows(step, micro)`` gives the batch as
(bucket index, window start) pairs; :func:`redrobe.curriculum.order.data_order` turns
them into the documents each step saw. Under data parallelism ``for_rank(step, micro,
rank, world_size)`` gathers only that rank's contiguous rows (:func:`rank_rows`), so a
rank reads its own windows of the bucket files and no one else's.

    batches = make_batches("smooth", arrays, names, steps=300, seq_len=256,
                           batch_size=16, grad_accum=1, seed=1234, replay=0.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence

import numpy as np
import torch

from redrobe.train.shuffle import KeyedPermutation

SCHEDULES = ("stepwise", "smooth", "shuffled")
Schedule = Literal["stepwise", "smooth", "shuffled"]


class TokenArray(Protocol):
    """What the schedules read of a token array: its length and contiguous slices. An
    ndarray or memory map is one; so is a :class:`redrobe.curriculum.cache.TokenFile`,
    which reads each slice from its file on demand."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice, /) -> np.ndarray: ...


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


def gather(array: TokenArray, starts: Sequence[int] | np.ndarray, window: int) -> torch.Tensor:
    """Rows ``array[s : s + window]`` as an int64 tensor of shape (len(starts), window)."""
    return torch.from_numpy(np.stack([np.asarray(array[s:s + window], dtype=np.int64)
                                      for s in starts]))


def gather_rows(arrays: Sequence[TokenArray], buckets: np.ndarray, starts: np.ndarray,
                window: int) -> torch.Tensor:
    """Row i = ``arrays[buckets[i]][starts[i] : starts[i] + window]``: (len(starts), window)."""
    return torch.from_numpy(np.stack([np.asarray(arrays[b][s:s + window], dtype=np.int64)
                                      for b, s in zip(buckets.tolist(), starts.tolist())]))


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """The contiguous rows of a batch that data-parallel ``rank`` of ``world_size`` trains on."""
    if batch_size % world_size:
        raise ValueError(f"pretrain.batch_size {batch_size} is not divisible by the "
                         f"{world_size} data-parallel ranks")
    share = batch_size // world_size
    return slice(rank * share, (rank + 1) * share)


def competence(progress: float, start: float, pacing_end: float) -> float:
    """Square-root competence (Platanios et al. 2019, Eq. 7): the share of the easiest
    data available at ``progress`` in [0, 1]; ``start`` at 0, 1 from ``pacing_end`` on."""
    return min(1.0, float(np.sqrt(progress * (1.0 - start ** 2) / pacing_end + start ** 2)))


class Batches:
    """Base of the schedules: ``rows(step, micro)`` -> (buckets, starts), int64 arrays of
    length ``batch_size``; calling the object gathers those windows, (B, seq_len + 1)."""

    def __init__(self, arrays: Sequence[TokenArray], seq_len: int, batch_size: int,
                 grad_accum: int, seed: int, replay: float = 0.0) -> None:
        self.arrays, self.window = arrays, seq_len + 1
        self.batch_size, self.grad_accum, self.seed, self.replay = batch_size, grad_accum, seed, replay
        self.sizes = np.array([len(a) for a in arrays], dtype=np.int64)
        self.usable = self.sizes >= self.window     # buckets holding at least one window

    def rows(self, step: int, micro: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, step: int, micro: int) -> torch.Tensor:
        buckets, starts = self.rows(step, micro)
        return gather_rows(self.arrays, buckets, starts, self.window)

    def for_rank(self, step: int, micro: int, rank: int, world_size: int) -> torch.Tensor:
        """Rows ``rank_rows(batch_size, rank, world_size)`` of the batch: only this rank's
        windows are read from the arrays (the others' pages are never touched)."""
        buckets, starts = self.rows(step, micro)
        mine = rank_rows(self.batch_size, rank, world_size)
        return gather_rows(self.arrays, buckets[mine], starts[mine], self.window)

    def rng(self, step: int, micro: int) -> np.random.Generator:
        """The generator of one micro-batch's random draws (a pure function of its key)."""
        return np.random.default_rng([self.seed, step, micro])

    def random_starts(self, rng: np.random.Generator, buckets: np.ndarray) -> np.ndarray:
        """A uniform window start inside each of ``buckets``."""
        room = self.sizes[buckets] - self.window + 1
        return (rng.random(len(buckets)) * room).astype(np.int64)

    def with_replay(self, rng: np.random.Generator, buckets: np.ndarray, starts: np.ndarray,
                    frontier: int) -> tuple[np.ndarray, np.ndarray]:
        """Replace the last ``replay * batch_size`` rows (stochastically rounded) by random
        windows of usable buckets easier than ``frontier``, chosen by their tokens."""
        easier = np.flatnonzero(self.usable[:frontier])
        expected = self.replay * self.batch_size
        count = int(expected) + int(rng.random() < expected - int(expected))
        if easier.size == 0 or count == 0:
            return buckets, starts
        chosen = easier[rng.choice(easier.size, size=count,
                                   p=self.sizes[easier] / self.sizes[easier].sum())]
        buckets, starts = buckets.copy(), starts.copy()
        buckets[-count:], starts[-count:] = chosen, self.random_starts(rng, chosen)
        return buckets, starts


class CurriculumBatches(Batches):
    """Stepwise: ``plan``'s phases easy -> hard in contiguous lanes, optional replay."""

    def __init__(self, arrays: Sequence[TokenArray], plan: Sequence[Phase], seq_len: int,
                 batch_size: int, grad_accum: int, seed: int, replay: float = 0.0) -> None:
        super().__init__(arrays, seq_len, batch_size, grad_accum, seed, replay)
        self.plan = list(plan)
        # One seeded offset per bucket: where its lanes begin.
        self.offsets = {p.bucket: int(np.random.default_rng([seed, p.bucket]).integers(
            0, p.tokens - self.window + 1)) for p in self.plan}

    def phase(self, step: int) -> Phase:
        for p in self.plan:
            if p.first_step <= step <= p.last_step:
                return p
        raise IndexError(f"step {step} is outside the plan (1..{self.plan[-1].last_step})")

    def rows(self, step: int, micro: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.phase(step)
        position = (step - p.first_step) * self.grad_accum + micro
        starts = lane_starts(p.tokens, self.window, self.batch_size, position, self.offsets[p.bucket])
        buckets = np.full(self.batch_size, p.bucket, dtype=np.int64)
        if not self.replay:   # no draw at all: the batches of a replay-free plan stay as they were
            return buckets, starts
        return self.with_replay(self.rng(step, micro), buckets, starts, frontier=p.bucket)


class SmoothBatches(Batches):
    """Smooth: windows uniform over the easiest c(t) share of all tokens (competence)."""

    def __init__(self, arrays: Sequence[TokenArray], steps: int, seq_len: int, batch_size: int,
                 grad_accum: int, seed: int, replay: float = 0.0,
                 competence_start: float = 0.1, pacing_end: float = 0.8) -> None:
        super().__init__(arrays, seq_len, batch_size, grad_accum, seed, replay)
        if not self.usable.any():
            raise ValueError(f"no bucket holds a full window of {self.window} tokens")
        self.steps, self.start, self.pacing_end = steps, competence_start, pacing_end
        # the usable buckets end to end, easy -> hard: bucket k is [ends[k-1], ends[k])
        self.ends = np.cumsum(np.where(self.usable, self.sizes, 0))

    def competence(self, step: int) -> float:
        return competence((step - 1) / max(self.steps - 1, 1), self.start, self.pacing_end)

    def rows(self, step: int, micro: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng(step, micro)
        reach = max(1, round(self.competence(step) * float(self.ends[-1])))   # tokens available
        points = (rng.random(self.batch_size) * reach).astype(np.int64)
        buckets = np.searchsorted(self.ends, points, side="right")
        offsets = points - np.concatenate([[0], self.ends])[buckets]
        starts = np.minimum(offsets, self.sizes[buckets] - self.window)   # the window fits
        frontier = int(np.searchsorted(self.ends, reach - 1, side="right"))
        return self.with_replay(rng, buckets, starts, frontier)


class ShuffledBatches(Batches):
    """Shuffled baseline: all windows of all buckets, one seeded permutation per epoch.

    The permutation is a keyed Feistel bijection (:mod:`redrobe.train.shuffle`),
    evaluated at the batch's positions only: O(buckets) memory at any corpus size,
    where a materialized order would cost one int64 per window."""

    def __init__(self, arrays: Sequence[TokenArray], seq_len: int, batch_size: int,
                 grad_accum: int, seed: int) -> None:
        super().__init__(arrays, seq_len, batch_size, grad_accum, seed)
        # consecutive windows share one token (as lanes do): each token is a target once
        per_bucket = np.where(self.usable, (self.sizes - self.window) // (self.window - 1) + 1, 0)
        if per_bucket.sum() == 0:
            raise ValueError(f"no bucket holds a full window of {self.window} tokens")
        # window w is bucket b's window w - first[b] for first[b] <= w < first[b + 1]:
        # O(buckets) numbers instead of a bucket and a start per window
        self.first = np.concatenate([[0], np.cumsum(per_bucket)]).astype(np.int64)
        self.windows = int(self.first[-1])

    def permutation(self, epoch: int) -> KeyedPermutation:
        """Epoch ``epoch``'s order of the window numbers (a few integers of key)."""
        return KeyedPermutation(self.windows, self.seed, epoch)

    def window_rows(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, start) of each window number in ``picks``."""
        buckets = np.searchsorted(self.first, picks, side="right") - 1
        return buckets, (picks - self.first[buckets]) * (self.window - 1)

    def rows(self, step: int, micro: int) -> tuple[np.ndarray, np.ndarray]:
        first = ((step - 1) * self.grad_accum + micro) * self.batch_size
        position = np.arange(first, first + self.batch_size, dtype=np.int64)
        epochs, offsets = np.divmod(position, self.windows)
        picks = np.empty_like(position)
        for epoch in np.unique(epochs).tolist():   # a batch spans at most a few epochs
            mine = epochs == epoch
            picks[mine] = self.permutation(epoch)(offsets[mine])
        return self.window_rows(picks)


def make_batches(schedule: Schedule, arrays: Sequence[TokenArray], names: Sequence[str],
                 steps: int, seq_len: int, batch_size: int, grad_accum: int, seed: int,
                 replay: float = 0.0, competence_start: float = 0.1,
                 pacing_end: float = 0.8) -> Batches:
    """The batches of ``schedule`` over the bucket ``arrays`` (easy first); ``names``
    label the stepwise phases. ValueError when no bucket holds one window."""
    if schedule == "stepwise":
        plan = curriculum_plan(list(zip(names, (len(a) for a in arrays))), steps, seq_len + 1)
        return CurriculumBatches(arrays, plan, seq_len, batch_size, grad_accum, seed, replay)
    if schedule == "smooth":
        return SmoothBatches(arrays, steps, seq_len, batch_size, grad_accum, seed, replay,
                             competence_start, pacing_end)
    if schedule == "shuffled":
        return ShuffledBatches(arrays, seq_len, batch_size, grad_accum, seed)
    raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")


def bucket_windows(batches: Batches, steps: int) -> np.ndarray:
    """Windows drawn from each bucket over steps 1..``steps`` (for the metrics JSON)."""
    counts = np.zeros(len(batches.arrays), dtype=np.int64)
    for step in range(1, steps + 1):
        for micro in range(batches.grad_accum):
            counts += np.bincount(batches.rows(step, micro)[0], minlength=len(counts))
    return counts


def eval_windows(array: TokenArray, seq_len: int, batch_size: int, batches: int) -> list[torch.Tensor]:
    """Fixed validation batches: up to ``batches * batch_size`` non-overlapping windows
    spread evenly over ``array`` (the same every evaluation, so the curve is smooth)."""
    window = seq_len + 1
    count = min(batches * batch_size, len(array) // window)
    if count == 0:
        return []
    starts = np.linspace(0, len(array) - window, count).astype(np.int64)
    return [gather(array, starts[i:i + batch_size], window) for i in range(0, count, batch_size)]
