"""MLflow tracking for stages and flows, with a no-op fallback.

Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///mlflow.db`` in the working
directory (the repo root under DVC), artifacts under ``mlartifacts/``. Set
``REDROBE_TRACKING=off`` to run without MLflow (a :class:`NullTracker` is used).

Run hierarchy: one parent run per pipeline execution and one child run per stage.
The parent is opened by the Prefect flow, which passes its id to DVC's subprocesses
in ``REDROBE_PARENT_RUN_ID``. Under a plain ``dvc repro`` the first stage that runs
opens the parent and tags it with the invocation key of the ``dvc`` process that ran
it (pid + start time), so the later stages of the same ``dvc repro`` find it.

Parent runs are named and tagged so MLflow's compare view answers "what changed
between these two pipelines": the name is ``pipeline <commit>[+dirty] <params digest>``
(:func:`pipeline_name`), the tags carry the full git commit, whether the work tree
had uncommitted changes, the sha256 of the canonical params and the launcher
(``prefect``, ``dvc``, ...), and the whole flattened params.yaml is logged as the
parent's params (``clean.gopher_quality.min_words`` ...), so two parents show a param
diff. A stage can copy metrics and tags onto the parent (evaluate copies its
``eval.<model>.<slice>.<metric>`` metrics) and use the model registry through its
:class:`Tracker` (:class:`ModelRegistry`).

    with pipeline_run("redrobe", params=as_dict(load_params("params.yaml")),
                      launcher="prefect") as parent_id:
        ...  # stages run with REDROBE_PARENT_RUN_ID=parent_id
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from redrobe.config import flatten

PARENT_ENV = "REDROBE_PARENT_RUN_ID"
INVOCATION_TAG = "redrobe.invocation"
KIND_TAG = "redrobe.kind"
COMMIT_TAG = "redrobe.git_commit"
DIRTY_TAG = "redrobe.git_dirty"
PARAMS_DIGEST_TAG = "redrobe.params_digest"
LAUNCHER_TAG = "redrobe.launcher"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
WEIGHTS_TAG = "weights_digest"  # sha256 of a model's weights file (LoggedModel / version tag)


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


def _git(args: list[str], repo: str | Path | None) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(repo: str | Path | None = None) -> str:
    """HEAD's commit hash of the repository at ``repo`` (default: cwd), or "unknown"."""
    out = _git(["rev-parse", "HEAD"], repo)
    return (out.stdout.strip() if out and out.returncode == 0 else "") or "unknown"


def git_dirty(repo: str | Path | None = None) -> bool:
    """Whether tracked files differ from HEAD, dvc.lock aside (the pipeline rewrites it)."""
    out = _git(["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock"],
               repo)
    return bool(out and out.returncode == 0 and out.stdout.strip())


def params_digest(params: Mapping[str, Any]) -> str:
    """sha256 of the params as canonical JSON: equal params, equal digest (YAML layout aside)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def pipeline_name(commit: str, dirty: bool, digest: str | None) -> str:
    """The readable name of a parent run: ``pipeline 1a2b3c4[+dirty] 9f8e7d6c``."""
    code = commit[:7] + ("+dirty" if dirty else "")
    return f"pipeline {code} {digest[:8]}" if digest else f"pipeline {code}"


def describe_pipeline(params: Mapping[str, Any] | None, launcher: str,
                      repo: str | Path | None = None) -> tuple[str, dict[str, str]]:
    """The name and tags of a parent run: commit, dirty flag, params digest, launcher."""
    commit, dirty = git_commit(repo), git_dirty(repo)
    digest = params_digest(params) if params is not None else None
    tags = {KIND_TAG: "pipeline", COMMIT_TAG: commit, DIRTY_TAG: str(dirty).lower(),
            LAUNCHER_TAG: launcher,
            "mlflow.note.content": (f"redrobe pipeline launched by `{launcher}` at commit "
                                    f"`{commit}`{' with uncommitted changes' if dirty else ''}"
                                    f"; params sha256 `{digest or 'not recorded'}`.")}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit  # the UI's "Version" column
    if digest:
        tags[PARAMS_DIGEST_TAG] = digest
    return pipeline_name(commit, dirty, digest), tags


def _log_params(run_id: str, params: Mapping[str, Any]) -> None:
    """Log nested params flattened (``section.key``), in batches of MLflow's limit of 100."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    flat = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in sorted(flatten(dict(params)).items())]
    client = MlflowClient()
    for i in range(0, len(flat), 100):
        client.log_batch(run_id, params=flat[i:i + 100])


class Tracker:
    """The handle a stage logs through (one MLflow child run, and its pipeline parent)."""

    enabled = True

    def __init__(self, run_id: str, parent_run_id: str | None = None,
                 experiment_id: str | None = None) -> None:
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None,
                    model_id: str | None = None) -> None:
        """Log the numbers of a (nested) dict; ``model_id`` also links them to a LoggedModel."""
        import mlflow

        numeric = _numeric(metrics)
        if numeric:
            mlflow.log_metrics(numeric, step=step, model_id=model_id)

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

    def log_parent_metrics(self, metrics: dict[str, Any]) -> None:
        """Copy numbers onto the pipeline's parent run (no-op for a stage run on its own)."""
        numeric = _numeric(metrics)
        if self.parent_run_id and numeric:
            from mlflow import MlflowClient
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            rows = [Metric(k, v, now, 0) for k, v in sorted(numeric.items())]
            for i in range(0, len(rows), 1000):  # MLflow's per-batch metric limit
                MlflowClient().log_batch(self.parent_run_id, metrics=rows[i:i + 1000])

    def set_parent_tags(self, tags: dict[str, Any]) -> None:
        if self.parent_run_id and tags:
            from mlflow import MlflowClient
            from mlflow.entities import RunTag

            MlflowClient().log_batch(self.parent_run_id,
                                     tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_parent_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a file or directory (e.g. the report and its plots) onto the parent run."""
        if self.parent_run_id:
            from mlflow import MlflowClient

            client, path = MlflowClient(), Path(path)
            if path.is_dir():
                client.log_artifacts(self.parent_run_id, str(path), artifact_path)
            else:
                client.log_artifact(self.parent_run_id, str(path), artifact_path)

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

    def find_logged_model(self, tag: str, value: str) -> str | None:
        """The newest LoggedModel of this run's experiment with ``tags[tag] == value``."""
        from mlflow import MlflowClient

        experiment = self.experiment_id or MlflowClient().get_run(self.run_id).info.experiment_id
        found = MlflowClient().search_logged_models(
            [experiment], filter_string=f"tags.{tag} = '{_quote(value)}'", max_results=1,
            order_by=[{"field_name": "creation_time", "ascending": False}])
        return found[0].model_id if found else None

    def registry(self, name: str) -> ModelRegistry:
        return ModelRegistry(name)


class NullTracker(Tracker):
    """Used when tracking is off: every call is a no-op."""

    enabled = False

    def __init__(self) -> None:
        super().__init__("")

    def log_metrics(self, *a: Any, **k: Any) -> None: ...
    def log_metrics_json(self, *a: Any, **k: Any) -> None: ...
    def log_artifact(self, *a: Any, **k: Any) -> None: ...
    def log_dict(self, *a: Any, **k: Any) -> None: ...
    def set_tags(self, *a: Any, **k: Any) -> None: ...
    def log_parent_metrics(self, *a: Any, **k: Any) -> None: ...
    def set_parent_tags(self, *a: Any, **k: Any) -> None: ...
    def log_parent_artifact(self, *a: Any, **k: Any) -> None: ...
    def log_datasets(self, *a: Any, **k: Any) -> None: ...

    def log_model(self, *a: Any, **k: Any) -> str:
        return ""

    def find_logged_model(self, *a: Any, **k: Any) -> str | None:
        return None

    def registry(self, name: str) -> ModelRegistry:
        raise RuntimeError("tracking is off (REDROBE_TRACKING=off): no model registry")


class ModelRegistry:
    """One registered model of the MLflow registry: versions made from LoggedModels, aliases.

    A version's source is ``models:/<logged model id>``; registering the same LoggedModel,
    or another one with the same ``weights_digest`` (a deterministic rerun of pretraining),
    returns the existing version instead of adding a duplicate.
    """

    def __init__(self, name: str) -> None:
        from mlflow import MlflowClient

        self.name = name
        self.client = MlflowClient()

    def exists(self) -> bool:
        return bool(self.client.search_registered_models(f"name = '{_quote(self.name)}'"))

    def aliases(self) -> dict[str, str]:
        """alias -> version (empty when the registered model does not exist yet)."""
        if not self.exists():
            return {}
        return {a: str(v) for a, v in self.client.get_registered_model(self.name).aliases.items()}

    def version_of(self, model_id: str, weights_digest: str | None = None) -> str | None:
        """The version registered from LoggedModel ``model_id`` or from identical weights."""
        for v in self.client.search_model_versions(f"name = '{_quote(self.name)}'"):
            if v.source == f"models:/{model_id}" or (
                    weights_digest and v.tags.get(WEIGHTS_TAG) == weights_digest):
                return str(v.version)
        return None

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(self.name, version).tags)

    def register(self, model_id: str, tags: Mapping[str, Any]) -> str:
        """Register LoggedModel ``model_id`` (once) and set ``tags`` on its version."""
        if not self.exists():
            self.client.create_registered_model(self.name)
        version = self.version_of(model_id, tags.get(WEIGHTS_TAG))
        if version is None:
            run_id = self.client.get_logged_model(model_id).source_run_id
            version = str(self.client.create_model_version(
                self.name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id).version)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, str(value))
        return version

    def set_aliases(self, version: str, aliases: Sequence[str]) -> None:
        """Point each alias at ``version`` (an alias names one version, so it moves here)."""
        for alias in aliases:
            self.client.set_registered_model_alias(self.name, alias, version)


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {metric_name(k): float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def metric_name(key: str) -> str:
    """``key`` as MLflow accepts it (alphanumerics and ``_ - . : / space``): ``pass@1`` is
    logged as ``pass_at_1``, any other character becomes ``_``."""
    return re.sub(r"[^\w\-.:/ ]", "_", key.replace("@", "_at_"))


def _quote(value: str) -> str:
    """Escape a value for a single-quoted MLflow search filter."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], experiment: str,
              pipeline_params: Mapping[str, Any] | None = None) -> Iterator[Tracker]:
    """Open the child run of one stage under the pipeline's parent run.

    ``pipeline_params`` (the whole params file as a nested dict) names the parent run
    and is logged on it when this stage is the one that opens the parent.
    """
    if not enabled():
        yield NullTracker()
        return
    import mlflow

    exp_id = setup(experiment)
    parent = _parent_run_id(exp_id, pipeline_params)
    tags = {KIND_TAG: "stage", "redrobe.stage": stage, COMMIT_TAG: git_commit()}
    with mlflow.start_run(run_name=stage, parent_run_id=parent, tags=tags) as run:
        mlflow.log_params({k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(params).items()})
        yield Tracker(run.info.run_id, parent_run_id=parent, experiment_id=exp_id)
    if parent and not os.environ.get(PARENT_ENV):
        from mlflow import MlflowClient

        MlflowClient().set_terminated(parent, "FINISHED")


@contextlib.contextmanager
def pipeline_run(experiment: str, name: str | None = None, tags: dict[str, Any] | None = None,
                 *, params: Mapping[str, Any] | None = None, launcher: str = "python",
                 repo: str | Path | None = None) -> Iterator[str]:
    """Open a parent run (used by the Prefect flow); yields its run id.

    ``params``: the whole params file as a nested dict; it is logged flattened and its
    digest names the run. ``name`` overrides the generated name; ``repo`` is the git
    work tree to describe (default: cwd).
    """
    if not enabled():
        yield ""
        return
    import mlflow

    setup(experiment)
    generated, base_tags = describe_pipeline(params, launcher, repo)
    all_tags = {k: str(v) for k, v in {**base_tags, **(tags or {})}.items()}
    with mlflow.start_run(run_name=name or generated, tags=all_tags) as run:
        if params is not None:
            _log_params(run.info.run_id, params)
        yield run.info.run_id


def _parent_run_id(exp_id: str, pipeline_params: Mapping[str, Any] | None = None) -> str | None:
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
    name, tags = describe_pipeline(pipeline_params, "dvc")
    run_id = client.create_run(exp_id, run_name=name, tags={**tags, INVOCATION_TAG: key}).info.run_id
    if pipeline_params is not None:
        _log_params(run_id, pipeline_params)
    return run_id


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
                b"dvc" in cmdline[1:3] and \
                Path(cmdline[0].decode(errors="replace")).name.startswith("python"):
            return f"{pid}-{stat[19]}"  # field 22 of /proc/pid/stat: start time
        pid = int(stat[1])  # field 4: ppid
    return None

