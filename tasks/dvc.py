"""Prefect tasks that run dvc.yaml stages: through DVC, or as their bare command line.

    run_stage("clean", repo, parent_run_id)             # dvc repro --single-item clean
    run_stage("ingest", repo, parent_run_id, force=True)  # ... --force (re-read the sources)
    run_stage_cli("lora", repo, parent_run_id, {"--base": "other/base", "--output": "out/lora"})

``run_stage`` lets DVC decide whether the stage is stale. ``run_stage_cli`` runs the
stage's own command from dvc.yaml with some options replaced (e.g. another base model
and outputs outside DVC's outs); DVC neither runs nor records it. Both stream the
command's output into the Prefect log and return small values (stage name, whether it
ran, its metrics file). Prefect caching is off (DVC owns that). Only a transient
failure is retried: another process holding DVC's repo lock. ``run_stage`` retries
that itself and, if the lock is still held, returns ``locked`` (the holder's pid)
instead of raising, so the flow can end with one clear message and no traceback.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import yaml
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

LOCK_MESSAGE = "Unable to acquire lock"
DVC_LOCK_FILE = Path(".dvc/tmp/lock")  # zc.lockfile: DVC writes " <pid>\n" into it
DVC_SKIPPED = "didn't change, skipping"
LOCK_RETRIES, LOCK_RETRY_SECONDS = 3, 10


class StageFailed(RuntimeError):
    """A stage exited non-zero; the message carries its last output lines."""


class RepoLocked(StageFailed):
    """Another DVC process holds the repo lock (transient: run_stage retries it)."""


def _stages(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_order(repo: Path) -> list[str]:
    """Stage names in dvc.yaml order (the file lists them topologically)."""
    return list(_stages(repo))


def metrics_path(repo: Path, stage: str) -> Path | None:
    """The metrics file a stage declares in dvc.yaml (its first metrics entry)."""
    for entry in _stages(repo)[stage].get("metrics", []):
        return repo / (entry if isinstance(entry, str) else next(iter(entry)))
    return None


def stage_outs(repo: Path) -> list[str]:
    """Every output path declared in dvc.yaml (outs, metrics and plots of every stage)."""
    paths = []
    for spec in _stages(repo).values():
        for kind in ("outs", "metrics", "plots"):
            paths += [e if isinstance(e, str) else next(iter(e)) for e in spec.get(kind, [])]
    return sorted(paths)


def stage_command(repo: Path, stage: str) -> list[str]:
    """The stage's command line from dvc.yaml, split into arguments."""
    return shlex.split(_stages(repo)[stage]["cmd"])


def stage_option(repo: Path, stage: str, option: str) -> str:
    """The value dvc.yaml gives ``option`` (e.g. ``--base``) in the stage's command."""
    argv = stage_command(repo, stage)
    if option not in argv[:-1]:
        raise KeyError(f"dvc.yaml: stage {stage!r} has no {option} option in {argv}")
    return argv[argv.index(option) + 1]


def replace_options(argv: list[str], replace: Mapping[str, str]) -> list[str]:
    """``argv`` with the values of the given options replaced; every option must be present."""
    missing = sorted(set(replace) - set(argv[:-1]))
    if missing:
        raise KeyError(f"options {missing} are not in the command {argv}")
    out = list(argv)
    for option, value in replace.items():
        out[out.index(option) + 1] = str(value)
    return out


def dvc_lock_holder(repo: Path) -> str:
    """The pid written into DVC's repo lock file, or "unknown" (it may be gone by now)."""
    try:
        return (repo / DVC_LOCK_FILE).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def _dvc() -> list[str]:
    """The dvc of this interpreter's environment (the venv's), not whatever is on PATH."""
    return [sys.executable, "-m", "dvc"]


def _stream(label: str, argv: list[str], repo: str, parent_run_id: str) -> list[str]:
    """Run ``argv`` in ``repo`` with the parent run id set; log and return its output lines."""
    logger = get_run_logger()
    env = {**os.environ, "REDROBE_PARENT_RUN_ID": parent_run_id}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # `redrobe` from the same venv
    proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        logger.info("%s | %s", label, line.rstrip())
    code = proc.wait()
    if code != 0:
        tail = "\n".join(lines[-30:])
        error = RepoLocked if LOCK_MESSAGE in tail else StageFailed
        raise error(f"stage {label!r} failed (exit {code}):\n{tail}")
    return lines


def _result(stage: str, ran: bool, path: Path | None) -> dict[str, Any]:
    metrics = json.loads(path.read_text()) if path and path.exists() else {}
    return {"stage": stage, "ran": ran, "metrics_file": str(path) if path else "",
            "wall_seconds": metrics.get("wall_seconds")}


@task(name="dvc-stage", cache_policy=NO_CACHE, task_run_name="{stage}")
def run_stage(stage: str, repo: str, parent_run_id: str = "", force: bool = False
              ) -> dict[str, Any]:
    """Run one stage through DVC (``force``: even if up to date); raise StageFailed if it fails.

    While another DVC process holds the repo lock, retry LOCK_RETRIES times,
    LOCK_RETRY_SECONDS apart; then return with ``locked`` set to the holder's pid.
    """
    argv = [*_dvc(), "repro", "--single-item", *(["--force"] if force else []), stage]
    for attempt in range(LOCK_RETRIES + 1):
        try:
            lines = _stream(stage, argv, repo, parent_run_id)
            break
        except RepoLocked:
            holder = dvc_lock_holder(Path(repo))
            if attempt == LOCK_RETRIES:
                return {**_result(stage, False, None), "locked": holder}
            get_run_logger().warning("DVC's repo lock is held by pid %s; retrying %s in %ss",
                                     holder, stage, LOCK_RETRY_SECONDS)
            time.sleep(LOCK_RETRY_SECONDS)
    ran = not any(DVC_SKIPPED in line for line in lines)
    return _result(stage, ran, metrics_path(Path(repo), stage))


@task(name="stage-cli", cache_policy=NO_CACHE, task_run_name="{stage}")
def run_stage_cli(stage: str, repo: str, parent_run_id: str, replace: dict[str, str]
                  ) -> dict[str, Any]:
    """Run the stage's dvc.yaml command with ``replace``d options, outside DVC."""
    argv = replace_options(stage_command(Path(repo), stage), replace)
    _stream(stage, argv, repo, parent_run_id)
    metrics = replace.get("--metrics")
    return _result(stage, True, Path(repo) / metrics if metrics else None)
