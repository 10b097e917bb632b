"""Data refresh flow: ingest the configured sources and carry new shards through quality.

    python -m flows.refresh                  # ingest (forced) -> clean -> dedup -> quality
    python -m flows.refresh --no-force-ingest

Deployed by prefect.yaml as ``redrobe-refresh/nightly-refresh`` (nightly schedule). It
runs the dvc.yaml stages from ``ingest`` up to and including ``quality`` through DVC,
under the run lock and one MLflow parent run (flows.common.run_stages). Ingest is
forced by default: DVC cannot see new files matched by the globs in
``ingest.paths``, so the refresh re-reads the sources; when they did not change the
raw shards are byte-identical and DVC skips clean, dedup and quality. Training
stages are left to the weekly full run (flows.pipeline).
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

FLOW = "redrobe-refresh"
FIRST, LAST = "ingest", "quality"


def refresh_stages(repo: Path) -> list[str]:
    """The dvc.yaml stages from ingest to quality, in order."""
    order = stage_order(repo)
    return order[order.index(FIRST):order.index(LAST) + 1]


@flow(name=FLOW, log_prints=True)
def refresh(repo: str = ".", force_ingest: bool = True) -> dict[str, Any] | State:
    """Ingest the sources and run the data stages through quality, under one MLflow parent run."""
    root = Path(repo).resolve()
    return run_stages(FLOW, refresh_stages(root), str(root),
                      force=[FIRST] if force_ingest else [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.refresh", description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    p.add_argument("--no-force-ingest", dest="force_ingest", action="store_false",
                   help="let DVC skip ingest when its params and code did not change")
    args = p.parse_args(argv)
    return cli(refresh, print_summary, repo=args.repo, force_ingest=args.force_ingest)


if __name__ == "__main__":
    sys.exit(main())
