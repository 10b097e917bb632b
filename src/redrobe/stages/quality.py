"""`redrobe quality`: Great Expectations gate over the ingest, clean and dedup outputs.

    redrobe quality --params params.yaml --raw data/raw --clean data/interim/clean \
        --input data/interim/dedup --clean-metrics data/metrics/clean.json \
        --dedup-metrics data/metrics/dedup.json --output data/processed/quality \
        --docs data/quality/docs --metrics data/metrics/quality.json

Writes ``<output>/validation.json`` (every suite's checks, ``success`` at the top; no
timestamps, so reruns are byte-identical) and the GE Data Docs site under ``--docs``
(``index.html``; GE stamps run times into it, so it is kept apart from the gate file
that ``tokenize`` depends on). Both go to MLflow as artifacts. Exits 1 naming each
failed expectation when the gate fails, which stops ``dvc repro`` and the Prefect flow
before any tokenizer or model is trained.

The same module holds the human audit round-trip (not a DVC stage: it waits on a
person), dispatched by ``redrobe audit``:

    redrobe audit export --params params.yaml --clean data/interim/clean \
        --clean-removed data/interim/removed/clean --dedup data/interim/dedup \
        --dedup-removed data/interim/removed/dedup --output data/quality/audit
    redrobe audit import data/quality/audit/sample.csv --output data/quality/audit/result.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redrobe.accounting import Ledger
from redrobe.config import ConfigError, Params, as_dict, load_params
from redrobe.documents import atomic_dir, count_documents, list_shards, write_json
from redrobe.errors import GateError, InputError
from redrobe.progress import countable_total
from redrobe.quality import audit
from redrobe.quality.suite import (
    Validator,
    failures,
    removal_rates,
    stage_suites,
    summarize_shards,
)
from redrobe.stages import common

if TYPE_CHECKING:
    from redrobe.tracking import Tracker


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("quality", __doc__.splitlines()[0])
    p.add_argument("--raw", required=True, help="ingest output shards (data/raw)")
    p.add_argument("--clean", required=True, help="clean output shards")
    p.add_argument("--input", required=True, help="deduplicated shards (what moves on)")
    p.add_argument("--clean-metrics", required=True)
    p.add_argument("--dedup-metrics", required=True)
    p.add_argument("--output", required=True, help="directory for validation.json")
    p.add_argument("--docs", required=True, help="directory for the Data Docs site")
    return p


def _read_metrics(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read stage metrics: {exc}") from exc


def _stage_shards(stage: str, root: str) -> list[Path]:
    shards = list_shards(root)
    if not shards:
        raise InputError(f"{root}: no {stage} shards found (expected <slice>/part-*.parquet)")
    return shards


def _validate(params: Params, args: argparse.Namespace, docs_dir: Path) -> tuple[dict, Ledger]:
    """Run every stage's suites (one stage's summaries in memory at a time)."""
    q, slices = params.quality, params.shared.slices
    plan = [("ingest", args.raw, None), ("clean", args.clean, args.clean_metrics),
            ("dedup", args.input, args.dedup_metrics)]
    shards = {stage: _stage_shards(stage, root) for stage, root, _ in plan}
    everything = [s for stage in shards.values() for s in stage]
    validator = Validator(docs_dir)
    suites: dict[str, Any] = {}
    ledger = Ledger()
    with common.progress("quality", len(everything),
                         items_total=countable_total(count_documents, everything)) as progress:
        for stage, _, metrics_path in plan:
            docs, shard_frame = summarize_shards(
                progress.track(shards[stage], items=count_documents),
                params.shared.batch_docs, list(q.signal_ranges), q.extra_columns)
            rates = removal_rates(_read_metrics(metrics_path), stage, q) if metrics_path else None
            suites.update(validator.validate_all(stage_suites(stage, docs, shard_frame, rates,
                                                              q, slices)))
    for source, chars in zip(docs["source"], docs["chars"]):  # the dedup output moves on
        ledger.seen(str(source), int(chars))
        ledger.kept(str(source), int(chars))
    validator.build_docs()
    return {"success": all(s["success"] for s in suites.values()), "suites": suites}, ledger


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    with atomic_dir(args.docs) as docs_dir:
        summary, ledger = _validate(params, args, docs_dir)
    with atomic_dir(args.output) as out:
        write_json(out / "validation.json", summary)
    tracker.log_artifact(Path(args.output) / "validation.json", "quality")
    tracker.log_artifact(args.docs, "quality/data_docs")
    if not summary["success"]:
        raise GateError(f"see {Path(args.output) / 'validation.json'} and "
                        f"{Path(args.docs) / 'index.html'}:\n  " + "\n  ".join(failures(summary)))
    checks = sum(len(s["checks"]) for s in summary["suites"].values())
    return common.metrics_payload("quality", ledger, success=True, expectations=checks,
                                  suites=len(summary["suites"]))


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("quality", argv, build_parser, run, ("shared", "quality"))


# ------------------------------------------------------------------ redrobe audit


def build_audit_parser() -> argparse.ArgumentParser:
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


def _audit_export(params: Params, args: argparse.Namespace, tracker: Tracker) -> None:
    seed = params.shared.seed if args.seed is None else args.seed
    sources = [audit.Source("clean", "kept", args.clean),
               audit.Source("clean", "removed", args.clean_removed),
               audit.Source("dedup", "kept", args.dedup),
               audit.Source("dedup", "removed", args.dedup_removed)]
    sample, strata = audit.export_sample(sources, params.quality.audit, seed,
                                         params.shared.batch_docs)
    with atomic_dir(args.output) as out:
        audit.write_sample(out, sample, strata, seed)
    tracker.log_artifact(args.output, "quality/audit")
    print(f"redrobe audit: {len(sample)} documents from {len(strata)} strata -> "
          f"{Path(args.output) / audit.SAMPLE_CSV} (open {audit.SAMPLE_HTML} to read them)")


def _audit_import(params: Params, args: argparse.Namespace, tracker: Tracker) -> None:
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


def audit_main(argv: Sequence[str] | None = None) -> int:
    """`redrobe audit export|import`; exit 1 on bad input or a failed gate, 2 on bad params."""
    args = build_audit_parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as exc:
        print(f"redrobe audit: error: {exc}", file=sys.stderr)
        return 2
    from redrobe import tracking  # imported here: mlflow import is slow and optional

    step = _audit_export if args.command == "export" else _audit_import
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
