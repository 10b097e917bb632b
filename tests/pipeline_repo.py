"""Copies of this checkout as git repositories, for the end-to-end tests.

``git_repo`` makes a committed copy (optionally with a params profile merged in).
``built_pipeline`` runs ``dvc repro`` on the tiny profile once per test session; with
pytest-xdist the workers share that one build through a file lock. Tests read the build
in place only where they change nothing; a test that changes files works in ``clone``,
a copy whose MLflow store is moved to the copy's own paths (MLflow records absolute
artifact locations, so a plain copy would still write into the original).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock

from redrobe.config import merge_profile

REPO = Path(__file__).resolve().parents[1]
STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
TINY = yaml.safe_load((REPO / "profiles" / "tiny.yaml").read_text())


def repo_env(root: Path) -> dict[str, str]:
    """The environment of a command run in the copy ``root``: no outer MLflow/Prefect/redrobe
    settings, this interpreter's bin first, hubs offline, Prefect's home inside the copy."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "REDROBE_"))}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out['PATH']}"
    out["HF_HUB_OFFLINE"] = "1"
    out["PREFECT_HOME"] = str(root / ".prefect-home")
    return out


def sh(cmd: list[str], root: Path, extra_env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` in ``root``; fail the test with its output if it fails; stdout + stderr."""
    proc = subprocess.run(cmd, cwd=root, env=repo_env(root) | (extra_env or {}),
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def dvc(root: Path, *args: str, extra_env: dict[str, str] | None = None) -> str:
    return sh([sys.executable, "-m", "dvc", *args], root, extra_env)


def git(root: Path, *args: str) -> str:
    return sh(["git", "-c", "user.name=redrobe-test", "-c", "user.email=test@redrobe.invalid",
               *args], root)


def copy_checkout(dest: Path) -> None:
    """This checkout's tracked and unignored files; the sample download cache is shared
    (a symlink to this checkout's .cache/dists), so only the first copy fetches."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    cache = REPO / ".cache" / "dists"
    cache.mkdir(parents=True, exist_ok=True)
    (dest / ".cache").mkdir()
    (dest / ".cache" / "dists").symlink_to(cache)


def set_params(root: Path, overrides: dict) -> None:
    path = root / "params.yaml"
    merged = merge_profile(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))


def git_repo(root: Path, profile: str | None = None) -> Path:
    """A git repository at ``root`` (created) holding a copy of this checkout, with
    ``profiles/<profile>.yaml`` merged into its params.yaml, all committed."""
    root.mkdir(parents=True)
    copy_checkout(root)
    if profile is not None:
        set_params(root, yaml.safe_load((REPO / "profiles" / f"{profile}.yaml").read_text()))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@dataclass(frozen=True)
class Built:
    """The session's tiny pipeline: the repository and the output of its `dvc repro`."""

    root: Path
    log: str


def built_pipeline(base: Path) -> Built:
    """``dvc repro`` of the tiny profile in ``base/tiny-pipeline``, made once: whoever comes
    first builds under the lock, the others (other xdist workers) wait and reuse it."""
    root = base / "tiny-pipeline" / "repo"
    done = root.parent / "built.json"
    with FileLock(str(base / "tiny-pipeline.lock")):
        if not done.exists():
            if root.parent.exists():           # a build that failed earlier in this session
                shutil.rmtree(root.parent)
            git_repo(root, profile="tiny")
            log = dvc(root, "repro")
            done.write_text(json.dumps({"log": log}))
    return Built(root, json.loads(done.read_text())["log"])


def clone(src: Path, dest: Path) -> Path:
    """A copy of the built repository ``src`` at ``dest`` that owns its MLflow store."""
    shutil.copytree(src, dest, symlinks=True)
    relocate_mlflow(dest / "mlflow.db", src, dest)
    return dest


def relocate_mlflow(db: Path, old: Path, new: Path) -> None:
    """Point every absolute path under ``old`` in the MLflow store ``db`` at ``new``
    (artifact locations of experiments, runs, logged models, model versions, datasets)."""
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for _, column, kind, *_ in conn.execute(f"PRAGMA table_info('{table}')"):
                if "CHAR" in kind.upper() or "TEXT" in kind.upper():
                    conn.execute(f'UPDATE "{table}" SET "{column}" = '
                                 f'replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0',
                                 (f"{old}/", f"{new}/", f"{old}/"))
