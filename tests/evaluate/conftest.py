"""Fixtures shared by the sandbox and HumanEval tests."""

import os

import pytest


@pytest.fixture
def failing_bwrap(tmp_path, monkeypatch):
    """A `bwrap` first on PATH that fails the way it does where user namespaces are
    blocked (e.g. Docker's default seccomp profile)."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    return fake
