"""Time `make test` from a fresh clone, install included, for one commit: what CI does.

    .venv/bin/python benchmarks/test_time.py --label before --commit d283b66
    .venv/bin/python benchmarks/test_time.py --label after --commit HEAD

Clones this repository at the commit into a temporary folder and runs its `.ci/run`
(CI=true: create .venv, install, the README's test command) with pytest's
`--durations=25`, then records under ``runs.<label>`` in benchmarks/results/test_time.json:
the wall time of the whole run, pytest's own time, the counts, and the 25 slowest test
phases. Run the labels one after the other on an otherwise idle machine: the figures
compare only when measured alike (the load average at the start is recorded). The
package caches (pip, apt) are the machine's, as they are for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render_docs import render

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "test_time.json"
SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+) in (?P<seconds>[\d.]+)s")
DURATION = re.compile(r"^(?P<seconds>[\d.]+)s (?P<when>setup|call|teardown)\s+(?P<test>\S+)")


def parse(log: str) -> dict:
    """Counts, pytest's seconds and the slowest phases from a pytest log."""
    out: dict = {"durations": []}
    for line in log.splitlines():
        if m := DURATION.match(line):
            out["durations"].append({"seconds": float(m["seconds"]), "when": m["when"],
                                     "test": m["test"]})
        elif m := SUMMARY.match(line.strip()):
            out["pytest_s"] = float(m["seconds"])
            for part in m["body"].split(", "):
                count, word = part.split(" ", 1)
                out[word.rstrip("s")] = int(count)    # passed, failed, skipped, warning, error
    return out


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def avx512() -> bool:
    return " avx512f " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "


def run(commit: str) -> dict:
    """Clone at ``commit`` and time its .ci/run; the parsed log with wall time and commit."""
    with tempfile.TemporaryDirectory(prefix="redrobe-test-time-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", commit], cwd=clone, check=True)
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True,
                             capture_output=True, text=True).stdout.strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST"))}
        env |= {"CI": "true", "PYTEST_ADDOPTS": "--durations=25"}
        load = os.getloadavg()
        start = time.monotonic()
        done = subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        wall = time.monotonic() - start
    log = Path(tempfile.gettempdir()) / f"redrobe-test-time-{sha}.log"
    log.write_text(done.stdout + done.stderr)
    print(f"log: {log}")
    result = parse(done.stdout)
    return result | {"commit": sha, "exit_code": done.returncode, "total_s": round(wall, 1),
                     "load_average_at_start": [round(x, 2) for x in load]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="the key under runs (e.g. before, after)")
    ap.add_argument("--commit", default="HEAD")
    args = ap.parse_args(argv)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    data |= {"cpu": cpu_name(), "avx512": avx512(), "cpus": os.cpu_count()}
    data["runs"][args.label] = run(args.commit)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in data["runs"][args.label].items() if k != "durations"}))
    render()
    return 0 if data["runs"][args.label]["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
