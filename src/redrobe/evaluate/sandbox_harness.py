"""The harness that runs one untrusted program inside :mod:`redrobe.evaluate.sandbox`.

    python -I -S -B sandbox_harness.py program.py      # exit status 0: the program ran to its end

The verdict is this process's exit status, and only the harness's normal end gives 0:
an exception of any kind from the program (``SystemExit``, ``KeyboardInterrupt``
included) ends it with SIGABRT after one line on stderr naming the exception's type
(``redrobe-sandbox: AssertionError``), never its message or a traceback, so no text the
program chose reaches the caller. The program runs in this same interpreter and can do
whatever this file can, so before it starts the harness takes away its ways to end the
process early with a status of its own choosing:

- ``os._exit`` / ``posix._exit`` are deleted, and so is ``_imp.create_builtin`` (which
  would build a fresh ``posix`` module that has them) once every other built-in module
  has been imported;
- an audit hook (PEP 578; once added it cannot be removed) refuses exec, fork and spawn,
  signals to other processes, tracing (which could rewrite this frame's variables or skip
  lines), new code objects, symlinks, opening any ``.../mem`` file, ctypes, and importing
  the extension modules that reach native code, processes or other interpreters. The hook
  reads only its own default arguments, whose replacement is itself refused.

What stays possible is listed in docs/security.md (e.g. loading a native extension the
program writes itself, or a CPython memory-safety bug). This file runs on the bare
standard library: it never imports redrobe.
"""

import os
import posix
import signal
import sys

REPORT = b"redrobe-sandbox: "   # the line that names the exception that failed the run

BLOCKED_EVENTS = frozenset({
    "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
    "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill",
    "sys.settrace", "sys.setprofile", "code.__new__", "os.symlink"})
BLOCKED_PREFIXES = ("ctypes.",)
# function attributes whose replacement would change what the hook runs
GUARDED_ATTRIBUTES = frozenset({"__code__", "__defaults__", "__kwdefaults__"})
BLOCKED_MODULES = frozenset({
    "ctypes", "_ctypes", "_ctypes_test", "_posixsubprocess", "_xxsubinterpreters",
    "_testcapi", "_testinternalcapi", "_testbuffer", "_testclinic", "_testmultiphase",
    "_testimportmultiple", "_testsinglephase", "_xxtestfuzz"})


def audit(event: str, args: tuple, _events: frozenset = BLOCKED_EVENTS,
          _prefixes: tuple = BLOCKED_PREFIXES, _attributes: frozenset = GUARDED_ATTRIBUTES,
          _modules: frozenset = BLOCKED_MODULES, _isinstance=isinstance,
          _refuse: type = PermissionError) -> None:
    """The audit hook: refuse what could end the run early or change this hook."""
    if event in _events or event.startswith(_prefixes):
        raise _refuse(f"sandbox: {event} is not allowed")
    if event == "import" and _isinstance(args[0], str) and (
            args[0] in _modules or args[0].partition(".")[0] in _modules):
        raise _refuse(f"sandbox: importing {args[0]} is not allowed")
    if event == "object.__setattr__" and args[1] in _attributes:
        raise _refuse(f"sandbox: setting {args[1]} is not allowed")
    if event == "open" and _isinstance(args[0], (str, bytes)) and (
            args[0].rpartition("/" if _isinstance(args[0], str) else b"/")[2] in ("mem", b"mem")):
        raise _refuse("sandbox: opening a process's memory is not allowed")


def restrict() -> None:
    """Take away the early exits (see the module docstring); from here on the hook is on."""
    import _imp
    for name in sorted(set(sys.builtin_module_names) - BLOCKED_MODULES):
        __import__(name)
    del posix._exit, os._exit, _imp.create_builtin
    sys.addaudithook(audit)


def main(path: str, _write=os.write, _abort=os.abort, _type=type, _encode=str.encode,
         _qualname=type.__dict__["__qualname__"].__get__, _stdout=sys.stdout,
         _compile=compile, _exec=exec, _failure=BaseException) -> None:
    """Run the program at ``path`` as ``__main__``; return only if it ran to its end."""
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    module = _type(sys)("__main__")
    sys.modules["__main__"] = module     # the program's globals, not this file's
    # a caller that ignores SIGINT (a background job) would make KeyboardInterrupt vanish:
    # the same handler everywhere, so a verdict never depends on where the stage was started
    signal.signal(signal.SIGINT, signal.default_int_handler)
    restrict()
    try:
        _exec(_compile(source, path, "exec"), module.__dict__)
    except _failure as exc:  # BaseException (bound early: builtins can be replaced)
        try:
            _stdout.flush()
            _write(2, b"\n" + REPORT + _encode(_qualname(_type(exc)), "ascii", "replace") + b"\n")
        finally:
            _abort()  # no interpreter shutdown: the program's __del__/atexit code never runs


if __name__ == "__main__":
    main(sys.argv[1])
