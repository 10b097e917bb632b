"""The adapt flow on another base model, and a skipped run from the shell, against the
session's real Prefect server (conftest.py).

The repository is built from the stage tests' tiny inputs (tests/stages/llm_fixtures.py)
in the layout dvc.yaml names (deduplicated shards, tokenizer, bucket arrays), plus a
second base model trained by the pretrain stage under ``runs/other/base``. The flow
runs as ``python -m flows.adapt`` (its command line), so its MLflow and Prefect
settings stay out of the test process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prefect_helpers import BIN, api_client, artifacts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import llm_fixtures as fx  # noqa: E402

from flows.common import EXIT_SKIPPED, LOCK_FILE, SKIPPED, RunLock  # noqa: E402
from redrobe.stages import pretrain  # noqa: E402

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
BASE = "runs/other/base"
OUTPUT = Path("data/adapt/runs-other-base")  # the default: data/adapt/<base as a slug>


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adapt") / "repo"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    paths = {"root": root, "params": fx.write_params(root / "params.yaml"),
             "dedup": fx.write_shards(root / "data/interim/dedup"),
             "tokenizer": root / "data/models/tokenizer"}
    tokenizer = fx.write_tokenizer(paths["tokenizer"])
    paths["buckets"] = fx.write_buckets(root / "data/processed/buckets", tokenizer)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        assert pretrain.main(fx.pretrain_argv(paths, root / BASE, root.parent / "metrics")) == 0
    return root


def _flow(root: Path, url: str, module: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "REDROBE_"))}
    env |= {"PATH": f"{BIN}{os.pathsep}{env['PATH']}", "HF_HUB_OFFLINE": "1",
            "PREFECT_API_URL": url, "PREFECT_HOME": str(root.parent / "prefect-home")}
    return subprocess.run([sys.executable, "-m", module, "--repo", str(root), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=400)


def test_adapt_another_base_runs_lora_and_evaluate_outside_dvc(repo, prefect_server):
    proc = _flow(repo, prefect_server["url"], "flows.adapt", "--base", BASE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "redrobe-adapt finished." in proc.stdout

    evaluation = json.loads((repo / OUTPUT / "eval.json").read_text())
    assert set(evaluation["models"]) == {"base", "lora"}
    assert set(evaluation["models"]["base"]["slices"]) == set(fx.SLICES)
    assert (repo / OUTPUT / "lora" / "merged" / "model.safetensors").exists()
    assert json.loads((repo / OUTPUT / "lora.json").read_text())["stage"] == "lora"
    assert not (repo / "data/models/lora").exists() and not (repo / "dvc.lock").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("redrobe").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("redrobe.flow") == "redrobe-adapt"]
    assert parent.data.tags["redrobe.base_model"] == str(repo / BASE)
    assert sorted(r.info.run_name for r in runs
                  if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id) == ["evaluate", "lora"]

    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with api_client(prefect_server["url"]) as api:
        (flow_run,) = api.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["redrobe-adapt"])))
    found = artifacts(prefect_server["url"], flow_run.id)
    assert "redrobe-adapt-funnel" not in found  # no data stage metrics in this repository
    assert {(r["slice"], r["model"]) for r in found["redrobe-adapt-eval"]} == {
        (s, m) for s in fx.SLICES for m in ("base", "lora")}
    assert parent.info.run_id in found["redrobe-adapt-summary"]


def test_a_skipped_run_from_the_shell_prints_the_holder_and_exits_75(repo, prefect_server):
    with RunLock(repo / LOCK_FILE, {"pid": os.getpid(), "flow_run_name": "pytest-holder"}):
        proc = _flow(repo, prefect_server["url"], "flows.refresh")
    assert proc.returncode == EXIT_SKIPPED, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{SKIPPED}: another run holds the lock {repo / LOCK_FILE}" in proc.stderr
    assert "pytest-holder" in proc.stderr and "Traceback" not in proc.stderr
