"""The whole pipeline as a Prefect flow: every dvc.yaml stage, in order, through DVC.

    python -m flows.pipeline                 # all stages (DVC skips what is up to date)
    python -m flows.pipeline --stages clean dedup

Deployed by prefect.yaml as ``redrobe-pipeline/weekly-full-run`` (weekly schedule).
The flow takes the checkout's run lock, opens one MLflow parent run; each stage (one
Prefect task running ``dvc repro --single-item <stage>``) logs a child run under it.
Stages run one at a time because DVC holds a repo lock. At the end the flow records
dvc.lock on the parent run, publishes the summary artifacts (flows.common) and prints
where the results are. When another run holds the lock the flow run ends in the
state Skipped ("skipped: ...") and the command exits 75.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import State

from flows.common import cli, print_summary, run_stages
from tasks.dvc import stage_order

FLOW = "redrobe-pipeline"
REPORT = Path("data/reports/report.md")


@flow(name=FLOW, log_prints=True)
def pipeline(stages: list[str] | None = None, repo: str = ".") -> dict[str, Any] | State:
    """Run the given stages (default: all, in dvc.yaml order) under one MLflow parent run."""
    root = Path(repo).resolve()
    order = stage_order(root)
    unknown = sorted(set(stages or []) - set(order))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; dvc.yaml has {order}")
    selected = [s for s in order if stages is None or s in stages]
    summary = run_stages(FLOW, selected, str(root))
    if isinstance(summary, dict):
        summary["report"] = str(root / REPORT)
    return summary


def _print(summary: dict[str, Any]) -> None:
    print_summary(summary)
    print(f"Report:          {summary['report']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--stages", nargs="*", help="stage names (default: all)")
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    args = p.parse_args(argv)
    return cli(pipeline, _print, stages=args.stages, repo=args.repo)


if __name__ == "__main__":
    sys.exit(main())
