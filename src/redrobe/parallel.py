"""Shard executors: map a function over shards on local processes or on a Ray cluster.

A data stage picks its executor once from ``params.shared`` and maps a picklable
top-level function (or ``functools.partial`` of one) over small picklable tasks (paths
and params, never data):

    executor = executor_for(params.shared)        # shared.executor: local | ray
    results = executor.map(clean_shard, tasks)    # results in task order
    for index, result in executor.as_completed(clean_shard, tasks):
        ...                                       # as tasks finish (progress reports)

Both executors keep at most ``shared.workers`` tasks in flight and return results in
task order from :meth:`Executor.map`, so outputs and merged metrics are byte-identical
whatever the executor and worker count.

- ``local`` (default): one worker runs tasks in this process; more use a local process
  pool (``concurrent.futures.ProcessPoolExecutor``), even for a single task.
- ``ray``: tasks run as Ray tasks. With ``shared.ray_address: ""`` a local Ray is
  started on first use (``num_cpus=workers``, no dashboard, warnings only) and shut
  down by :func:`shutdown` (at the end of the stage, or at interpreter exit). With an
  address (``auto``, ``host:6379``, ``ray://host:10001``) the driver connects to that
  cluster; :func:`shutdown` only disconnects, it never stops a cluster. A Ray already
  initialised in this process (by a caller or a test fixture) is used as it is and
  left running. Every Ray worker must be able to ``import redrobe`` (locally: the same
  virtualenv, as here; on a cluster: install the package on every node, or connect
  with a ``runtime_env`` whose ``working_dir`` holds the repository) and see the
  task's paths (a shared filesystem).

On Ray, a task whose worker process or node dies (killed, preempted, out of memory) is
run again on a live node, up to :data:`RAY_TASK_RETRIES` times: a stage task writes each
output file under a temporary name and renames it into place once complete
(``ShardWriter``, ``atomic_file``), so the rerun replaces a half-written file of the dead
attempt whole and leaves what one run would have. A task that raises is not retried
(the same input would raise again). The local pool has
no retries: a worker that dies fails the map (``BrokenProcessPool``).

A task that raises stops the map: pending tasks are cancelled and the error names the
task's shard (:func:`task_name`). The errors the stage glue reports (InputError,
GateError, AccountingError) keep their type, so the stage prints one message and exits
1; anything else becomes a :class:`TaskError` carrying the worker's message.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import json
import logging
import os
import pickle
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Sequence, TypeVar

from redrobe.accounting import AccountingError
from redrobe.config import ConfigError, Shared
from redrobe.errors import GateError, InputError

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")
# Errors the stage glue reports as one message and an exit code: they keep their type.
STAGE_ERRORS = (InputError, GateError, AccountingError)
# Reruns of a Ray task whose worker or node died (Ray's own default, stated here so a
# cluster's RAY_TASK_MAX_RETRIES cannot turn it off); exceptions are never retried.
RAY_TASK_RETRIES = 3
#: the environment variable the stage glue reads: a folder where every map then records
#: each task's resources (:func:`profile_tasks`, :class:`Profiled`)
PROFILE_ENV = "REDROBE_TASK_PROFILE"
_profile_folder = ""


class TaskError(RuntimeError):
    """A task failed in a worker; the message names the task's shard and the cause."""

    def __init__(self, task: str, cause: str) -> None:
        self.task = task
        super().__init__(f"task for {task} failed: {cause}")


def task_name(task: Any) -> str:
    """What a task works on, for error messages: its input path (or slice), else its repr."""
    if isinstance(task, (str, os.PathLike)):
        return str(task)
    for attr in ("input", "path", "slice", "name"):
        value = getattr(task, attr, None)
        if isinstance(value, (str, os.PathLike)) and str(value):
            return str(value)
    return repr(task)[:200]


def _failure(task: Any, exc: BaseException) -> Exception:
    """The exception to raise in the driver for ``task`` failing with ``exc``."""
    name = task_name(task)
    if isinstance(exc, STAGE_ERRORS):
        return exc if name in str(exc) else type(exc)(f"{name}: {exc}")
    return TaskError(name, f"{type(exc).__name__}: {exc}")


class Executor:
    """Maps ``fn`` over tasks with at most ``workers`` in flight (a bounded window).

    Subclasses say how one task is submitted, how to wait for some to finish, and how
    to fetch (or cancel) a submitted task; the window, ordering and error handling are
    shared here.
    """

    name = ""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[fn(t) for t in tasks]``, computed by the workers; results in task order."""
        results: list[Any] = [None] * len(tasks)
        for index, result in self.as_completed(fn, tasks):
            results[index] = result
        return results

    def as_completed(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Yield ``(task index, result)`` as tasks finish (completion order)."""
        if _profile_folder:
            fn = Profiled(fn, _profile_folder)
        fn = ReleasingMemory(fn)
        pending: dict[Hashable, int] = {}
        submitted = 0
        self._begin(fn, len(tasks))
        try:
            while pending or submitted < len(tasks):
                while submitted < len(tasks) and len(pending) < self.workers:
                    pending[self._submit(tasks[submitted])] = submitted
                    submitted += 1
                for handle in self._finished(list(pending)):
                    index = pending.pop(handle)
                    yield index, self._fetch(handle, tasks[index])
        finally:
            for handle in pending:
                self._cancel(handle)
            self._end()

    def close(self) -> None:
        """Release what this executor holds (a no-op for the local pool)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what a backend provides ------------------------------------------------------
    def _begin(self, fn: Callable[[Any], Any], n_tasks: int) -> None:
        raise NotImplementedError

    def _submit(self, task: Any) -> Hashable:
        raise NotImplementedError

    def _finished(self, handles: list[Hashable]) -> list[Hashable]:
        raise NotImplementedError

    def _fetch(self, handle: Any, task: Any) -> Any:
        raise NotImplementedError

    def _cancel(self, handle: Any) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError


class _Done:
    """A task already run in this process (the one-worker path): its result or error."""

    def __init__(self, fn: Callable[[Any], Any], task: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        try:
            self.result = fn(task)
        except Exception as exc:  # noqa: BLE001  # re-raised by _fetch, named after the task
            self.error = exc


class LocalExecutor(Executor):
    """Tasks in this process (one worker) or on a local process pool (``workers > 1``)."""

    name = "local"

    def _begin(self, fn: Callable[[Any], Any], n_tasks: int) -> None:
        self._fn = fn
        _release_memory()   # forked workers start with the driver's pages: hand back what is free
        # No pool for one worker: cheaper, and tracebacks stay in-process. With more, even a
        # lone task runs in the pool, so the driver's memory never holds a task's.
        use_pool = self.workers > 1 and n_tasks > 0
        self._pool = ProcessPoolExecutor(max_workers=min(self.workers, n_tasks)) if use_pool else None

    def _submit(self, task: Any) -> Hashable:
        if self._pool is None:
            return _Done(self._fn, task)
        return self._pool.submit(self._fn, task)

    def _finished(self, handles: list[Hashable]) -> list[Hashable]:
        futures = [h for h in handles if isinstance(h, Future)]
        if len(futures) < len(handles):
            return [h for h in handles if isinstance(h, _Done)]
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return sorted(done, key=handles.index)

    def _fetch(self, handle: Any, task: Any) -> Any:
        error = handle.error if isinstance(handle, _Done) else handle.exception()
        if error is not None:
            raise _failure(task, error) from error
        return handle.result if isinstance(handle, _Done) else handle.result()

    def _cancel(self, handle: Any) -> None:
        if isinstance(handle, Future):
            handle.cancel()

    def _end(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


@dataclass(frozen=True)
class ReleasingMemory:
    """``fn`` followed by handing freed memory back to the system (Arrow's allocator and
    the C heap both keep freed blocks for reuse), so a worker that runs many tasks holds
    the memory of its current task, not the high-water mark of all it ran."""

    fn: Callable[[Any], Any]

    def __call__(self, task: Any) -> Any:
        try:
            return self.fn(task)
        finally:
            _release_memory()


def _release_memory() -> None:
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    _trim_c_heap()


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:     # not glibc: nothing to trim
        return None


def _trim_c_heap() -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def profile_tasks(folder: str) -> None:
    """From now on, wrap every map's tasks in :class:`Profiled` writing under ``folder``
    ('' stops). The stage glue calls it when :data:`PROFILE_ENV` is set."""
    global _profile_folder
    _profile_folder = folder


@dataclass(frozen=True)
class Profiled:
    """``fn`` that also appends one JSON line per task to ``<folder>/<pid>.jsonl``: the
    function, the task, wall and CPU seconds, the peak RSS during the task (the kernel's
    high-water mark, reset before it starts) and the RSS it started from, the file-backed
    and shared pages of the RSS when it ends, open file descriptors, memory maps and the
    pickled result's size. ``benchmarks/scale.py`` sets :data:`PROFILE_ENV` for the stages
    it measures; costs a few syscalls per task.

    Why the file-backed pages: a forked worker starts with the driver's anonymous pages
    but not with its mapped code (the kernel copies no page-table entries for read-only
    file mappings), so a worker's first task faults the shared libraries' pages it runs
    back in (a few MB, shared with every process on the machine) and later tasks start
    with them: the peak less them compares a worker's first task with its later ones."""

    fn: Callable[[Any], Any]
    folder: str

    def __call__(self, task: Any) -> Any:
        _reset_peak_rss()
        start = _proc_status("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        result = self.fn(task)
        record = {"fn": getattr(self.fn, "__name__", repr(self.fn)), "task": task_name(task),
                  "wall_s": round(time.perf_counter() - wall, 4),
                  "cpu_s": round(time.process_time() - cpu, 4),
                  "peak_rss_mb": round(_proc_status("VmHWM") / 1024, 1),
                  "start_rss_mb": round(start / 1024, 1),
                  "file_rss_mb": round((_proc_status("RssFile") + _proc_status("RssShmem")) / 1024, 1),
                  "fds": len(os.listdir("/proc/self/fd")), "maps": _count_lines("/proc/self/maps"),
                  "result_bytes": len(pickle.dumps(result))}
        os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        return result


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")   # 5: reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def _proc_status(field: str) -> int:
    """A kB field of /proc/self/status (0 where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def _apply(fn: Callable[[T], R], task: T) -> R:
    """The Ray task body: ``fn`` travels once through the object store, tasks by value."""
    return fn(task)


# Ray's driver state is per process, so is ours: how this module joined Ray, if it did.
_ray_joined_by_us = False


def _ray(workers: int, address: str) -> Any:
    """The ``ray`` module, initialised: reuse a running session, else start or connect."""
    global _ray_joined_by_us
    import ray  # imported here: only the ray executor pays for it

    if not ray.is_initialized():
        options: dict[str, Any] = {"logging_level": logging.WARNING, "ignore_reinit_error": True}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **options)
        _ray_joined_by_us = True
        atexit.unregister(shutdown)  # once, however often Ray is started and stopped
        atexit.register(shutdown)
    return ray


def shutdown() -> None:
    """Stop the local Ray this module started (or disconnect from the cluster it joined).

    A Ray session initialised by someone else in this process is left alone. Safe to
    call at any time; the stage glue calls it when a stage ends.
    """
    global _ray_joined_by_us
    if not _ray_joined_by_us:
        return
    import ray

    ray.shutdown()
    _ray_joined_by_us = False


class RayExecutor(Executor):
    """Tasks as Ray tasks (one CPU each), at most ``workers`` in flight."""

    name = "ray"

    def __init__(self, workers: int = 1, address: str = "") -> None:
        super().__init__(workers)
        self.address = address

    def _begin(self, fn: Callable[[Any], Any], n_tasks: int) -> None:
        self._ray = _ray(self.workers, self.address)
        self._remote = self._ray.remote(max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_apply)
        self._fn_ref = self._ray.put(fn)

    def _submit(self, task: Any) -> Hashable:
        return self._remote.remote(self._fn_ref, task)

    def _finished(self, handles: list[Hashable]) -> list[Hashable]:
        done, _ = self._ray.wait(handles, num_returns=1)
        return done

    def _fetch(self, handle: Any, task: Any) -> Any:
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._ray.get(handle)
        except RayTaskError as exc:  # the task raised: report the worker's own exception
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise _failure(task, cause) from exc
        except RayError as exc:      # the worker died, was cancelled, ran out of memory...
            raise _failure(task, exc) from exc

    def _cancel(self, handle: Any) -> None:
        self._ray.cancel(handle)

    def _end(self) -> None:
        self._fn_ref = None

    def close(self) -> None:
        shutdown()


def executor_for(shared: Shared) -> Executor:
    """The executor ``params.shared`` asks for (``executor``, ``workers``, ``ray_address``)."""
    if shared.executor == "local":
        return LocalExecutor(shared.workers)
    if shared.executor == "ray":
        return RayExecutor(shared.workers, shared.ray_address)
    problem = f"shared.executor: must be one of {', '.join(EXECUTORS)} (got {shared.executor!r})"
    raise ConfigError([problem])


def map_shards(fn: Callable[[T], R], tasks: Sequence[T], workers: int = 1) -> list[R]:
    """Apply ``fn`` to every task on the local executor (``workers`` processes)."""
    return LocalExecutor(workers).map(fn, tasks)
