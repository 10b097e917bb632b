"""The whole pipeline as a Prefect flow: every dvc.yaml stage, in order, through DVC.

    python -m flows.pipeline                 # all stages (DVC skips what is up to date)
    python -m flows.pipeline --stages clean dedup

The flow opens one MLflow parent run; each stage (one Prefect task running
`dvc repro --single-item <stage>`) logs a child run under it. Stages run one at a
time because DVC holds a repo lock. At the end the flow records dvc.lock on the
parent run and prints where the results are.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from redrobe import tracking
from redrobe.config import load_params
from tasks.dvc import run_stage, stage_order
from tasks.lineage import record_lineage

REPORT = Path("data/reports/report.md")


@flow(name="redrobe-pipeline", log_prints=True)
def pipeline(stages: list[str] | None = None, repo: str = ".") -> dict[str, Any]:
    """Run the given stages (default: all, in dvc.yaml order) under one MLflow parent run."""
    root = Path(repo).resolve()
    order = stage_order(root)
    selected = [s for s in order if stages is None or s in stages]
    unknown = sorted(set(stages or []) - set(order))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; dvc.yaml has {order}")
    experiment = load_params(root / "params.yaml").tracking.experiment
    # The stages run with cwd=repo: pin the store so the flow and they share one database.
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    results = []
    with tracking.pipeline_run(experiment, "pipeline (prefect)",
                               {"redrobe.launcher": "prefect"}) as parent:
        for stage in selected:
            results.append(run_stage(stage, str(root), parent))
        lineage = record_lineage(str(root), parent)
    summary = {"parent_run_id": parent, "stages": results, "dvc_outs": lineage,
               "report": str(root / REPORT), "tracking_uri": tracking.tracking_uri()}
    get_run_logger().info("pipeline finished: %s", [(r["stage"], r["ran"]) for r in results])
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    print("\nredrobe pipeline finished.")
    for r in summary["stages"]:
        print(f"  {r['stage']:<9} {'ran' if r['ran'] else 'up to date'}")
    print(f"\nReport:          {summary['report']}")
    print(f"MLflow run:      {summary['parent_run_id']}")
    print(f"Open the UI:     mlflow ui --backend-store-uri {summary['tracking_uri']} "
          "--host 127.0.0.1 --port 5000")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--stages", nargs="*", help="stage names (default: all)")
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    args = p.parse_args(argv)
    _print_summary(pipeline(stages=args.stages, repo=args.repo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
