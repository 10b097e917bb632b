"""A real S3-compatible server on 127.0.0.1 for the tests: moto's server, as its own process.

    with S3Server.started(tmp_dir) as server:      # or the fixture ``s3`` (import s3_fixture,
                                                  #  s3_server_fixture into the test module)
        server.env                                # AWS_* variables that point clients at it
        server.storage_options                    # the same, for fsspec/s3fs calls
        server.make_bucket("inputs")

MinIO's server is not installable from PyPI or Debian here, so the server is moto's
(``moto_server``, from the ``moto[server]`` dev dependency): a separate process that
speaks S3 over HTTP, reached by s3fs, boto and DVC's S3 remote like any endpoint.
The credentials are fixed test values; moto accepts any.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from ports import free_port

KEY_ID, SECRET = "redrobe-test-key", "redrobe-test-secret"
REGION = "us-east-1"
_START_SECONDS = 60


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint and the settings clients need to reach it."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """What botocore/s3fs/DVC read: credentials, region and the endpoint."""
        return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    @property
    def storage_options(self) -> dict[str, object]:
        return {"key": KEY_ID, "secret": SECRET,
                "client_kwargs": {"endpoint_url": self.endpoint}}

    def filesystem(self):  # -> s3fs.S3FileSystem (untyped library)
        import s3fs
        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)

    def make_bucket(self, name: str) -> str:
        self.filesystem().mkdir(name)
        return name

    @classmethod
    @contextlib.contextmanager
    def started(cls, log_dir: Path) -> Iterator[S3Server]:
        """Start ``moto_server`` on a free port, wait until it answers, stop it at exit."""
        port = free_port()
        server = Path(sys.executable).with_name("moto_server")
        log = (log_dir / "moto_server.log").open("wb")
        proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            _wait_until_up(endpoint, proc, log_dir / "moto_server.log")
            yield cls(endpoint)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _wait_until_up(endpoint: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(endpoint, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer on {endpoint} in {_START_SECONDS} s")


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One server for the test session (per xdist worker)."""
    with S3Server.started(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(name="s3")
def s3_fixture(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, with its credentials and endpoint in the environment for one test:
    s3:// URLs (fsspec) and DVC read them from there, as a user's run would."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server
