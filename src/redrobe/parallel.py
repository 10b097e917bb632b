"""Shard executor: map a function over shards, in-process or on a local process pool.

    results = map_shards(process_shard, tasks, workers=2)

``fn`` must be a picklable top-level function (or functools.partial of one) and each
task a small picklable value (paths and params, never data). Results come back in
task order, so outputs and merged counts are deterministic whatever the worker count.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_shards(fn: Callable[[T], R], tasks: Sequence[T], workers: int = 1) -> list[R]:
    """Apply ``fn`` to every task; ``workers > 1`` uses that many local processes."""
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        return list(pool.map(fn, tasks))
