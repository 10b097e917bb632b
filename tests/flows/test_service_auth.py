"""The real servers with their credentials, as deploy/ runs them: `redrobe serve mlflow`
(MLflow's basic-auth app, SQLite stores in tmp) and `redrobe serve prefect` (the API auth
string), both on 127.0.0.1 and started side by side. A request without credentials, or
with wrong ones, is refused with 401; the health checks stay open; the MLflow client with
MLFLOW_TRACKING_USERNAME / _PASSWORD logs a run, and the Prefect client with
PREFECT_API_AUTH_STRING writes and reads the API.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import httpx
import pytest
from ports import free_port
from prefect_helpers import start, stop, wait_healthy

pytestmark = pytest.mark.e2e

SERVE = [sys.executable, "-m", "redrobe", "serve"]
MLFLOW_ADMIN = ("admin", secrets.token_urlsafe(24))
PREFECT_AUTH = f"redrobe:{secrets.token_urlsafe(24)}"


def mlflow_setup(root: Path, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    config = root / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'auth.db'}\n"
                      f"admin_username = {MLFLOW_ADMIN[0]}\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = env | {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_ADMIN[1],
                 "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24)}
    return [*SERVE, "mlflow", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"), "--workers", "1"], env


def prefect_setup(root: Path, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    env = env | {"PREFECT_HOME": str(root / "home"), "PREFECT_SERVER_API_AUTH_STRING": PREFECT_AUTH,
                 "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
                 "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    return [*SERVE, "prefect"], env


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Any:
    """{"mlflow": its URL, "prefect": its API URL}: both started at once, stopped at the end."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    urls, procs = {}, []
    try:
        for name, setup, path in (("mlflow", mlflow_setup, ""), ("prefect", prefect_setup, "/api")):
            root = tmp_path_factory.mktemp(name)
            command, env = setup(root, base)
            port = str(free_port())
            urls[name] = f"http://127.0.0.1:{port}{path}"
            log = root / "server.log"
            procs.append((start([*command, "--host", "127.0.0.1", "--port", port], root, env, log), log))
        for (proc, log), url in zip(procs, urls.values()):
            wait_healthy(url, proc, log)
        yield urls
    finally:
        for proc, _ in procs:
            stop(proc)


def status(url: str, auth: str | None = None, body: bytes | None = None) -> int:
    """The HTTP status of a GET (or a JSON POST with ``body``), with basic auth ``user:password``."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except HTTPError as err:
        return err.code


def test_mlflow_refuses_requests_without_valid_credentials(servers):
    search = f"{servers['mlflow']}/api/2.0/mlflow/experiments/search?max_results=5"
    assert status(search) == 401
    assert status(search, f"{MLFLOW_ADMIN[0]}:not-the-password") == 401
    assert status(search, f"{MLFLOW_ADMIN[0]}:password1234") == 401   # no default admin password
    assert status(search, ":".join(MLFLOW_ADMIN)) == 200
    assert status(f"{servers['mlflow']}/health") == 200                # the health checks need none


def test_mlflow_client_logs_a_run_with_the_env_credentials(servers, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    client = MlflowClient(tracking_uri=servers["mlflow"])
    with pytest.raises(MlflowException, match="401|Unauthorized|credentials"):
        client.search_experiments()
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", MLFLOW_ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", MLFLOW_ADMIN[1])
    experiment = client.create_experiment("service-auth")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "answer", 42.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"answer": 42.0}


def test_prefect_refuses_requests_without_the_auth_string(servers):
    flows = f"{servers['prefect']}/flows/filter"
    assert status(flows, body=b"{}") == 401
    assert status(flows, "redrobe:not-the-password", body=b"{}") == 401
    assert status(flows, PREFECT_AUTH, body=b"{}") == 200
    assert status(f"{servers['prefect']}/health") == 200


def test_prefect_client_uses_the_auth_string(servers):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: servers["prefect"]},
                            restore_defaults={PREFECT_API_AUTH_STRING}), \
            get_client(sync_client=True) as client, pytest.raises(httpx.HTTPStatusError, match="401"):
        client.read_flows()
    with temporary_settings(updates={PREFECT_API_URL: servers["prefect"],
                                     PREFECT_API_AUTH_STRING: PREFECT_AUTH}), \
            get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("service-auth-check")
        assert [flow.id for flow in client.read_flows()] == [flow_id]
