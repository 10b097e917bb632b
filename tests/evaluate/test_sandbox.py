"""The sandbox against hostile programs: each is contained and reported as not passed.

Hostile side effects only ever target files under pytest's tmp_path. The namespace
tests are skipped (with the reason) where unprivileged user namespaces do not work.
"""

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from redrobe.evaluate.sandbox import FAILED, NAMESPACES, PASSED, RLIMITS, TIMEOUT, Sandbox, SandboxLimits

LIMITS = SandboxLimits(timeout_s=3, cpu_s=2, memory_mb=512, max_processes=16)
CORRECT = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n"


@pytest.fixture(scope="module")
def isolated():
    sandbox = Sandbox(LIMITS, unshare=shutil.which("unshare"))
    if sandbox.isolation != NAMESPACES:
        pytest.skip("unprivileged user namespaces are not available here")
    return sandbox


@pytest.fixture(scope="module")
def plain():
    return Sandbox(LIMITS, unshare=None)


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("keep me")
    return path


def leftover(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (after a moment to die)."""
    for _ in range(30):
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
        if not found:
            return []
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("which", ["isolated", "plain"])
def test_a_correct_program_passes_and_a_wrong_one_fails(which, request):
    sandbox = request.getfixturevalue(which)
    result = sandbox.run(CORRECT)
    assert result.status == PASSED and result.passed and result.stdout.strip() == "ok"
    wrong = sandbox.run(CORRECT.replace("a + b", "a - b"))
    assert wrong.status == FAILED and "AssertionError" in wrong.detail


@pytest.mark.parametrize("which", ["isolated", "plain"])
def test_infinite_loop_times_out(which, request):
    result = request.getfixturevalue(which).run("while True:\n    pass\n")
    assert result.status in (TIMEOUT, FAILED) and not result.passed  # wall clock or RLIMIT_CPU


@pytest.mark.parametrize("which", ["isolated", "plain"])
def test_memory_bomb_fails_within_the_limit(which, request):
    result = request.getfixturevalue(which).run("x = bytearray(2 * 1024 ** 3)\n")
    assert result.status == FAILED and "MemoryError" in result.detail


@pytest.mark.parametrize("which", ["isolated", "plain"])
def test_environment_secrets_are_not_inherited(which, request, monkeypatch):
    monkeypatch.setenv("REDROBE_TEST_SECRET", "s3cret")
    result = request.getfixturevalue(which).run(
        "import os\nprint(sorted(os.environ))\nassert os.environ['REDROBE_TEST_SECRET']\n")
    assert result.status == FAILED and "KeyError" in result.detail
    assert "REDROBE_TEST_SECRET" not in result.stdout and "s3cret" not in result.stdout


@pytest.mark.parametrize("which", ["isolated", "plain"])
def test_exiting_early_with_status_zero_is_not_a_pass(which, request):
    result = request.getfixturevalue(which).run("import os\nos._exit(0)\nassert False\n")
    assert result.status == FAILED and result.returncode == 0


def test_no_other_process_environment_is_visible(isolated, monkeypatch):
    monkeypatch.setenv("REDROBE_TEST_SECRET", "s3cret")
    result = isolated.run(
        "import os\nfound = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n        continue\n"
        "    found += [pid] if b's3cret' in data else []\n"
        "assert found, 'no secret found'\n")
    assert result.status == FAILED and "no secret found" in result.detail


def test_writing_outside_the_temp_dir_fails(isolated, victim):
    result = isolated.run(f"open({str(victim.parent / 'new.txt')!r}, 'w').write('x')\n")
    assert result.status == FAILED and "Read-only file system" in result.detail
    assert not (victim.parent / "new.txt").exists()


def test_deleting_files_fails(isolated, victim):
    result = isolated.run(f"import os, shutil\nos.remove({str(victim)!r})\n")
    assert result.status == FAILED and "Read-only file system" in result.detail
    result = isolated.run(f"import shutil\nshutil.rmtree({str(victim.parent)!r})\n")
    assert result.status == FAILED
    assert victim.read_text() == "keep me"


def test_os_system_cannot_touch_the_host(isolated, victim):
    result = isolated.run(f"import os\nassert os.system('rm -f {victim}') == 0\n")
    assert result.status == FAILED and victim.read_text() == "keep me"


def test_remounting_writable_is_refused(isolated, victim):
    result = isolated.run(
        "import subprocess\n"
        "subprocess.run(['mount', '-o', 'remount,bind,rw', '/'], check=True)\n"
        f"open({str(victim)!r}, 'w').write('owned')\n")
    assert result.status == FAILED and victim.read_text() == "keep me"


def test_the_temp_dir_is_writable_and_private(isolated):
    result = isolated.run("import os\nopen('scratch.txt', 'w').write('x')\n"
                          "print(sorted(os.listdir('.')))\n")
    assert result.status == PASSED and "scratch.txt" in result.stdout
    assert "nonce" not in result.stdout  # the verdict's nonce is gone before the program runs


def test_network_is_unreachable(isolated):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        result = isolated.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), "
                              "timeout=2)\n")
    assert result.status == FAILED and ("Network is unreachable" in result.detail
                                        or "refused" in result.detail)


def test_fork_bomb_is_killed_to_the_last_process(isolated):
    # bounded (32 processes), so the test cannot hurt the machine; every process
    # becomes `sleep <marker>` so the survivors can be looked for by command line
    marker = "617.4242"
    result = isolated.run("import os\nfor _ in range(5):\n    os.fork()\n"
                          f"os.execv('/bin/sleep', ['sleep', '{marker}'])\n")
    assert result.status in (TIMEOUT, FAILED)
    assert leftover(marker) == []


def test_a_detached_child_dies_with_the_program(isolated):
    marker = "618.4242"
    isolated.run("import os\nif os.fork() == 0:\n    os.setsid()\n"
                 f"    os.execv('/bin/sleep', ['sleep', '{marker}'])\n")
    assert leftover(marker) == []


def test_isolation_is_reported():
    assert Sandbox(LIMITS, unshare=None).isolation == RLIMITS
    assert Sandbox(LIMITS, unshare="/nonexistent/unshare").isolation == RLIMITS
