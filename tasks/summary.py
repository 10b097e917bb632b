"""Prefect task that publishes a flow run's summary as Prefect artifacts (stable keys).

    publish_summary("redrobe-refresh", repo, parent_run_id, results)

Each run adds a new version of the same three artifacts (Prefect UI → Artifacts, or
the flow run's Artifacts tab):

- ``<flow>-summary`` (markdown): the outcome, the MLflow parent run, which stages ran;
- ``<flow>-funnel`` (table): documents per slice after each step of the data funnel
  (read and kept by ingest, kept by clean, kept by dedup), from the ``accounting`` of
  the stages' metrics files (data/metrics/{ingest,clean,dedup}.json);
- ``<flow>-eval`` (table): held-out bits per byte and perplexity per slice and model,
  when the evaluation metrics exist (data/metrics/eval.json, or the adapt flow's own).

A skipped run (another run held the lock) publishes only the summary, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from redrobe.reporting import FUNNEL_STEPS, eval_table, funnel_table
from tasks.dvc import metrics_path

FUNNEL_STAGES = ("ingest", "clean", "dedup")


def load_metrics(repo: Path, eval_file: Path | None) -> dict[str, Any]:
    """The funnel stages' metrics (those that exist) and, if given and present, eval's."""
    files = {stage: metrics_path(repo, stage) for stage in FUNNEL_STAGES}
    if eval_file is not None:
        files["eval"] = eval_file
    return {name: json.loads(path.read_text(encoding="utf-8"))
            for name, path in files.items() if path is not None and path.exists()}


def funnel_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per slice: documents after each funnel step whose stage metrics are loaded."""
    steps = [step for step, stage, _ in FUNNEL_STEPS if stage in metrics]
    rows: dict[str, dict[str, Any]] = {}
    for row in funnel_table(metrics):
        if row["stage"] in steps:
            rows.setdefault(row["slice"], {"slice": row["slice"]})[row["stage"]] = row["docs"]
    return [rows[name] for name in sorted(rows)]


def eval_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "label"} for row in eval_table(metrics)]


def summary_markdown(flow: str, outcome: str, parent_run_id: str,
                     results: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> str:
    lines = [f"# {flow}: {outcome}", ""]
    if parent_run_id:
        lines.append(f"MLflow parent run: `{parent_run_id}`")
    for r in results:
        seconds = f" ({r['wall_seconds']:.1f} s)" if r["ran"] and r.get("wall_seconds") else ""
        lines.append(f"- `{r['stage']}`: {'ran' if r['ran'] else 'up to date'}{seconds}")
    lines += ["", *notes]
    return "\n".join(lines).strip() + "\n"


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary(flow: str, repo: str, parent_run_id: str, results: list[dict[str, Any]],
                    eval_file: str | None = None, outcome: str = "completed",
                    notes: Sequence[str] = ()) -> list[str]:
    """Create the run's artifacts; return their keys."""
    keys = [f"{flow}-summary"]
    create_markdown_artifact(summary_markdown(flow, outcome, parent_run_id, results, notes),
                             key=keys[0], description=f"{flow}: outcome and stages")
    if outcome != "completed":
        return keys
    root = Path(repo)
    metrics = load_metrics(root, root / eval_file if eval_file else None)
    funnel = funnel_rows(metrics)
    if funnel:
        keys.append(f"{flow}-funnel")
        create_table_artifact(funnel, key=keys[-1],
                              description="documents per slice after each data funnel step")
    evaluation = eval_rows(metrics)
    if evaluation:
        keys.append(f"{flow}-eval")
        create_table_artifact(evaluation, key=keys[-1],
                              description=f"held-out evaluation per slice ({eval_file})")
    return keys
