"""Prefect task that runs one DVC stage: `dvc repro --single-item <stage>`.

DVC decides whether the stage is stale; the task only runs it, streams its output
into the Prefect log and returns small values (stage name, whether it ran, its
metrics file). Prefect caching is off (DVC owns that), and only a transient failure
(another process holding DVC's repo lock) is retried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

LOCK_MESSAGE = "Unable to acquire lock"


class StageFailed(RuntimeError):
    """A stage exited non-zero; the message carries its last output lines."""


class RepoLocked(StageFailed):
    """Another DVC process holds the repo lock (transient: retried)."""


def stage_order(repo: Path) -> list[str]:
    """Stage names in dvc.yaml order (the file lists them topologically)."""
    return list(yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def metrics_path(repo: Path, stage: str) -> Path | None:
    """The metrics file a stage declares in dvc.yaml (its first metrics entry)."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    for entry in spec.get("metrics", []):
        return repo / (entry if isinstance(entry, str) else next(iter(entry)))
    return None


def _retry_if_locked(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except RepoLocked:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


def _dvc() -> list[str]:
    """The dvc of this interpreter's environment (the venv's), not whatever is on PATH."""
    return [sys.executable, "-m", "dvc"]


@task(name="dvc-stage", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=10,
      retry_condition_fn=_retry_if_locked, task_run_name="{stage}")
def run_stage(stage: str, repo: str, parent_run_id: str = "") -> dict[str, Any]:
    """Run one stage through DVC; raise StageFailed with its output when it fails."""
    logger = get_run_logger()
    env = {**os.environ, "REDROBE_PARENT_RUN_ID": parent_run_id}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # `redrobe` from the same venv
    proc = subprocess.Popen([*_dvc(), "repro", "--single-item", stage], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        logger.info("%s | %s", stage, line.rstrip())
    code = proc.wait()
    tail = "\n".join(lines[-30:])
    if code != 0:
        error = RepoLocked if LOCK_MESSAGE in tail else StageFailed
        raise error(f"stage {stage!r} failed (exit {code}):\n{tail}")
    ran = not any("didn't change, skipping" in line for line in lines)
    path = metrics_path(Path(repo), stage)
    metrics = json.loads(path.read_text()) if path and path.exists() else {}
    return {"stage": stage, "ran": ran, "metrics_file": str(path) if path else "",
            "wall_seconds": metrics.get("wall_seconds")}
