"""Process and API helpers for the flow tests (real Prefect server, worker, flow runs).

``start``/``stop`` run a long-lived command in its own session and stop it together
with every process it started; ``wait_healthy`` waits for a server's /health;
``api_client`` and ``artifacts`` read the server through Prefect's own client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children.get(child, [])
    return out


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started by :func:`start`, and everything it started."""
    below = _descendants(proc.pid)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:  # a worker may take 20 s and more to wind down; its state is thrown away anyway
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid in below:  # flow runs start in their own session: not in the group
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server of {url} exited:\n{tail(log)}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"server of {url} not healthy after {timeout}s:\n{tail(log)}")


class api_client:
    """``with api_client(url) as client``: a sync Prefect client for that server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self._settings = temporary_settings(updates={PREFECT_API_URL: self.url})
        self._settings.__enter__()
        self._client = get_client(sync_client=True)
        return self._client.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(*exc)
        self._settings.__exit__(*exc)


def artifacts(url: str, flow_run_id: Any) -> dict[str, Any]:
    """key -> data of the artifacts a flow run created (tables as parsed JSON)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with api_client(url) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found if a.key}
