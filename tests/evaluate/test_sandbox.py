"""The sandbox against hostile programs: each is contained and reported as not passed.

Every program here is one an attacker ran against the earlier sandbox (output flood,
deep directories, fork bomb, reading secrets, network, killing a process outside,
detached children, forging the verdict). The jail tests need bubblewrap and user
namespaces and are skipped, with the reason, where the probe fails; the unisolated
tests and the refusal run everywhere. tests/evaluate/test_sandbox_as_user.py runs this
file again as an unprivileged uid when the suite runs as root. Hostile side effects
only ever target files under pytest's tmp_path and processes the test started.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from redrobe.evaluate.sandbox import (
    BUBBLEWRAP,
    FAILED,
    FILES,
    NONE,
    PASSED,
    TIMEOUT,
    Sandbox,
    SandboxLimits,
    SandboxUnavailable,
    remove_tree,
)

LIMITS = SandboxLimits(timeout_s=4, cpu_s=2, memory_mb=512, max_processes=16,
                       max_output_kb=256)
CORRECT = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def jail():
    sandbox = Sandbox(LIMITS)
    if sandbox.isolation != BUBBLEWRAP:
        pytest.skip(f"no bubblewrap jail here: {sandbox.problem()}")
    return sandbox


def unisolated(**limits) -> Sandbox:
    return Sandbox(replace(LIMITS, **limits), bwrap=None, allow_unisolated=True)


def python(sandbox: Sandbox, code: str) -> list[str]:
    """A command that runs ``code`` without the harness (to test the layers under it)."""
    return [sandbox.python, "-I", "-S", "-c", code]


def home_entries() -> list[str]:
    """A few entries of $HOME, none of them on the way to the Python installation."""
    home = Path.home()
    entries = [p for p in home.iterdir() if not Path(sys.base_prefix).is_relative_to(p)]
    return [str(p) for p in entries[:3]] or [str(home)]


def leftover(text: str, tries: int = 30) -> list[int]:
    """Processes whose command line contains ``text`` (after a moment to die)."""
    for _ in range(tries):
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
        if not found:
            return []
        time.sleep(0.1)
    return found


@pytest.fixture
def host_tmp(tmp_path, monkeypatch):
    """The directory the sandbox's host-side temp dirs go to, empty and this test's own
    (tests running beside this one use theirs)."""
    folder = tmp_path / "host-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def marker(seconds: int) -> str:
    """A `sleep` argument unique to this test process, to find its leftovers by."""
    return f"{seconds}.{os.getpid()}"


def test_a_correct_program_passes_and_a_wrong_one_fails(jail):
    result = jail.run(CORRECT)
    assert result.status == PASSED and result.passed and result.stdout.strip() == "ok"
    wrong = jail.run(CORRECT.replace("a + b", "a - b"))
    assert wrong.status == FAILED and wrong.detail == "AssertionError"
    assert jail.isolation == BUBBLEWRAP


def test_infinite_loop_and_memory_bomb_fail(jail):
    loop = jail.run("while True:\n    pass\n")
    assert loop.status in (TIMEOUT, FAILED) and not loop.passed  # wall clock or RLIMIT_CPU
    bomb = jail.run("x = bytearray(2 * 1024 ** 3)\n")
    assert bomb.status == FAILED and bomb.detail == "MemoryError"


NONCE_HUNT = """
import re, sys
found = set()
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value):
            found.add(value)
    frame = frame.f_back
for nonce in found:
    print("\\n" + nonce)
sys.stdout.flush()
import os
os._exit(0)
"""

THREAD_EXITS = """
import os, sys, threading, time
threading.Thread(target=sys.exit).start()
threading.Thread(target=lambda: os._exit(0)).start()
time.sleep(0.3)
assert False, "the tests fail"
"""

# name -> (program, why it fails): the removed exit is missing, the hook refuses, or the
# harness counts the exception
EARLY_EXITS = {
    "frame-walking nonce hunt": (NONCE_HUNT, "AttributeError"),
    "os._exit(0) before the tests": ("import os\nos._exit(0)\nassert False\n", "AttributeError"),
    "posix._exit(0)": ("import posix\nposix._exit(0)\nassert False\n", "AttributeError"),
    "exec of /bin/true": ("import os\nos.execv('/bin/true', ['true'])\nassert False\n",
                          "PermissionError"),
    "raise SystemExit(0)": ("raise SystemExit(0)\n", "SystemExit"),
    "sys.exit(0)": ("import sys\nsys.exit(0)\n", "SystemExit"),
    "KeyboardInterrupt from a thread": ("import _thread, time\n_thread.interrupt_main()\n"
                                        "time.sleep(1)\n", "KeyboardInterrupt"),
    "a thread that exits": (THREAD_EXITS, "AssertionError"),
    "a fresh posix module": ("import _imp, importlib.machinery\n"
                             "_imp.create_builtin(importlib.machinery.ModuleSpec('posix', None))"
                             "._exit(0)\n", "AttributeError"),
    "tracing that skips the tests": ("import sys\nsys.settrace(lambda *a: None)\n"
                                     "assert False\n", "PermissionError"),
    "ctypes": ("import ctypes\nctypes.CDLL(None)._exit(0)\n", "PermissionError"),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])\nassert False\n",
                   "PermissionError"),
    "a signal to the jail's init": ("import os, signal\nos.kill(1, signal.SIGKILL)\n",
                                    "PermissionError"),
    "rewriting the audit hook": (
        "import gc\nhook = [f for f in gc.get_objects() if type(f).__name__ == 'function'"
        " and f.__name__ == 'audit']\nhook[0].__code__ = (lambda event, args: None).__code__\n"
        "import os\nos.execv('/bin/true', ['true'])\n", "PermissionError"),
    "a finalizer that execs at shutdown": (
        "import os\nclass Late:\n    def __init__(self):\n        self.execv = os.execv\n"
        "    def __del__(self):\n        self.execv('/bin/true', ['true'])\n"
        "keep = Late()\nassert False\n", "AssertionError"),
    "reopening /proc/self/mem": ("open('/proc/self/mem', 'r+b')\n", "PermissionError"),
}


@pytest.mark.parametrize(("program", "detail"), EARLY_EXITS.values(), ids=EARLY_EXITS.keys())
def test_ending_early_is_never_a_pass(jail, program, detail):
    result = jail.run(program)
    assert result.status == FAILED and not result.passed and result.returncode != 0
    assert result.detail == detail


def test_the_verdict_is_not_a_printed_marker(jail):
    result = jail.run(NONCE_HUNT)
    assert result.status == FAILED and result.detail == "AttributeError"  # os._exit is gone


def test_secrets_and_the_host_are_invisible(jail, tmp_path, monkeypatch):
    monkeypatch.setenv("REDROBE_TEST_SECRET", "s3cret")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    paths = ["/etc/shadow", "/etc/passwd", str(REPO / "params.yaml"), *home_entries(),
             str(victim), "/proc/1/environ", str(REPO)]
    result = jail.run(f"import os\nprint([p for p in {paths!r} if os.path.exists(p)])\n"
                      "print(sorted(os.environ))\n")
    assert result.status == PASSED
    seen, env = result.stdout.splitlines()
    assert seen == "[]" and "REDROBE_TEST_SECRET" not in env and "s3cret" not in result.stdout
    for attack in (f"os.remove({str(victim)!r})", f"open({str(victim)!r}, 'w').write('x')",
                   "open('/usr/evil', 'w')", "open('/sandbox/program.py', 'w')"):
        assert jail.run(f"import os\n{attack}\n").status == FAILED
    assert victim.read_text() == "keep me"


def test_stderr_detail_names_the_exception_only(jail):
    result = jail.run("raise ValueError('x' * 500 + open('/sandbox/program.py').read())\n")
    assert result.status == FAILED and result.detail == "ValueError"
    # a type the program names, or a forged report line, cannot carry text either
    named = jail.run("class ghp_token_1234(Exception):\n    pass\nraise ghp_token_1234\n")
    forged = jail.run("import os, sys\nsys.stderr.write('redrobe-sandbox: ghp_token_1234\\n')\n"
                      "sys.stderr.flush()\nos.abort()\n")
    for result in (named, forged):
        assert result.status == FAILED and "ghp" not in result.detail
    assert named.detail == "an exception of a type the program defined"


def test_the_program_runs_unprivileged_without_capabilities(jail):
    # uid 0 is not even mapped in the jail; chroot and setgroups need capabilities it lacks
    result = jail.run_command(python(jail, (
        "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
        "for attempt in (lambda: os.setuid(0), lambda: os.chroot('/'),\n"
        "                lambda: os.setgroups([os.getgid()])):\n"
        "    try:\n        attempt()\n    except OSError as exc:\n"
        "        print(type(exc).__name__)\n")), {})
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 0, result.stderr
    assert not lines[0].startswith("0 ") and lines[1:] == ["OSError", "PermissionError",
                                                          "PermissionError"]


def test_scratch_is_a_small_private_tmpfs(jail, host_tmp):
    result = jail.run("import os\nopen('scratch.txt', 'w').write('x')\n"
                      "print(os.getcwd(), sorted(os.listdir('.')))\n"
                      "open('big', 'wb').write(b'x' * (64 << 20))\n")
    assert result.status == FAILED and result.detail == "OSError"  # RLIMIT_FSIZE / tmpfs full
    assert result.stdout.strip() == "/tmp ['scratch.txt']"
    assert list(host_tmp.iterdir()) == []  # nothing on the host


def test_thousands_of_nested_directories_leave_nothing_behind(jail, host_tmp):
    result = jail.run("import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n")
    assert result.status == PASSED and list(host_tmp.iterdir()) == []


def test_an_output_flood_is_cut_off_and_the_parent_stays_small(jail):
    tracemalloc.start()
    try:
        result = jail.run("import sys\nwhile True:\n    sys.stdout.write('x' * (1 << 20))\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == FAILED and "output over 256 KiB" in result.detail
    assert len(result.stdout) <= LIMITS.output_chars
    assert peak < 4 * 1024 * 1024  # bounded by the kept tails, not by what was written


def test_network_is_unreachable(jail):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        result = jail.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), "
                          "timeout=2)\n")
    assert result.status == FAILED and result.detail in ("ConnectionRefusedError", "OSError")


def test_a_process_outside_cannot_be_killed(jail):
    victim = subprocess.Popen(["sleep", "30"])
    try:
        result = jail.run(f"import os\nos.kill({victim.pid}, 9)\n")
        assert result.status == FAILED and result.detail == "PermissionError"
        raw = jail.run_command(["/bin/sh", "-c", f"kill -9 {victim.pid}"], {})
        assert raw.returncode != 0 and victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


FORKS = """
import os, time
started = 0
for _ in range(40):
    try:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        started += 1
    except OSError:
        pass
print(started)
"""


def test_the_process_limit_binds(jail):
    # without the harness (which refuses fork outright): the kernel's RLIMIT_NPROC,
    # counted in the jail's own user namespace, stops the 40 forks the attacker got
    result = jail.run_command(python(jail, FORKS), {})
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) < LIMITS.max_processes


def test_detached_and_immortal_children_die_with_the_run(jail):
    sleep = marker(617)
    detached = ("import os\nif os.fork() == 0:\n    os.setsid()\n"
                f"    os.execv('/bin/sleep', ['sleep', '{sleep}'])\n")
    assert jail.run_command(python(jail, detached), {}).returncode == 0
    assert leftover(sleep) == []
    # a child that never exits and keeps stdout open: run() returns at the deadline
    immortal = f"/bin/sleep {sleep} & exec /bin/sleep {sleep}"
    result = replace(jail, limits=replace(LIMITS, timeout_s=1)).run_command(
        ["/bin/sh", "-c", immortal], {})
    assert result.timed_out and result.returncode is None
    assert leftover(sleep) == []


def test_files_are_passed_read_only(jail):
    result = jail.run_command(["/bin/cat", f"{FILES}/data.txt"], {"data.txt": b"hello"})
    assert result.returncode == 0 and result.stdout == b"hello"


def test_without_bubblewrap_the_sandbox_refuses():
    sandbox = Sandbox(LIMITS, bwrap=None)
    assert sandbox.isolation == NONE and "not installed" in sandbox.problem()
    with pytest.raises(SandboxUnavailable) as error:
        sandbox.run(CORRECT)
    message = str(error.value)
    for hint in ("bubblewrap", "seccomp", "evaluate.humaneval.allow_unisolated: true"):
        assert hint in message


def test_blocked_user_namespaces_are_detected_and_refused(failing_bwrap):
    sandbox = Sandbox(LIMITS)
    assert sandbox.bwrap == str(failing_bwrap)
    assert sandbox.isolation == NONE and "No permissions to create new namespace" in sandbox.problem()
    with pytest.raises(SandboxUnavailable, match="No permissions to create new namespace"):
        sandbox.check()
    allowed = Sandbox(LIMITS, allow_unisolated=True)
    allowed.check()
    assert allowed.run(CORRECT).status == PASSED and allowed.isolation == NONE


def test_unisolated_runs_keep_the_harness_limits_and_parent_controls(host_tmp):
    sandbox = unisolated()
    assert sandbox.run(CORRECT).status == PASSED
    for name, (program, detail) in EARLY_EXITS.items():
        # unisolated, pid 1 is the machine's init: that attack is for the jail only
        if name != "a signal to the jail's init":
            result = sandbox.run(program)
            assert (result.status, result.detail) == (FAILED, detail), name
    assert sandbox.run("x = bytearray(2 * 1024 ** 3)\n").detail == "MemoryError"
    flood = sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * (1 << 20))\n")
    assert flood.status == FAILED and "output over" in flood.detail
    deep = sandbox.run("import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n")
    assert deep.status == PASSED and list(host_tmp.iterdir()) == []


def test_unisolated_run_returns_at_the_deadline_despite_a_detached_child():
    sleep = marker(619)
    sandbox = unisolated(timeout_s=1)
    code = ("import os\nif os.fork() == 0:\n    os.setsid()\n"
            f"    os.execv('/bin/sleep', ['sleep', '{sleep}'])\n"
            f"os.execv('/bin/sleep', ['sleep', '{sleep}'])\n")
    try:
        result = sandbox.run_command(python(sandbox, code), {})
        assert result.timed_out  # the detached child holds stdout open; run() still returns
    finally:  # unisolated, the sandbox cannot reach a detached child: the test kills it
        for pid in leftover(sleep, tries=1):
            os.kill(pid, 9)


def test_remove_tree_needs_no_recursion(tmp_path):
    top = tmp_path / "scratch"  # 200 levels of 50 characters: beyond PATH_MAX as a path
    os.makedirs(top)
    fd = os.open(top, os.O_RDONLY)
    for _ in range(200):
        os.mkdir("d" * 50, dir_fd=fd)
        next_fd = os.open("d" * 50, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    (top / ".moved-0").write_text("a name remove_tree might pick")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        remove_tree(str(top))
    finally:
        sys.setrecursionlimit(limit)
    assert not top.exists()
