"""MLflow tracking for stages and flows, with a no-op fallback.

Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///mlflow.db`` in the working
directory (the repo root under DVC), artifacts under ``mlartifacts/``. Set
``REDROBE_TRACKING=off`` to run without MLflow (a :class:`NullTracker` is used).

Run hierarchy: one parent run per pipeline execution and one child run per stage.
The parent is opened by the Prefect flow, which passes its id to DVC's subprocesses
in ``REDROBE_PARENT_RUN_ID``. Under a plain ``dvc repro`` the first stage that runs
opens the parent and tags it with the invocation key of the ``dvc`` process that ran
it (pid + start time), so the later stages of the same ``dvc repro`` find it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator, Sequence

from redrobe.config import flatten

PARENT_ENV = "REDROBE_PARENT_RUN_ID"
INVOCATION_TAG = "redrobe.invocation"
KIND_TAG = "redrobe.kind"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def enabled() -> bool:
    return os.environ.get("REDROBE_TRACKING", "on").lower() not in ("off", "0", "false")


def setup(experiment: str) -> str:
    """Point mlflow at the store and experiment; return the experiment id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        exp_id = found.experiment_id
    else:
        location = None
        uri = tracking_uri()
        if uri.startswith("sqlite:///"):  # artifacts beside the database file
            location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Tracker:
    """The handle a stage logs through (one MLflow child run)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        import mlflow

        numeric = {k: float(v) for k, v in flatten(metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            mlflow.log_metrics(numeric, step=step)

    def log_metrics_json(self, metrics: dict[str, Any], path: Path) -> None:
        """Log a stage's metrics file: its numbers as metrics, the file as an artifact."""
        import mlflow

        self.log_metrics({k: v for k, v in metrics.items() if k != "stage"})
        mlflow.log_artifact(str(path), artifact_path="metrics")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        path = Path(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dict(self, payload: dict[str, Any], artifact_file: str) -> None:
        """Log a JSON document (e.g. the stage's input→output shard edges) as an artifact."""
        import mlflow

        mlflow.log_dict(payload, artifact_file)

    def set_tags(self, tags: dict[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_datasets(self, shards: Sequence[dict[str, str]], context: str) -> None:
        """Log files as dataset inputs; each dict has ``name`` and ``path``.

        The dataset digest is the file's md5 (MLflow caps digests at 36 characters, and
        md5 is also the per-file hash in DVC's cache, so the two can be matched); the
        full sha256 goes in the input's ``sha256`` tag.
        """
        import mlflow
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        from redrobe.documents import file_digest

        for shard in shards:
            path = Path(shard["path"]).resolve()
            source = resolve_dataset_source(str(path))
            dataset = MetaDataset(source=source, name=shard["name"], digest=file_digest(path, "md5"))
            mlflow.log_input(dataset, context=context, tags={"sha256": file_digest(path)})

    def log_model(self, model: Any, name: str, tags: dict[str, Any]) -> str:
        """Log a torch model as an MLflow LoggedModel linked to this run; return its id."""
        import mlflow.pytorch

        # pickle format: MLflow 3's default ("pt2") needs an input example to export.
        info = mlflow.pytorch.log_model(model, name=name, serialization_format="pickle",
                                        pip_requirements=["torch", "transformers"],
                                        tags={k: str(v) for k, v in tags.items()})
        return info.model_id


class NullTracker(Tracker):
    """Used when tracking is off: every call is a no-op."""

    def __init__(self) -> None:
        super().__init__("")

    def log_metrics(self, *a: Any, **k: Any) -> None: ...
    def log_metrics_json(self, *a: Any, **k: Any) -> None: ...
    def log_artifact(self, *a: Any, **k: Any) -> None: ...
    def log_dict(self, *a: Any, **k: Any) -> None: ...
    def set_tags(self, *a: Any, **k: Any) -> None: ...
    def log_datasets(self, *a: Any, **k: Any) -> None: ...

    def log_model(self, *a: Any, **k: Any) -> str:
        return ""


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], experiment: str) -> Iterator[Tracker]:
    """Open the child run of one stage under the pipeline's parent run."""
    if not enabled():
        yield NullTracker()
        return
    import mlflow

    parent = _parent_run_id(setup(experiment))
    tags = {KIND_TAG: "stage", "redrobe.stage": stage, "redrobe.git_commit": git_commit()}
    with mlflow.start_run(run_name=stage, parent_run_id=parent, tags=tags) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
        yield Tracker(run.info.run_id)
    if parent and not os.environ.get(PARENT_ENV):
        from mlflow import MlflowClient

        MlflowClient().set_terminated(parent, "FINISHED")


@contextlib.contextmanager
def pipeline_run(experiment: str, name: str = "pipeline", tags: dict[str, Any] | None = None
                 ) -> Iterator[str]:
    """Open a parent run (used by the Prefect flow); yields its run id."""
    if not enabled():
        yield ""
        return
    import mlflow

    setup(experiment)
    all_tags = {KIND_TAG: "pipeline", "redrobe.git_commit": git_commit(), **(tags or {})}
    with mlflow.start_run(run_name=name, tags={k: str(v) for k, v in all_tags.items()}) as run:
        yield run.info.run_id


def _parent_run_id(exp_id: str) -> str | None:
    """The parent run: from the flow's env var, or shared by the stages of one dvc call."""
    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    key = _dvc_invocation_key()
    if key is None:
        return None  # a stage run by hand is a top-level run
    from mlflow import MlflowClient

    client = MlflowClient()
    found = client.search_runs([exp_id], filter_string=f"tags.`{INVOCATION_TAG}` = '{key}'",
                               max_results=1)
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    tags = {KIND_TAG: "pipeline", INVOCATION_TAG: key, "redrobe.launcher": "dvc",
            "redrobe.git_commit": git_commit()}
    return client.create_run(exp_id, run_name="pipeline (dvc repro)", tags=tags).info.run_id


def _dvc_invocation_key() -> str | None:
    """pid and start time of the nearest ancestor ``dvc`` process, or None (Linux /proc)."""
    pid = os.getppid()
    for _ in range(8):
        if pid <= 1:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        if any(Path(arg.decode(errors="replace")).name == "dvc" for arg in cmdline[:2]) or \
                b"dvc" in cmdline[1:3] and cmdline[0].endswith(b"python"):
            return f"{pid}-{stat[19]}"  # field 22 of /proc/pid/stat: start time
        pid = int(stat[1])  # field 4: ppid
    return None

