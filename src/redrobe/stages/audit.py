"""`redrobe audit`: the human audit of the pipeline's keep/remove decisions (not a DVC stage).

It waits on a person, so it runs by hand between ``dvc repro`` runs: ``export`` draws a
stratified sample of kept and removed documents for review, ``import`` reads the
reviewer's labels and applies the Wilson gate (the library logic is
:mod:`redrobe.quality.audit`; this module is the glue: arguments, params, files, MLflow).

    redrobe audit export --params params.yaml --clean data/interim/clean \
        --clean-removed data/interim/removed/clean --dedup data/interim/dedup \
        --dedup-removed data/interim/removed/dedup --output data/quality/audit
    redrobe audit import data/quality/audit/sample.csv --output data/quality/audit/result.json

Exits 1 on bad input or a failed gate, 2 on bad params.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from redrobe.config import ConfigError, Params, as_dict, load_params
from redrobe.documents import Status, atomic_dir, write_json
from redrobe.errors import GateError, InputError
from redrobe.quality import audit

if TYPE_CHECKING:
    from redrobe.tracking import Tracker


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redrobe audit",
                                description="human audit of kept and removed documents")
    sub = p.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write a stratified sample for review (CSV + HTML)")
    exp.add_argument("--params", default="params.yaml")
    exp.add_argument("--clean", default="data/interim/clean", help="clean output shards")
    exp.add_argument("--clean-removed", default="data/interim/removed/clean")
    exp.add_argument("--dedup", default="data/interim/dedup", help="dedup output shards")
    exp.add_argument("--dedup-removed", default="data/interim/removed/dedup")
    exp.add_argument("--output", default="data/quality/audit",
                     help="directory for sample.csv, sample.html, strata.json")
    exp.add_argument("--seed", type=int, default=None,
                     help="sampling seed (default: shared.seed; change it for a fresh round)")
    imp = sub.add_parser("import", help="read the reviewer's labels and apply the Wilson gate")
    imp.add_argument("labels", help="the sample CSV with its label column filled in")
    imp.add_argument("--params", default="params.yaml")
    imp.add_argument("--sample", default=None,
                     help="the exported sample.csv the labels belong to (default: "
                          "sample.csv beside LABELS)")
    imp.add_argument("--output", default=None,
                     help="result JSON (default: result.json beside LABELS)")
    return p


def _export(params: Params, args: argparse.Namespace, tracker: Tracker) -> None:
    seed = params.shared.seed if args.seed is None else args.seed
    sources = [audit.Source("clean", Status.KEPT, args.clean),
               audit.Source("clean", Status.REMOVED, args.clean_removed),
               audit.Source("dedup", Status.KEPT, args.dedup),
               audit.Source("dedup", Status.REMOVED, args.dedup_removed)]
    sample, strata = audit.export_sample(sources, params.quality.audit, seed,
                                         params.shared.batch_docs)
    with atomic_dir(args.output) as out:
        audit.write_sample(out, sample, strata, seed)
    tracker.log_artifact(args.output, "quality/audit")
    print(f"redrobe audit: {len(sample)} documents from {len(strata)} strata -> "
          f"{Path(args.output) / audit.SAMPLE_CSV} (open {audit.SAMPLE_HTML} to read them)")


def _import(params: Params, args: argparse.Namespace, tracker: Tracker) -> None:
    labels = Path(args.labels)
    sample = Path(args.sample) if args.sample else labels.with_name(audit.SAMPLE_CSV)
    output = Path(args.output) if args.output else labels.with_name(audit.RESULT_JSON)
    result = audit.gate_result(audit.read_labels(labels, sample), params.quality.audit.target)
    write_json(output, result)
    tracker.log_metrics({"audit": {k: result[k] for k in ("n", "correct", "accuracy",
                                                          "wilson_low", "wilson_high")}})
    tracker.log_artifact(output, "quality/audit")
    tracker.set_tags({"redrobe.audit.passed": result["passed"]})
    summary = (f"label accuracy {result['correct']}/{result['n']} = {result['accuracy']:.4f}, "
               f"Wilson 95% [{result['wilson_low']:.4f}, {result['wilson_high']:.4f}]")
    if not result["passed"]:
        raise GateError(f"{summary}: lower bound below target {result['target']} "
                        f"(see {output})")
    print(f"redrobe audit: {summary} >= target {result['target']} -> {output}")


def main(argv: Sequence[str] | None = None) -> int:
    """`redrobe audit export|import`; exit 1 on bad input or a failed gate, 2 on bad params."""
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print(f"redrobe audit: error: {exc}", file=sys.stderr)
        return 2
    from redrobe import tracking  # imported here: mlflow import is slow and optional

    step = _export if args.command == "export" else _import
    try:
        with tracking.stage_run(f"audit-{args.command}", {"quality": as_dict(params.quality)},
                                params.tracking.experiment) as tracker:
            step(params, args, tracker)
    except InputError as exc:
        print(f"redrobe audit: error: {exc}", file=sys.stderr)
        return 1
    except GateError as exc:
        print(f"redrobe audit: error: audit gate failed: {exc}", file=sys.stderr)
        return 1
    return 0
