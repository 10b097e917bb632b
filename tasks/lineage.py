"""Prefect task that records DVC's view of the run (dvc.lock hashes) on the MLflow parent run.

dvc.lock holds, per stage, the md5 of every dependency and output and the params it
used; attaching it to the pipeline's parent run ties the MLflow lineage (dataset
inputs, child runs, logged model) to DVC's content hashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE


def lock_summary(repo: Path) -> dict[str, Any]:
    """Per stage: the md5 of each output (directories carry a .dir suffix)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    return {stage: {o["path"]: o.get("md5", "") for o in spec.get("outs", [])}
            for stage, spec in lock.get("stages", {}).items()}


@task(name="record-lineage", cache_policy=NO_CACHE)
def record_lineage(repo: str, parent_run_id: str) -> dict[str, Any]:
    """Log dvc.lock and the per-stage output hashes to the parent MLflow run (if any)."""
    if not (Path(repo) / "dvc.lock").exists():  # no stage has run through DVC yet
        return {}
    summary = lock_summary(Path(repo))
    if parent_run_id:
        from mlflow import MlflowClient

        client = MlflowClient()
        client.log_dict(parent_run_id, summary, "lineage/dvc_outs.json")
        client.log_artifact(parent_run_id, str(Path(repo) / "dvc.lock"), "lineage")
    return summary
