"""A real Ray cluster for tests: a head and worker nodes as separate `ray start` processes.

Each node is what a user runs on a machine of a cluster (``ray start --head`` on one,
``ray start --address head:port`` on the others), here all on 127.0.0.1, each with its
own CPUs and object store:

    with RayCluster(tmp_path / "ray") as cluster:
        cluster.add_node("worker", env={"MARKER": "..."})   # extra environment for its tasks
        ... run stages with shared.ray_address = cluster.address ...
        cluster.nodes["worker"].kill()                      # SIGKILL the node's processes

Every node is started with ``--block`` in a session of its own, so the processes it
starts (GCS, raylet, agents, the workers that run tasks) share its session id; stopping
or killing a node SIGKILLs exactly the processes of that session. ``ray stop`` is never
used: it stops every Ray on the machine, other tests' included.

Nodes and drivers authenticate with a token of the cluster's own (``RAY_AUTH_MODE=token``,
``RAY_AUTH_TOKEN``; :meth:`RayCluster.env` is the environment a driver needs): the head's
ports listen on every interface, so the test cluster does not run unauthenticated, and
it needs no ~/.ray/auth_token. Ray reads these variables when it is first imported, so a
driver is a process started with them (as ``redrobe <stage>`` is), not the test process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ports import free_port

RAY = Path(sys.executable).with_name("ray")
OBJECT_STORE_BYTES = 80 * 1024 * 1024  # about Ray's minimum: the tasks pass paths, not data
# A killed node is declared dead after 3 missed health checks 0.5 s apart instead of
# Ray's defaults (about 10 s here), so its tasks are retried elsewhere soon.
SYSTEM_CONFIG = '{"health_check_period_ms": 500, "health_check_failure_threshold": 3}'
READY = b"--block"  # `ray start --block` logs this once the node is up
START_TIMEOUT_S = 90


def _state(pid: int) -> str:
    """A process's state letter (R, S, Z, ...) from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


@dataclass
class Node:
    """One `ray start --block` process, leader of the session holding the node's processes."""

    name: str
    process: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        """Every live process of this node (its session), the `ray start` process included.

        Zombies are left out: a killed process whose parent died too waits for init to
        reap it, and it holds no resources.
        """
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.getsid(int(entry)) == self.process.pid \
                        and _state(int(entry)) != "Z":
                    found.append(int(entry))
            except (ProcessLookupError, PermissionError, FileNotFoundError):
                continue  # gone meanwhile, or not ours
        return found

    def kill(self) -> None:
        """SIGKILL every process of the node at once, as a machine that dies."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"ray node {self.name} did not start:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)


@dataclass
class RayCluster:
    """A head node and worker nodes on 127.0.0.1, one CPU each unless asked."""

    root: Path  # the nodes' logs
    port: int = field(default_factory=free_port)
    nodes: dict[str, Node] = field(default_factory=dict)
    # Ray's sessions and sockets: a short path of its own (a socket path has at most
    # 107 bytes, too few under pytest's temporary folders)
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ray-")))
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a node or driver of this cluster: its token, no usage stats."""
        return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                "RAY_USAGE_STATS_ENABLED": "0", **(extra or {})}

    def start_head(self, num_cpus: int = 1) -> Node:
        return self._start("head", ["--head", "--port", str(self.port),
                                    "--temp-dir", str(self.temp_dir),
                                    "--include-dashboard", "false",
                                    "--system-config", SYSTEM_CONFIG], num_cpus, None)

    def add_node(self, name: str, num_cpus: int = 1, env: dict[str, str] | None = None) -> Node:
        return self._start(name, ["--address", self.address], num_cpus, env)

    def _start(self, name: str, args: list[str], num_cpus: int,
               env: dict[str, str] | None) -> Node:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        command = [str(RAY), "start", "--block", *args, "--node-ip-address", "127.0.0.1",
                   "--num-cpus", str(num_cpus), "--object-store-memory", str(OBJECT_STORE_BYTES),
                   "--disable-usage-stats", "--include-log-monitor", "false"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       env=self.env(env), start_new_session=True)
        node = self.nodes[name] = Node(name, process, log)
        node.wait_ready()
        return node

    def stop(self) -> None:
        """Kill the workers first, then the head (whose GCS the workers report to)."""
        for name in sorted(self.nodes, key=lambda n: n == "head"):
            self.nodes.pop(name).kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        try:
            self.start_head()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
