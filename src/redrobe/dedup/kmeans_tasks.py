"""Spherical k-means (:func:`redrobe.dedup.semantic.kmeans`) as a partitioned Lloyd loop.

The centroids equal the one-process function's bit for bit, whatever the executor and
worker count, and no task holds the sample: every step is a map of tasks that exchange
files by URL under a work directory (local or fsspec).

1. **sample**, one task: the seeded sample positions (the one-process draw), written per
   window of ``WINDOW_BLOCKS x block_docs`` sample rows, and the generator's state after
   the draw, which seeding continues from;
2. **gather**, one task per window: the window's rows read from the embedding files;
3. **seed**, one task: k-means++ over the gathered sample while it has its base size,
   else the rows at k seeded random positions (``seeds_by_kmeans_pp``);
4. **Lloyd iterations**, each two maps:

   - **step**, one task per window: every row's nearest centroid (in the one-process
     blocks of ``block_docs`` rows, so that BLAS rounds every product alike), how many
     rows changed cluster, and the window's float64 sums per cluster, written
     partitioned by cluster range (``CLUSTERS_PER_PART`` clusters a part);
   - **update**, one task per cluster range: the windows' sums added in window order
     (the one-process order) and normalized; an empty cluster keeps its centroid.

   The loop stops when no row changed cluster, or after ``kmeans_iters`` iterations.
5. **join**, one task: the centroid ranges into the one file the assignment reads.

The sample task holds the sample's positions (8 bytes a row); a step task one window,
its labels and the centroids; an update task one range of sums. The driver holds the
step tasks' counts of changed rows. Each iteration deletes the files no later one reads,
and the work directory goes once the centroids are joined.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from redrobe.config import DedupSemantic
from redrobe.dedup.semantic import (
    WINDOW_BLOCKS,
    _kmeans_pp,
    nearest_centroid,
    random_seeds,
    sample_size,
    seeds_by_kmeans_pp,
    updated_centroids,
    window_sums,
)
from redrobe.partfile import get_bytes, join, put_bytes, read_partition, write_partitioned
from redrobe.storage import remove_tree

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Sequence[Any]]

#: clusters per range of the update tasks (their sums: 12 MB at 384 dimensions)
CLUSTERS_PER_PART = 4096


class SampleSource(Protocol):
    """Embeddings by document number (:class:`~redrobe.dedup.semantic_tasks.EmbeddingFiles`)."""

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def rows(self, index: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Plan:
    """What every task of one training shares: sizes, params and the work directory."""

    n: int                       # embedded documents
    k: int
    dim: int
    params: DedupSemantic
    work: str

    @property
    def sample(self) -> int:
        return sample_size(self.n, self.k, self.params)

    @property
    def window(self) -> int:
        return WINDOW_BLOCKS * self.params.block_docs

    @property
    def windows(self) -> int:
        return math.ceil(self.sample / self.window)

    @property
    def parts(self) -> int:
        return math.ceil(self.k / CLUSTERS_PER_PART)

    def url(self, kind: str, number: int, ext: str = "npy", step: int | None = None) -> str:
        name = f"{number:06d}.{ext}"
        return join(self.work, kind, name) if step is None else join(self.work, kind, f"{step:03d}", name)

    def sums(self) -> np.dtype:
        return np.dtype([("cluster", "<i8"), ("sum", "<f8", (self.dim,))])


def save(url: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    put_bytes(url, buf.getvalue())


def load(url: str) -> np.ndarray:
    return np.load(io.BytesIO(get_bytes(url)))


# ----------------------------------------------------------------------------- 1-3. sample, gather, seed

@dataclass(frozen=True)
class SampleTask:
    plan: Plan

    @property
    def name(self) -> str:
        return f"k-means sample of {self.plan.sample} embeddings"


def sample_task(task: SampleTask) -> int:
    plan = task.plan
    rng = np.random.default_rng(plan.params.seed)
    positions = np.sort(rng.choice(plan.n, size=plan.sample, replace=False))
    for w in range(plan.windows):
        save(plan.url("positions", w), positions[w * plan.window:(w + 1) * plan.window])
    put_bytes(join(plan.work, "rng.json"), json.dumps(rng.bit_generator.state).encode())
    return len(positions)


@dataclass(frozen=True)
class GatherTask:
    plan: Plan
    files: SampleSource
    w: int

    @property
    def name(self) -> str:
        return f"k-means sample window {self.w}"


def gather_task(task: GatherTask) -> int:
    rows = task.files.rows(load(task.plan.url("positions", task.w)))
    save(task.plan.url("rows", task.w), rows)
    return len(rows)


@dataclass(frozen=True)
class SeedTask:
    plan: Plan

    @property
    def name(self) -> str:
        return f"k-means seeds ({self.plan.k} clusters)"


def seed_task(task: SeedTask) -> int:
    plan = task.plan
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(get_bytes(join(plan.work, "rng.json")))
    if seeds_by_kmeans_pp(plan.sample, plan.params):
        x = np.concatenate([load(plan.url("rows", w)) for w in range(plan.windows)])
        centroids = _kmeans_pp(x, plan.k, rng)
    else:
        centroids = _rows_at(plan, random_seeds(plan.sample, plan.k, rng)).astype(np.float32)
    _save_ranges(plan, centroids, 0)
    return plan.k


def _rows_at(plan: Plan, positions: np.ndarray) -> np.ndarray:
    """Sample rows at sorted ``positions``, one window file at a time."""
    window = positions // plan.window
    return np.concatenate([load(plan.url("rows", w))[positions[window == w] - w * plan.window]
                           for w in np.unique(window).tolist()])


def _save_ranges(plan: Plan, centroids: np.ndarray, step: int, first: int = 0) -> None:
    """``centroids`` as range files ``first``, ``first + 1``, ... of iteration ``step``."""
    for p, lo in enumerate(range(0, len(centroids), CLUSTERS_PER_PART), start=first):
        save(plan.url("centroids", p, step=step), centroids[lo:lo + CLUSTERS_PER_PART])


def _centroids(plan: Plan, step: int) -> np.ndarray:
    return np.concatenate([load(plan.url("centroids", p, step=step)) for p in range(plan.parts)])


# ----------------------------------------------------------------------------- 4. Lloyd iterations

@dataclass(frozen=True)
class StepTask:
    plan: Plan
    w: int
    step: int                    # 1.. : this iteration
    centroids: int               # the iteration whose centroids it assigns to (0: the seeds)

    @property
    def name(self) -> str:
        return f"k-means iteration {self.step}, window {self.w}"


def step_task(task: StepTask) -> int:
    """Assign the window's rows; return how many changed cluster since the last step."""
    plan = task.plan
    x = load(plan.url("rows", task.w))
    labels = nearest_centroid(x, _centroids(plan, task.centroids), plan.params.block_docs)
    save(plan.url("labels", task.w, step=task.step), labels)
    previous = load(plan.url("labels", task.w, step=task.step - 1)) if task.step > 1 else None
    changed = len(labels) if previous is None else int(np.count_nonzero(labels != previous))
    clusters, sums = window_sums(x, labels)
    records = np.empty(len(clusters), plan.sums())
    records["cluster"], records["sum"] = clusters, sums
    write_partitioned(plan.url("sums", task.w, "part", task.step), records,
                      clusters // CLUSTERS_PER_PART, plan.parts)
    return changed


@dataclass(frozen=True)
class UpdateTask:
    plan: Plan
    part: int
    step: int
    centroids: int               # the iteration whose centroids the step assigned to

    @property
    def name(self) -> str:
        return f"k-means iteration {self.step}, clusters {self.part * CLUSTERS_PER_PART}.."


def update_task(task: UpdateTask) -> int:
    plan = task.plan
    previous = load(plan.url("centroids", task.part, step=task.centroids))
    first = task.part * CLUSTERS_PER_PART
    sums = np.zeros_like(previous, dtype=np.float64)
    for w in range(plan.windows):                      # the one-process order of windows
        r = read_partition(plan.url("sums", w, "part", task.step), plan.sums(), task.part)
        sums[r["cluster"] - first] += r["sum"]
    _save_ranges(plan, updated_centroids(sums, previous), task.step, task.part)
    return len(previous)


# ----------------------------------------------------------------------------- driver

@dataclass(frozen=True)
class JoinTask:
    plan: Plan
    step: int
    output: str

    @property
    def name(self) -> str:
        return f"k-means centroids ({self.plan.k})"


def join_task(task: JoinTask) -> int:
    save(task.output, _centroids(task.plan, task.step))
    return task.plan.k


def train_centroids(files: SampleSource, k: int, params: DedupSemantic, work: str, output: str,
                    mapper: Mapper) -> int:
    """Write :func:`~redrobe.dedup.semantic.kmeans`'s (k, dim) centroids of ``files`` to
    ``output`` (an ``.npy`` file); returns the Lloyd iterations run."""
    plan = Plan(len(files), k, files.dim, params, work)
    mapper(sample_task, [SampleTask(plan)])
    mapper(gather_task, [GatherTask(plan, files, w) for w in range(plan.windows)])
    mapper(seed_task, [SeedTask(plan)])
    current = 0
    for step in range(1, params.kmeans_iters + 1):
        changed = mapper(step_task, [StepTask(plan, w, step, current) for w in range(plan.windows)])
        if sum(changed) == 0:
            break
        mapper(update_task, [UpdateTask(plan, p, step, current) for p in range(plan.parts)])
        _drop(plan, ("sums", step), ("labels", step - 1), ("centroids", current))
        current = step
    mapper(join_task, [JoinTask(plan, current, output)])
    remove_tree(plan.work)
    return current


def _drop(plan: Plan, *steps: tuple[str, int]) -> None:
    """Delete what no later iteration reads: the scratch stays about two iterations'
    (sums per window are up to twice the sample in float64 when k is large)."""
    for kind, step in steps:
        remove_tree(join(plan.work, kind, f"{step:03d}"))
