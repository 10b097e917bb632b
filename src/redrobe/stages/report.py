"""`redrobe report`: the Markdown report of the run, with the training curve plot.

    redrobe report --params params.yaml --metrics-dir data/metrics --output data/reports \
        --funnel data/metrics/funnel.csv --eval-slices data/metrics/eval_slices.csv \
        --metrics data/metrics/report.json

Reads every stage's metrics JSON and the pretraining curve from ``--metrics-dir`` and
writes ``<output>/report.md`` and ``<output>/pretrain_curve.png``, plus two CSVs that
``dvc plots show`` draws (dvc.yaml, top-level ``plots``): the data funnel (``--funnel``:
slice, stage, docs, label) and the per-slice evaluation (``--eval-slices``: slice,
model, bits_per_byte, perplexity, label). Its metrics JSON carries ``summary``, the
numbers ``dvc exp show`` compares runs by (documents kept per step, final losses,
mean bits/byte per model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from redrobe.config import Params
from redrobe.documents import atomic_dir, atomic_file
from redrobe.errors import InputError
from redrobe.reporting import (
    EVAL_COLUMNS,
    FUNNEL_COLUMNS,
    eval_table,
    funnel_table,
    key_metrics,
    plot_curve,
    read_curve,
    render_report,
    write_csv,
)
from redrobe.stages import common

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

STAGE_FILES = ("ingest", "clean", "dedup", "quality", "tokenize", "bucket", "pretrain",
               "lora", "eval")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("report", __doc__.splitlines()[0])
    p.add_argument("--metrics-dir", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--funnel", required=True, help="CSV to write: documents per slice and step")
    p.add_argument("--eval-slices", required=True,
                   help="CSV to write: bits/byte and perplexity per slice and model")
    return p


def load_metrics(directory: Path) -> dict[str, Any]:
    metrics = {}
    for name in STAGE_FILES:
        path = directory / f"{name}.json"
        try:
            metrics[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read stage metrics: {exc}") from exc
    return metrics


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    directory = Path(args.metrics_dir)
    metrics = load_metrics(directory)
    curve = read_curve(directory / "pretrain_curve.csv")
    with atomic_dir(args.output) as out:
        plot_curve(curve, out / "pretrain_curve.png", "pretraining (curriculum order)")
        with atomic_file(out / "report.md") as fh:
            fh.write(render_report(metrics, "pretrain_curve.png"))
    for path, columns, rows in ((args.funnel, FUNNEL_COLUMNS, funnel_table(metrics)),
                                (args.eval_slices, EVAL_COLUMNS, eval_table(metrics))):
        with atomic_file(path) as fh:
            write_csv(fh, columns, rows)
        tracker.log_artifact(path, "plots")
    report = Path(args.output) / "report.md"
    tracker.log_artifact(args.output, "report")
    return common.metrics_payload("report", report=str(report), report_bytes=report.stat().st_size,
                                  stages=list(STAGE_FILES), summary=key_metrics(metrics))


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("report", argv, build_parser, run)
