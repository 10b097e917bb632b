"""`redrobe lineage MODEL [--json]`: which raw shards, at which hashes, through which code
and params, made these weights?

    redrobe lineage data/models/base            # a model directory (or a weights file)
    redrobe lineage data/models/lora/merged --json
    redrobe lineage m-da291ed84a9e4f6ab74c362245da2a30   # an MLflow logged-model id

Run from the repository root. Glue around :mod:`redrobe.lineage`: it reads the stage
runs of the MLflow experiment (``--experiment``, default ``tracking.experiment`` of
params.yaml; the store is ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``) with
their ``lineage/<stage>.json`` edges, params, ``redrobe.git_commit`` tags and dataset
inputs, and walks them from the weights' sha256 back to the raw shards. A directory is
matched by the sha256 of its ``model.safetensors`` (``adapter_model.safetensors`` for
an adapter); a logged model by its ``weights_digest`` tag. When the weights are the
ones in this checkout, each raw shard also gets the DVC md5 of the dvc.lock output
holding it (checked against the directory manifest in the DVC cache). Exit 1 when no
recorded run produced the model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from redrobe import tracking
from redrobe.config import ConfigError, load_params
from redrobe.documents import file_digest
from redrobe.lineage import LineageError, attach_dvc, render, trace

WEIGHTS_FILES = ("model.safetensors", "adapter_model.safetensors")
LOCK_FILE = "dvc.lock"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redrobe lineage", description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL",
                   help="model directory, weights file, or MLflow logged-model id (m-...)")
    p.add_argument("--json", action="store_true", help="print the lineage as JSON")
    p.add_argument("--experiment", default=None,
                   help="MLflow experiment (default: tracking.experiment of params.yaml)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = lineage(args.model, args.experiment or _default_experiment())
    except LineageError as exc:
        print(f"redrobe lineage: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report), end="\n" if args.json else "")
    return 0


def lineage(model: str, experiment: str) -> dict[str, Any]:
    """The lineage report of ``model`` (see :func:`redrobe.lineage.trace`)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LineageError(f"{model}: MLflow experiment {experiment!r} does not exist in "
                           f"{tracking.tracking_uri()} (has the pipeline run here?)")
    sha256, path, model_id = _target(client, model)
    report = trace(stage_runs(client, found.experiment_id), sha256, path)
    head = tracking.git_commit()
    report["model"]["logged_model_id"] = model_id
    report["model"]["in_checkout"] = _in_checkout(report["model"]["path"], sha256)
    report["checkout"] = {"git_head": None if head == "unknown" else head,
                          "dvc_lock": LOCK_FILE if Path(LOCK_FILE).is_file() else None}
    if report["model"]["in_checkout"] and Path(LOCK_FILE).is_file():
        attach_dvc(report, dvc_outs(Path(LOCK_FILE), [s["path"] for s in report["raw_shards"]]))
    return report


def _target(client: Any, model: str) -> tuple[str, str | None, str | None]:
    """(weights sha256, recorded path to prefer, logged-model id) for the MODEL argument."""
    given = Path(model)
    if given.exists():
        weights = given if given.is_file() else next(
            (given / w for w in WEIGHTS_FILES if (given / w).is_file()), None)
        if weights is None:
            raise LineageError(f"{model}: no {' or '.join(WEIGHTS_FILES)} in this directory")
        return file_digest(weights), _relative(weights), None
    from mlflow.exceptions import MlflowException

    try:
        logged = client.get_logged_model(model)
    except MlflowException as exc:
        raise LineageError(f"{model}: neither a model directory nor an MLflow logged model "
                           f"({exc.message.splitlines()[0]})") from exc
    digest = logged.tags.get("weights_digest")
    if not digest:
        raise LineageError(f"{model}: the logged model has no weights_digest tag")
    return digest, None, logged.model_id


def _relative(path: Path) -> str:
    """The path as the stages record it: relative to the repo root (cwd), POSIX."""
    return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()


def _in_checkout(path: str, sha256: str) -> bool:
    return Path(path).is_file() and file_digest(path) == sha256


def stage_runs(client: Any, experiment_id: str) -> list[dict[str, Any]]:
    """Every finished stage run that logged lineage edges, as plain mappings."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=1000, page_token=token,
            filter_string=f"tags.`{tracking.KIND_TAG}` = 'stage' and attributes.status = 'FINISHED'")
        runs += [r for r in (_run_record(client, run) for run in page) if r is not None]
        token = page.token
        if not token:
            return runs


def _run_record(client: Any, run: Any) -> dict[str, Any] | None:
    stage = run.data.tags.get("redrobe.stage") or run.info.run_name
    artifact = f"lineage/{stage}.json"
    if not any(a.path == artifact for a in client.list_artifacts(run.info.run_id, "lineage")):
        return None  # a stage that logs no edges (quality, evaluate, report)
    with _quiet_downloads():
        import mlflow

        edges = mlflow.artifacts.load_dict(f"{run.info.artifact_uri.rstrip('/')}/{artifact}")
    return {"run_id": run.info.run_id, "stage": stage, "start_time": run.info.start_time,
            "edges": edges.get("edges", []), "params": dict(run.data.params),
            "git_commit": run.data.tags.get("redrobe.git_commit"),
            "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
            "datasets": [_dataset(d) for d in (run.inputs.dataset_inputs if run.inputs else [])]}


def _dataset(entry: Any) -> dict[str, Any]:
    tags = {t.key: t.value for t in entry.tags}
    try:
        uri = json.loads(entry.dataset.source).get("uri")
    except (ValueError, AttributeError):
        uri = entry.dataset.source
    return {"name": entry.dataset.name, "digest": entry.dataset.digest, "sha256": tags.get("sha256"),
            "context": tags.get("mlflow.data.context"), "uri": uri}


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No tqdm bar per downloaded lineage file (MLflow reads this variable per download)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def dvc_outs(lock: Path, paths: Sequence[str]) -> list[dict[str, Any]]:
    """The dvc.lock outputs holding any of ``paths``, each with its manifest from the cache."""
    spec = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    outs = [{"stage": stage, "path": o["path"], "md5": o["md5"]}
            for stage, entry in (spec.get("stages") or {}).items()
            for o in entry.get("outs", []) if o.get("md5")]
    wanted = [o for o in outs if any(p == o["path"] or p.startswith(o["path"].rstrip("/") + "/")
                                     for p in paths)]
    if not wanted:
        return []
    from dvc.repo import Repo

    with Repo(str(lock.parent)) as repo:
        for out in wanted:
            out["files"] = _manifest(repo, out["md5"])
    return wanted


def _manifest(repo: Any, md5: str) -> dict[str, str] | None:
    """``{relpath: md5}`` of a directory output (``{"": md5}`` for a file); None if uncached."""
    if not md5.endswith(".dir"):
        return {"": md5}
    try:
        entries = json.loads(Path(repo.cache.local.oid_to_path(md5)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {e["relpath"]: e["md5"] for e in entries if "relpath" in e and "md5" in e}


def _default_experiment() -> str:
    try:
        return load_params("params.yaml").tracking.experiment
    except (ConfigError, OSError):
        return "redrobe"


if __name__ == "__main__":
    sys.exit(main())
