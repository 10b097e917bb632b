"""Paper-table flow: `redrobe reproduce TABLE` as a Prefect flow with a Markdown artifact.

    python -m flows.tables t5-repeats                 # sample scale
    python -m flows.tables lora-rank --scale full

Deployed by prefect.yaml as ``redrobe-reproduce/reproduce`` (no schedule):
``prefect deployment run redrobe-reproduce/reproduce -p table=lora-rank``. The flow takes
the checkout's run lock (flows.common), runs the table through
:func:`redrobe.tables.runner.reproduce` (DVC stages when the checkout is a DVC repo, so
only changed variants rerun; every variant an MLflow run) and publishes the table, the
paper's numbers beside ours and the claims' verdicts, as the Markdown artifact
``table-<table>-<scale>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Iterator

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.common import LOCK_FILE, LockHeld, RunLock, cli, run_owner, skipped
from redrobe.tables import TABLES

FLOW = "redrobe-reproduce"


def artifact_key(table: str, scale: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"table-{table}-{scale}".lower())


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@flow(name=FLOW, log_prints=True)
def reproduce(table: str, scale: str = "sample", repo: str = ".",
              use_dvc: bool | None = None) -> str | State:
    """Reproduce one paper table; return its Markdown (or a Skipped state)."""
    from redrobe.tables.runner import reproduce as run_table

    if table not in TABLES:
        raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
    root = Path(repo).resolve()
    try:
        with RunLock(root / LOCK_FILE, run_owner()), working_directory(root):
            markdown = run_table(table, scale, use_dvc=use_dvc)
    except LockHeld as exc:
        return skipped(str(exc))
    create_markdown_artifact(markdown, key=artifact_key(table, scale),
                             description=f"redrobe reproduce {table} --scale {scale}")
    print(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.tables", description=__doc__.splitlines()[0])
    p.add_argument("table", choices=list(TABLES))
    p.add_argument("--scale", default="sample")
    p.add_argument("--repo", default=".")
    args = p.parse_args(argv)
    # the flow prints the table itself (log_prints): nothing more to print here
    return cli(reproduce, lambda _markdown: None, table=args.table, scale=args.scale,
               repo=args.repo)


if __name__ == "__main__":
    sys.exit(main())
