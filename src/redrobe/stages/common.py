"""Shared glue for stage modules: argument parsing, params, metrics, tracking, errors.

A stage module defines ``run(params, args, tracker) -> dict`` (its metrics) and
``main(argv)`` that calls :func:`execute`. ``execute`` loads and validates
params.yaml, opens the stage's MLflow child run (logging the params sections of the
stage's record in :mod:`redrobe.stages.registry`), calls ``run``, checks and writes
``data/metrics/<stage>.json`` and turns known errors into one clear message and a
non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from redrobe.accounting import AccountingError, Ledger
from redrobe.config import ConfigError, Params, as_dict, load_params
from redrobe.documents import file_digest, scratch_dir, write_json
from redrobe.errors import GateError, InputError
from redrobe.stages.registry import STAGES
from redrobe.storage import fetch_tree, is_url, join, manifest_digests, read_manifest, remove_tree

if TYPE_CHECKING:
    from redrobe.tracking import Tracker


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"redrobe {stage}", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--metrics", required=True, help="where to write the stage metrics JSON")
    return p


def metrics_payload(stage: str, ledger: Ledger | None = None, **extra: Any) -> dict[str, Any]:
    """The metrics JSON of a stage: accounting (checked) plus stage-specific fields."""
    payload: dict[str, Any] = {"stage": stage, **extra}
    if ledger is not None:
        ledger.check()
        payload["accounting"] = ledger.as_dict()
    return payload


def progress(name: str, total: int | None, **options: Any) -> Any:
    """A progress reporter on stderr: a live bar on a terminal, plain lines in logs."""
    from redrobe.progress import Progress

    return Progress(name, total, stream=sys.stderr, live=sys.stderr.isatty(), **options)


def add_work_dir(p: argparse.ArgumentParser) -> None:
    """``--work-dir``: where a stage's partitioned steps keep their scratch files."""
    p.add_argument("--work-dir", default="",
                   help="scratch space of the partitioned steps, any fsspec URL every worker reaches "
                        "(default: a temporary directory beside --output, removed afterwards)")


@contextlib.contextmanager
def work_dir(url: str, beside: str, stage: str) -> Iterator[str]:
    """A stage's scratch space, removed afterwards: a fresh folder under ``url`` (any
    fsspec URL that every worker reaches, e.g. the object store a cluster shares), else
    beside the output ``beside`` (:func:`redrobe.documents.scratch_dir`)."""
    if not url:
        with scratch_dir(beside) as local:
            yield str(local)
        return
    work = join(url, f"{stage}-{uuid.uuid4().hex}")
    try:
        yield work
    finally:
        remove_tree(work)


#: where inputs on object storage are fetched to, beside the other caches
FETCH_CACHE = ".redrobe/cache/fetch"


def add_fetch_cache(p: argparse.ArgumentParser) -> None:
    """``--fetch-cache``: where a stage's model-side inputs given as URLs are fetched to."""
    p.add_argument("--fetch-cache", default=FETCH_CACHE,
                   help="local cache for inputs given as object-storage URLs: one verified copy of "
                        "each URL's newest committed version, files stored once by sha256 "
                        "(default: %(default)s)")


def fetched(args: argparse.Namespace, *names: str) -> argparse.Namespace:
    """``args`` with each input ``names`` names that is a URL replaced by its local copy
    in ``args.fetch_cache`` (:func:`redrobe.storage.fetch_tree`): the stage memory-maps
    and preads local files. Local inputs are left as they are. ``fetched_from`` maps each
    copy to its URL, for the names lineage and tags record (:func:`source_of`)."""
    local = {name: str(fetch_tree(getattr(args, name), args.fetch_cache)) for name in names
             if is_url(getattr(args, name))}
    sources = {**fetched_sources(args), **{path: getattr(args, name) for name, path in local.items()}}
    return argparse.Namespace(**{**vars(args), **local, "fetched_from": sources})


def fetched_sources(args: argparse.Namespace) -> dict[str, str]:
    """Local copy -> URL of the inputs :func:`fetched` fetched (none for other args)."""
    return dict(getattr(args, "fetched_from", {}))


def source_of(args: argparse.Namespace, path: str | Path) -> str:
    """``path`` named as the stage was given it: a file of a fetched copy by its URL."""
    text = str(path)
    for copy, url in fetched_sources(args).items():
        if text == copy or text.startswith(copy + "/"):
            return url + text[len(copy):]
    return text


def log_output(tracker: Tracker, root: str, artifact_path: str, name: str = "") -> None:
    """Log the output at ``root`` (or its file ``name``) as an MLflow artifact. One on
    object storage is logged as its URL and manifest (MLflow uploads local files; the
    bytes are in the bucket already)."""
    if not is_url(root):
        tracker.log_artifact(Path(root) / name if name else Path(root), artifact_path)
        return
    files = [dataclasses.asdict(e) for e in read_manifest(root) or [] if not name or e.path == name]
    tracker.log_dict({"url": join(root, name) if name else root, "files": files},
                     f"{artifact_path}/{name or 'output'}.remote.json")


def log_lineage(tracker: Tracker, stage: str, pairs: Iterable[tuple[str | Path, str | Path]],
                committed: Sequence[str] = ()) -> list[dict[str, str]]:
    """Log ``lineage/<stage>.json``: one edge per (input file, output file) with sha256s.
    The digests of files in the ``committed`` outputs come from their manifests (computed
    as they were written); other files are read to hash them."""
    digests: dict[str, str] = {}
    for root in committed:
        digests.update(manifest_digests(root))

    def digest(path: str | Path) -> str:
        key = str(path)
        if key not in digests:
            digests[key] = file_digest(path)
        return digests[key]

    edges = [{"input": str(i), "input_digest": digest(i), "output": str(o),
              "output_digest": digest(o)} for i, o in pairs]
    tracker.log_dict({"edges": edges}, f"lineage/{stage}.json")
    return edges


def execute(stage: str, argv: Sequence[str] | None, build: Callable[[], argparse.ArgumentParser],
            run: Callable[[Params, argparse.Namespace, Tracker], dict[str, Any] | None]) -> int:
    """Run one stage end to end; return the process exit code.

    The stage's MLflow run logs the params sections of its registry record
    (:attr:`redrobe.stages.registry.Stage.params`: the ``params`` dvc.yaml declares).
    """
    sections = STAGES[stage].params
    args = build().parse_args(argv)
    _profile_tasks()
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        return _fail(stage, str(exc), 2)
    from redrobe import tracking  # imported here: mlflow import is slow and optional

    started = time.time()
    try:
        with tracking.stage_run(stage, {s: as_dict(getattr(params, s)) for s in sections},
                                params.tracking.experiment,
                                pipeline_params=as_dict(params)) as tracker:
            metrics = run(params, args, tracker)
            if metrics is not None:  # None: a non-zero rank of a distributed run writes nothing
                metrics["wall_seconds"] = round(time.time() - started, 3)
                write_json(args.metrics, metrics)
                tracker.log_metrics_json(metrics, Path(args.metrics))
    except (InputError, AccountingError) as exc:
        return _fail(stage, str(exc), 1)
    except GateError as exc:
        return _fail(stage, f"quality gate failed: {exc}", 1)
    finally:
        _stop_ray()
    print(f"redrobe {stage}: done in {time.time() - started:.1f}s -> {args.metrics}")
    return 0


def _profile_tasks() -> None:
    """Profile every task when the environment asks (benchmarks/scale.py); only stages
    that map tasks import redrobe.parallel, see below."""
    parallel = sys.modules.get("redrobe.parallel")
    if parallel is not None:
        parallel.profile_tasks(os.environ.get(parallel.PROFILE_ENV, ""))


def _stop_ray() -> None:
    """End the local Ray a stage started with the stage, not at interpreter exit. Only a
    stage that imported redrobe.parallel can have started one, so the others do not import
    it (dvc.yaml lists as a stage's code deps exactly the modules it imports)."""
    parallel = sys.modules.get("redrobe.parallel")
    if parallel is not None:
        parallel.shutdown()


def _fail(stage: str, message: str, code: int) -> int:
    print(f"redrobe {stage}: error: {message}", file=sys.stderr)
    return code


def torch_threads(configured: int) -> int:
    """A training stage's torch thread count: the params value; where that is 0 (all
    cores), OMP_NUM_THREADS if the environment sets it, so a scheduler or a parallel test
    run that gives each process its share of the cores is obeyed."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return configured or (int(value) if value.isdigit() else 0)
