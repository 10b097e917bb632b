"""The prefect.yaml deployments against a real Prefect server, worker and process pool.

On the session's Prefect server (conftest.py), a module fixture makes a git
repository from a copy of the working tree with the tiny profile, creates the
``redrobe-process`` work pool, starts a worker in the copy and deploys every
deployment with ``prefect --no-prompt deploy --all``. Then the nightly refresh is
triggered twice with ``prefect deployment run``: first while the test holds the run
lock (the run must end in the state Skipped with a "skipped: ..." message naming the
holder, and log no traceback), then freely (it must complete, with an MLflow parent
run holding the ingest..quality child runs, and the summary artifacts). The worker,
and every process it started, is stopped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from uuid import UUID

import pytest
from pipeline_repo import git_repo, repo_env
from prefect_helpers import BIN, api_client, artifacts, start, stop, tail

from flows.common import LOCK_FILE, SKIPPED, SKIPPED_STATE, RunLock

pytestmark = pytest.mark.e2e
POOL = "redrobe-process"
REFRESH = "redrobe-refresh/nightly-refresh"
REFRESH_STAGES = ["ingest", "clean", "dedup", "quality"]
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def deployed(prefect_server, tmp_path_factory):
    """A repo copy whose deployments are registered, with a worker polling the pool."""
    tmp = tmp_path_factory.mktemp("deployments")
    root = git_repo(tmp / "repo", profile="tiny")

    env = repo_env(root) | {"PREFECT_API_URL": prefect_server["url"],
                        "PREFECT_HOME": str(tmp / "client-home"),
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "PREFECT_WORKER_QUERY_SECONDS": "2"}
    _prefect(root, env, "work-pool", "create", POOL, "--type", "process")
    log = tmp / "worker.log"
    worker = start([str(BIN / "prefect"), "worker", "start", "--pool", POOL,
                    "--name", "pytest-worker"], root, env, log)
    try:
        _prefect(root, env, "--no-prompt", "deploy", "--all")
        yield {"root": root, "env": env, "url": prefect_server["url"], "worker_log": log}
    finally:
        stop(worker)


def _prefect(root: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([str(BIN / "prefect"), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"prefect {args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def _run_deployment(deployed: dict, name: str, timeout: float = 300):
    """Trigger a deployment with the CLI; wait (bounded) for a final state; return the run."""
    out = _prefect(deployed["root"], deployed["env"], "deployment", "run", name)
    run_id = UUID(UUID_RE.findall(out)[-1])
    deadline = time.monotonic() + timeout
    with api_client(deployed["url"]) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(2)
    raise AssertionError(f"flow run {run_id} of {name} not finished after {timeout}s; "
                         f"worker log:\n{tail(deployed['worker_log'])}")


def test_schedules_are_registered_on_the_process_pool(deployed):
    with api_client(deployed["url"]) as client:
        deployments = {name: client.read_deployment_by_name(name) for name in
                       (REFRESH, "redrobe-pipeline/weekly-full-run", "redrobe-adapt/adapt",
                        "redrobe-reproduce/reproduce")}
    crons = {name: [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules]
             for name, d in deployments.items()}
    assert crons == {REFRESH: [("0 2 * * *", "UTC", True)],
                     "redrobe-pipeline/weekly-full-run": [("0 4 * * 0", "UTC", True)],
                     "redrobe-adapt/adapt": [], "redrobe-reproduce/reproduce": []}
    for d in deployments.values():
        assert d.work_pool_name == POOL
        (step,) = d.pull_steps  # nothing pulled: the runs use this checkout
        assert step["prefect.deployments.steps.set_working_directory"] == {
            "directory": str(deployed["root"].resolve())}
    assert deployments["redrobe-adapt/adapt"].parameters["base"] == "data/models/base"
    assert deployments["redrobe-reproduce/reproduce"].parameters["scale"] == "sample"


def test_a_run_while_another_holds_the_lock_is_skipped_with_a_clear_message(deployed):
    holder = {"pid": os.getpid(), "flow": "pytest", "flow_run_name": "pytest-holder"}
    with RunLock(deployed["root"] / LOCK_FILE, holder):
        run = _run_deployment(deployed, REFRESH)
    worker_log = tail(deployed["worker_log"], 100_000)
    assert run.state.is_completed() and run.state.name == SKIPPED_STATE, (run.state, worker_log)
    message = run.state.message
    assert message.startswith(f"{SKIPPED}: another run holds the lock {deployed['root'] / LOCK_FILE}")
    assert f"pid {os.getpid()}" in message and "pytest-holder" in message
    assert "Traceback" not in worker_log
    summary = artifacts(deployed["url"], run.id)["redrobe-refresh-summary"]
    assert "skipped" in summary and "pytest-holder" in summary
    assert not (deployed["root"] / "data" / "raw").exists()  # nothing ran


def test_refresh_deployment_runs_ingest_through_quality(deployed):
    run = _run_deployment(deployed, REFRESH)
    assert run.state.is_completed() and run.state.name == "Completed", (
        run.state, tail(deployed["worker_log"], 8000))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{deployed['root'] / 'mlflow.db'}")
    exp = client.get_experiment_by_name("redrobe")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("redrobe.flow") == "redrobe-refresh"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    parent = parents[0]
    assert parent.data.tags["redrobe.launcher"] == "prefect"
    assert parent.info.status == "FINISHED"
    children = [r.info.run_name for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(children) == sorted(REFRESH_STAGES)
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "lineage")}
    assert "lineage/dvc_outs.json" in logged

    found = artifacts(deployed["url"], run.id)
    assert parent.info.run_id in found["redrobe-refresh-summary"]
    funnel = found["redrobe-refresh-funnel"]
    assert {"books", "wikipedia/en", "c4", "common_crawl", "github"} <= {r["slice"] for r in funnel}
    for row in funnel:
        assert row["read"] >= row["ingest"] >= row["clean"] >= row["dedup"]
        # only a language the routed wikipedia slice does not keep (or `und`: redirects)
        # stops at ingest; every partition that holds documents reaches dedup
        assert row["dedup"] > 0 or (row["ingest"] == 0 and row["slice"].startswith("wikipedia/"))
    assert (deployed["root"] / "data" / "metrics" / "quality.json").exists()
    assert not (deployed["root"] / "data" / "models").exists()  # training is the weekly run's
