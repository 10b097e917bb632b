"""Deterministic crash points for kill tests: SIGKILL this process at its Nth write.

An audit hook (:func:`sys.addaudithook`) counts the file-system writes under a root
directory that Python performs: opening a file for writing, mkdir, rename/replace,
unlink, rmdir, rmtree and ctypes calls on such paths (the renameat2 swap). At write
number ``kill_at`` it SIGKILLs the process before the write happens: no ``finally``,
no atexit, exactly like the OOM killer or a power cut to the process. ``kill_at`` 0
only records: the writes seen are written to ``count_file`` (JSON) at exit, so a test
can run a command once to learn its crash points, then kill it at any of them.
Writes done natively (Parquet data written by Arrow's C++ code) are not seen: the
kill points are the Python-level steps around them.

    python tests/crash_points.py KILL_AT COUNT_FILE ROOT MODULE:FUNCTION [ARG ...]

runs ``FUNCTION([ARG ...])`` (e.g. ``redrobe.cli:main clean --params ...``) under the
hook and exits with its return value.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

#: audit events that change the file system, and the argument holding the path(s)
WRITE_EVENTS = {"os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree",
                "ctypes.call_function", "open"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _paths(event: str, args: tuple[Any, ...]) -> list[Any]:
    if event == "ctypes.call_function":
        return [a for a in args[1] if isinstance(a, bytes)]
    if event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or (flags & _WRITE_FLAGS)
        return [path] if writes else []
    return list(args[:2]) if event == "os.rename" else list(args[:1])


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


def crash_after(root: str | Path, kill_at: int) -> list[tuple[str, list[str]]]:
    """Watch writes under ``root`` from now on; SIGKILL this process at write ``kill_at``
    (1-based; 0: never). Returns the list the writes seen are appended to, as
    ``(event, [absolute paths])``."""
    root = os.path.abspath(root) + os.sep
    seen: list[tuple[str, list[str]]] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in WRITE_EVENTS:
            return
        paths = [os.path.abspath(os.fsdecode(p)) for p in _paths(event, args) if _is_path(p)]
        if any(p.startswith(root) for p in paths):
            seen.append((event, paths))
            if len(seen) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    return seen


def main(argv: list[str]) -> int:
    kill_at, count_file, root, target, *rest = argv
    module, function = target.split(":")
    seen = crash_after(root, int(kill_at))
    atexit.register(lambda: Path(count_file).write_text(json.dumps(seen)))
    return int(getattr(importlib.import_module(module), function)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
