"""`python -m redrobe` behaves like the installed `redrobe` script (same help, same exit codes)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("redrobe", path=str(Path(sys.executable).parent)) or shutil.which("redrobe")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(SCRIPT is None, reason="the redrobe script is not installed")
@pytest.mark.parametrize("args", [["--help"], [], ["no-such-command"]], ids=["help", "bare", "unknown"])
def test_python_m_redrobe_matches_the_script(args):
    module = _run([sys.executable, "-m", "redrobe", *args])
    script = _run([SCRIPT, *args])
    assert (module.returncode, module.stdout, module.stderr) == \
        (script.returncode, script.stdout, script.stderr)
    if args == ["--help"]:
        assert module.returncode == 0 and module.stdout.startswith("usage: redrobe <command>")
