"""tests/evaluate/test_sandbox.py again, as an unprivileged uid.

The suite usually runs as root, where the sandbox drops to uid 65534 with setpriv before
bubblewrap. A normal user takes the other path: bwrap directly, with RLIMIT_NPROC
counted among that user's processes in the jail's own user namespace. This test runs
the whole sandbox test file as uid 65534 (no groups, no capabilities), with a HOME and
temp dir of its own; where the Python installation or this checkout sits under a
directory that uid cannot search (/root here, a private temp dir for a fresh CI clone),
the run sees them through the same privileged bwrap the sandbox uses for that
(:func:`redrobe.evaluate.sandbox.reachable`).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from redrobe.evaluate.sandbox import SANDBOX_UID, Sandbox, reachable, remove_tree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _unreadable_reason() -> str:
    """Why uid 65534 could not run the tests from this checkout ("" when it can): the
    folders above it are made reachable, the checkout itself must be readable."""
    for path in (REPO, HERE, Path(sys.executable).parent):
        if os.stat(path).st_mode & 0o005 != 0o005:
            return f"{path} is not readable and searchable by other users"
    return ""


@pytest.mark.slow
def test_the_sandbox_tests_pass_as_an_unprivileged_user():
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: test_sandbox.py runs as this user")
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    if not bwrap or not setpriv:
        pytest.skip("needs bubblewrap and util-linux setpriv")
    if reason := _unreadable_reason():
        pytest.skip(reason)
    home = tempfile.mkdtemp(prefix="redrobe-sandbox-user-")
    os.chown(home, SANDBOX_UID, SANDBOX_UID)
    env = {"PATH": os.environ["PATH"], "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    command = [*reachable(bwrap, [*Sandbox().python_dirs(), str(REPO)], SANDBOX_UID), setpriv,
               f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
               "--inh-caps=-all", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
               "-p", "no:cacheprovider", "--basetemp", f"{home}/pytest",
               str(HERE / "test_sandbox.py")]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    finally:
        remove_tree(home)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary
