"""Run untrusted Python (model-generated code) in a bubblewrap jail.

    sandbox = Sandbox(SandboxLimits(timeout_s=10, memory_mb=1024))
    sandbox.check()                     # raises SandboxUnavailable (with what to do) if no jail
    result = sandbox.run("def f():\\n    return 1\\nassert f() == 1\\n")
    result.passed, result.status, result.detail     # True, "passed", ""
    sandbox.isolation                               # "bubblewrap" or "none"

Each program runs under ``python -I -S -B`` (the interpreter that runs redrobe, outside
any virtualenv: its standard library only) in :mod:`redrobe.evaluate.sandbox_harness`,
whose exit status is the verdict. The layers, each described with what it does not
stop in docs/security.md:

- **an unprivileged uid**: when the caller is root, ``setpriv`` first drops to
  :data:`SANDBOX_UID` with no groups, no capabilities and no-new-privs, so the kernel
  applies ``RLIMIT_NPROC`` (it never does for uid 0) and root's files stay root's;
- **bubblewrap** (``bwrap``, unprivileged, ``--unshare-all``): new user, PID, network
  (no interfaces but loopback), IPC, UTS and mount namespaces, no further user
  namespaces. The file system is a read-only root holding only ``/usr``, the Python
  installation (without the extension modules that reach native code or processes),
  ``/dev``'s harmless devices, the harness and program (read-only, under ``/sandbox``)
  and a size-limited tmpfs at ``/tmp`` (cwd and HOME; gone with the jail, nothing to
  clean on the host). No /proc, /etc, home, checkout or params. ``--die-with-parent``
  and the PID namespace tie every process, detached or not, to the run;
- **resource limits** set with ``prlimit`` inside the user namespace, soft = hard:
  ``RLIMIT_AS``, ``CPU``, ``NPROC`` (counted per user namespace, Linux >= 5.14, so it
  bounds this run's processes only), ``FSIZE``, ``NOFILE``, ``CORE`` = 0;
- **the parent**: a from-scratch environment, stdin /dev/null, stdout and stderr read as
  they come and only their tails kept (the program is killed once either passes
  ``max_output_kb``), a wall-clock deadline after which the process group is killed
  (which takes the jail with it), and a process exit noticed through a pidfd, so a child
  that never exits cannot hang :meth:`Sandbox.run`.

Where bubblewrap cannot run (not installed, user namespaces blocked, e.g. by Docker's
default seccomp profile) :attr:`Sandbox.isolation` is ``"none"`` and :meth:`Sandbox.run`
refuses unless ``allow_unisolated``: then the program runs as the caller with only the
limits, the harness and the parent's controls, in a host temp dir removed without
recursion (:func:`remove_tree`).
"""

from __future__ import annotations

import builtins
import functools
import itertools
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from redrobe.errors import InputError
from redrobe.evaluate.sandbox_harness import BLOCKED_MODULES

PASSED, FAILED, TIMEOUT = "passed", "failed", "timeout"
BUBBLEWRAP, NONE = "bubblewrap", "none"

SANDBOX_UID = 65534        # nobody: the program's uid when the caller is root
FILES = "{files}"          # in a command's argv: the directory that holds its files
JAIL_FILES = "/sandbox"    # that directory inside the jail (read-only)
SCRATCH = "/tmp"           # the jail's writable tmpfs: cwd and HOME
HARNESS = "harness.py"
PROGRAM = "program.py"
CHUNK = 65536
# the whole environment of every command (HOME added per command): nothing inherited
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
REPORT = re.compile(r"^redrobe-sandbox: ([A-Za-z_][A-Za-z0-9_.]{0,99})$")
BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                               if isinstance(value, type) and issubclass(value, BaseException))
OTHER_EXCEPTION = "an exception of a type the program defined"
HARNESS_SOURCE = Path(__file__).with_name("sandbox_harness.py").read_bytes()

HOW_TO_PROCEED = (
    "To proceed, do one of: install bubblewrap (`make sandbox-deps`, or apt-get install "
    "bubblewrap); in a container, run it with a seccomp profile that permits user "
    "namespaces (Docker's default profile blocks them); or set "
    "evaluate.humaneval.allow_unisolated: true to run the programs with resource limits "
    "only: no file system, network or process isolation (docs/security.md).")


class SandboxUnavailable(InputError):
    """No isolation here and unisolated runs are not allowed; the message says what to do."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0      # wall clock, whole run
    cpu_s: int = 10              # RLIMIT_CPU
    memory_mb: int = 1024        # RLIMIT_AS (address space)
    max_processes: int = 16      # RLIMIT_NPROC, this run's processes (the jail's init too)
    max_file_mb: int = 16        # RLIMIT_FSIZE, and the size of the scratch tmpfs
    max_open_files: int = 64     # RLIMIT_NOFILE
    max_output_kb: int = 256     # per stream; the program is killed beyond it
    output_chars: int = 2000     # tail of stdout/stderr kept in the result


@dataclass(frozen=True)
class SandboxResult:
    status: str                  # passed | failed | timeout
    returncode: int | None
    detail: str = ""             # why it failed: an exception type, a signal, a limit
    stdout: str = ""             # tails, for debugging; never put in metrics
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass(frozen=True)
class Outcome:
    """How a command in the sandbox ended: its exit status and the tails of its output."""
    returncode: int | None       # None: killed at the deadline; < 0: killed by that signal
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    overflowed: bool = False     # killed for writing more than max_output_kb


def _rlimit_argv(limits: SandboxLimits, running: int = 0) -> list[str]:
    """prlimit's command line; ``running``: tasks already counted against RLIMIT_NPROC."""
    mb = 1024 * 1024
    values = {"as": limits.memory_mb * mb, "cpu": limits.cpu_s,
              "nproc": running + limits.max_processes,
              "fsize": limits.max_file_mb * mb, "nofile": limits.max_open_files, "core": 0}
    prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
    return [prlimit, *(f"--{name}={value}:{value}" for name, value in values.items()), "--"]


def _user_tasks(uid: int) -> int:
    """Tasks (threads) the kernel counts against ``uid``'s RLIMIT_NPROC outside a user
    namespace: every thread of every process of that uid."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:        # the process ended meanwhile
                continue
    return count


def _interpreter() -> str:
    """The running Python's base interpreter (a virtualenv's python resolves to it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


@dataclass
class Sandbox:
    """Runs programs under ``limits`` in bubblewrap (``bwrap``: its path, or None)."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    bwrap: str | None = field(default_factory=lambda: shutil.which("bwrap"))
    allow_unisolated: bool = False
    uid: int = SANDBOX_UID
    python: str = field(default_factory=_interpreter)
    _problem: str | None = field(default=None, init=False, repr=False)  # "" once probed fine

    @property
    def isolation(self) -> str:
        """``bubblewrap`` when the jail works here, else ``none`` (probed once)."""
        return BUBBLEWRAP if not self.problem() else NONE

    def problem(self) -> str:
        """Why the jail cannot run here ("" when it can)."""
        if self._problem is None:
            self._problem = self._probe()
        return self._problem

    def check(self) -> None:
        """Raise :class:`SandboxUnavailable` unless programs may run here."""
        if self.isolation == NONE and not self.allow_unisolated:
            raise SandboxUnavailable(f"HumanEval sandbox: no isolation available "
                                     f"({self.problem()}). {HOW_TO_PROCEED}")

    def _probe(self) -> str:
        if not self.bwrap or not os.access(self.bwrap, os.X_OK):
            return "bubblewrap (bwrap) is not installed"
        probe = "import os; open('probe', 'w').write('x'); assert not os.path.exists('/etc')"
        out = self._execute(self._jail([self.python, "-I", "-S", "-c", probe], {}),
                            timeout_s=30)
        if out.returncode == 0:
            return ""
        lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{self.bwrap} failed: {lines[-1] if lines else f'exit status {out.returncode}'}"

    def run(self, program: str) -> SandboxResult:
        """Run ``program`` (Python source) to completion, failure or timeout."""
        self.check()
        out = self.run_command(
            [self.python, "-I", "-S", "-B", f"{FILES}/{HARNESS}", f"{FILES}/{PROGRAM}"],
            {HARNESS: HARNESS_SOURCE, PROGRAM: program.encode("utf-8")})
        keep = self.limits.output_chars
        stdout, stderr = (b.decode("utf-8", "replace")[-keep:] for b in (out.stdout, out.stderr))
        if out.timed_out:
            return SandboxResult(TIMEOUT, None, f"killed after {self.limits.timeout_s} s wall time",
                                 stdout, stderr)
        if out.overflowed:
            return SandboxResult(FAILED, out.returncode,
                                 f"killed: output over {self.limits.max_output_kb} KiB",
                                 stdout, stderr)
        if out.returncode == 0:
            return SandboxResult(PASSED, 0, "", stdout, stderr)
        return SandboxResult(FAILED, out.returncode, _describe(out), stdout, stderr)

    def run_command(self, argv: Sequence[str], files: Mapping[str, bytes]) -> Outcome:
        """Run ``argv`` under the limits, with ``files`` (name -> content) in the directory
        that ``{files}`` in ``argv`` names: in the jail, or unisolated when allowed."""
        if self.isolation == BUBBLEWRAP:
            return self._execute(self._jail(argv, files), self.limits.timeout_s)
        self.check()
        scratch = tempfile.mkdtemp(prefix="redrobe-sandbox-")
        try:
            for name, data in files.items():
                Path(scratch, name).write_bytes(data)
            command = [a.replace(FILES, scratch) for a in argv]
            # Outside a user namespace RLIMIT_NPROC counts all the caller's tasks (and
            # nothing for root): allow max_processes beyond those running now.
            running = _user_tasks(os.getuid()) if os.getuid() != 0 else 0
            return self._execute(_Command([*_rlimit_argv(self.limits, running), *command], scratch,
                                          scratch, []), self.limits.timeout_s)
        finally:
            remove_tree(scratch)

    def _jail(self, argv: Sequence[str], files: Mapping[str, bytes]) -> _Command:
        assert self.bwrap is not None
        fds, binds = [], []
        for name, data in files.items():
            fd = os.memfd_create(name, 0)
            os.write(fd, data)
            os.lseek(fd, 0, os.SEEK_SET)
            fds.append(fd)
            binds += ["--ro-bind-data", str(fd), f"{JAIL_FILES}/{name}"]
        command = [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
                   "--die-with-parent", "--new-session", "--clearenv",
                   *(arg for name, value in {**BASE_ENV, "HOME": SCRATCH}.items()
                     for arg in ("--setenv", name, value)),
                   *self._system_binds(), "--dev", "/dev",
                   "--size", str(self.limits.max_file_mb * 1024 * 1024), "--tmpfs", SCRATCH,
                   *binds, "--remount-ro", "/", "--chdir", SCRATCH, "--",
                   *_rlimit_argv(self.limits), *(a.replace(FILES, JAIL_FILES) for a in argv)]
        if os.geteuid() == 0:
            command = [*reachable(self.bwrap, self.python_dirs(), self.uid), "setpriv",
                       f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                       "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
                       *command]
        return _Command(command, "/", SCRATCH, fds)

    def python_dirs(self) -> list[str]:
        """The Python installation the jail needs (nothing when it lives under /usr)."""
        dirs = {os.path.realpath(sys.base_prefix), os.path.dirname(self.python)}
        return sorted(d for d in dirs if not _under(d, "/usr")
                      and not any(o != d and _under(d, o) for o in dirs))

    def _system_binds(self) -> list[str]:
        binds = ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                binds += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                binds += ["--ro-bind", top, top]
        for path in self.python_dirs():
            binds += ["--ro-bind", path, path]
        return binds + [arg for path in _blocked_extensions()
                        for arg in ("--ro-bind", "/dev/null", path)]

    def _execute(self, command: _Command, timeout_s: float) -> Outcome:
        env = {**BASE_ENV, "HOME": command.home}
        try:
            proc = subprocess.Popen(command.argv, cwd=command.cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=command.fds,
                                    start_new_session=True)  # own group: killed as one
        except OSError as exc:
            return Outcome(127, b"", f"cannot start {command.argv[0]}: {exc}".encode())
        finally:
            for fd in command.fds:
                os.close(fd)
        with proc:
            return _supervise(proc, timeout_s, self.limits)


@dataclass(frozen=True)
class _Command:
    argv: list[str]
    cwd: str
    home: str
    fds: list[int]


def _supervise(proc: subprocess.Popen[bytes], timeout_s: float, limits: SandboxLimits) -> Outcome:
    """Read ``proc``'s output as it comes until it exits and closes both pipes, it writes
    too much, or the deadline passes; then kill what is left of its process group."""
    assert proc.stdout is not None and proc.stderr is not None
    cap, keep = limits.max_output_kb * 1024, max(limits.output_chars * 4, CHUNK)
    tails = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    counts = dict.fromkeys(tails, 0)
    pidfd = os.pidfd_open(proc.pid)
    deadline = time.monotonic() + timeout_s
    exited = overflowed = False
    with selectors.DefaultSelector() as sel:
        for fd in (*tails, pidfd):
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and not overflowed:  # until it exited and closed both pipes
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                if key.fd == pidfd:
                    exited = True
                    sel.unregister(pidfd)
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                counts[key.fd] += len(chunk)
                tails[key.fd] += chunk
                del tails[key.fd][:-keep]
                overflowed = overflowed or counts[key.fd] > cap
    # the leader is not reaped yet (a pidfd does not reap), so its group id is still ours
    _kill_group(proc.pid)
    os.close(pidfd)
    returncode = proc.wait()
    out, err = (bytes(tails[f.fileno()]) for f in (proc.stdout, proc.stderr))
    if not exited and not overflowed:
        return Outcome(None, out, err, timed_out=True)
    return Outcome(returncode, out, err, overflowed=overflowed)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(out: Outcome) -> str:
    """Why a run failed, in words no program can choose: the exception type the harness
    reported, else the signal or exit status."""
    lines = out.stderr.decode("ascii", "replace").splitlines()
    match = REPORT.match(lines[-1]) if lines else None
    if match:  # a name from a fixed list: a program could print any identifier there
        return match.group(1) if match.group(1) in BUILTIN_EXCEPTIONS else OTHER_EXCEPTION
    assert out.returncode is not None
    # bwrap reports a command killed by signal n as exit status 128 + n
    number = -out.returncode if out.returncode < 0 else out.returncode - 128
    if number in set(signal.Signals):
        return f"killed by {signal.Signals(number).name}"
    return f"exit status {out.returncode}"


def reachable(bwrap: str, paths: Sequence[str], uid: int) -> list[str]:
    """As root, the start of a command line that makes ``paths`` reachable by ``uid`` when a
    directory above one of them is not (e.g. /root, mode 0700): a privileged bwrap that, in a
    mount namespace of its own, mounts a tmpfs on that directory holding only ``paths``.
    Empty when nothing is hidden."""
    hidden = {path: top for path in paths
              if (top := _hidden_ancestor(path, uid)) is not None and top != path}
    argv = [arg for top in sorted(set(hidden.values())) for arg in ("--tmpfs", top)]
    for path, top in hidden.items():
        for parent in reversed(Path(path).parents):
            if _under(str(parent), top) and str(parent) != top:
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", path, path]
    return [bwrap, "--dev-bind", "/", "/", *argv, "--"] if argv else []


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _searchable(path: str, uid: int) -> bool:
    """Whether ``uid`` (gid = uid, no other groups) may search directory ``path``."""
    st = os.stat(path)
    return bool(st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)
                or (st.st_gid == uid and st.st_mode & 0o010))


def _hidden_ancestor(path: str, uid: int) -> str | None:
    """The topmost directory on the way to ``path`` (itself included) ``uid`` cannot search."""
    for parent in [*reversed(Path(path).parents), Path(path)]:
        if not _searchable(str(parent), uid):
            return str(parent)
    return None


@functools.cache
def _blocked_extensions() -> tuple[str, ...]:
    """The standard library's extension-module files the jail replaces with /dev/null."""
    dynload = sysconfig.get_config_var("DESTSHARED")
    if not dynload or not os.path.isdir(dynload):
        return ()
    return tuple(sorted(str(p) for p in Path(dynload).iterdir()
                        if p.name.split(".")[0] in BLOCKED_MODULES))


def remove_tree(path: str) -> None:
    """Delete directory ``path`` and all under it, without recursion: each subdirectory is
    emptied by moving its entries up into ``path``, so neither depth nor path length matters
    (a program can leave thousands of nested directories)."""
    os.chmod(path, 0o700)  # a program may have made its directories unreadable
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    names = _fresh_names(top)
    try:
        while entries := os.listdir(top):
            for name in entries:
                try:
                    os.unlink(name, dir_fd=top)
                    continue
                except IsADirectoryError:
                    pass
                os.chmod(name, 0o700, dir_fd=top, follow_symlinks=False)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                try:
                    for child in os.listdir(sub):
                        os.rename(child, next(names), src_dir_fd=sub, dst_dir_fd=top)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)


def _fresh_names(dir_fd: int) -> Iterator[str]:
    """Names not taken in the directory ``dir_fd`` (checked when each is drawn)."""
    for number in itertools.count():
        try:
            os.stat(f".moved-{number}", dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            yield f".moved-{number}"
