"""A real Prefect server for the flow tests: one per session, stopped at the end.

``prefect server start`` on a free port with PREFECT_HOME in tmp; the scheduler
service is off (no cron run can start during the tests), UI and analytics too.
"""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_repo import repo_env
from ports import free_port
from prefect_helpers import BIN, start, stop, wait_healthy


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Any:
    """{"url": the server's API URL, "log": its log file}."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = repo_env(tmp) | {"PREFECT_HOME": str(tmp / "home"),
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_SERVER_UI_ENABLED": "false",
                       "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
    log = tmp / "server.log"
    proc = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                  "--port", str(port)], tmp, env, log)
    try:
        wait_healthy(url, proc, log)
        yield {"url": url, "log": log}
    finally:
        stop(proc)
