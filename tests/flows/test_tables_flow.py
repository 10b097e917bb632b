"""The paper-table flow against the session's real Prefect server: `python -m
flows.tables rule-removal --scale tiny` in a directory that is not a DVC repository
(so every step runs in the flow's process), publishing the table as a Markdown artifact
and every variant and the table as MLflow runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prefect_helpers import BIN, api_client, artifacts

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
TABLE = "rule-removal"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tables-flow")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "profiles", root / "profiles")
    cache = REPO / ".cache" / "dists"
    cache.mkdir(parents=True, exist_ok=True)
    (root / ".cache").mkdir()
    (root / ".cache" / "dists").symlink_to(cache)
    return root


def test_the_flow_publishes_the_table_and_logs_the_runs(workdir, prefect_server):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "REDROBE_"))}
    env |= {"PATH": f"{BIN}{os.pathsep}{env['PATH']}", "HF_HUB_OFFLINE": "1",
            "PREFECT_API_URL": prefect_server["url"],
            "PREFECT_HOME": str(workdir.parent / "prefect-home")}
    proc = subprocess.run([sys.executable, "-m", "flows.tables", TABLE, "--scale", "tiny",
                           "--repo", str(workdir)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    markdown = (workdir / f"data/tables/tiny/{TABLE}.md").read_text()

    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with api_client(prefect_server["url"]) as api:
        (flow_run,) = api.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["redrobe-reproduce"])))
    assert flow_run.state.is_completed()
    assert artifacts(prefect_server["url"], flow_run.id) == {f"table-{TABLE}-tiny": markdown}

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("redrobe").experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(["ingest", f"reproduce:{TABLE}"]
                           + [f"reproduce:{TABLE}:{v}" for v in ("gopher", "c4", "fineweb")])
    (table_run,) = [r for r in runs if r.info.run_name == f"reproduce:{TABLE}"]
    assert table_run.data.tags["redrobe.table"] == TABLE
    assert {t for t in table_run.data.tags if t.startswith("claim.")} == {"claim.0", "claim.1"}
    logged = {f.path for f in client.list_artifacts(table_run.info.run_id, "table")}
    assert logged == {f"table/{TABLE}.{s}" for s in ("md", "csv", "json")}
