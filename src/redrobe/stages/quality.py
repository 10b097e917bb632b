"""`redrobe quality`: Great Expectations gate over the ingest, clean and dedup outputs.

    redrobe quality --params params.yaml --raw data/raw --clean data/interim/clean \
        --input data/interim/dedup --clean-metrics data/metrics/clean.json \
        --dedup-metrics data/metrics/dedup.json --output data/processed/quality \
        --docs data/quality/docs --metrics data/metrics/quality.json

The per-document checks run as partitioned tasks on ``executor_for(params.shared)``
(:mod:`redrobe.quality.partitioned`, scratch files under ``--work-dir``, by default
beside ``--output``); GE evaluates
each suite on a small witness frame of their results.

Writes ``<output>/validation.json`` (every suite's checks, ``success`` at the top; no
timestamps, so reruns are byte-identical) and the GE Data Docs site under ``--docs``
(``index.html``; GE stamps run times into it, so it is kept apart from the gate file
that ``tokenize`` depends on). Both go to MLflow as artifacts. Either may be an
fsspec URL: GE builds locally, then the folders are published, manifests last. Exits
1 naming each failed expectation when the gate fails, which stops ``dvc repro`` and
the Prefect flow before any tokenizer or model is trained.

The human audit of the same outputs (``redrobe audit``, not a DVC stage: it waits on a
person) is :mod:`redrobe.stages.audit`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.documents import atomic_dirs, count_documents, list_shards, partition_of, write_json
from redrobe.errors import GateError, InputError
from redrobe.parallel import Executor, executor_for
from redrobe.partfile import join
from redrobe.progress import countable_total, map_tracked
from redrobe.quality.partitioned import Checks, StageSummary, summarize_stage, summarize_task, witness_frame
from redrobe.quality.suite import Validator, failures, removal_rates, shards_frame, stage_suites
from redrobe.stages import common
from redrobe.storage import join as store_join

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

#: the gate file tokenize reads (redrobe.stages.tokenize.GATE_FILE)
VALIDATION_FILE = "validation.json"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("quality", __doc__.splitlines()[0])
    p.add_argument("--raw", required=True, help="ingest output shards (data/raw)")
    p.add_argument("--clean", required=True, help="clean output shards")
    p.add_argument("--input", required=True, help="deduplicated shards (what moves on)")
    p.add_argument("--clean-metrics", required=True)
    p.add_argument("--dedup-metrics", required=True)
    p.add_argument("--output", required=True, help="directory for validation.json (a path or URL)")
    p.add_argument("--docs", required=True, help="directory for the Data Docs site (a path or URL)")
    common.add_work_dir(p)
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
    """Run every stage's suites on witness frames of partitioned per-shard aggregates."""
    q, slices = params.quality, params.shared.slices
    checks = Checks.of(q, slices, params.shared.batch_docs)
    plan = [("ingest", args.raw, None), ("clean", args.clean, args.clean_metrics),
            ("dedup", args.input, args.dedup_metrics)]
    shards = {stage: _stage_shards(stage, root) for stage, root, _ in plan}
    validator = Validator(docs_dir)
    suites: dict[str, Any] = {}
    with executor_for(params.shared) as executor, \
            common.work_dir(args.work_dir, args.output, "quality") as work:
        for stage, _, metrics_path in plan:
            summary = _summarize(stage, shards[stage], checks, join(str(work), stage), executor)
            rates = removal_rates(_read_metrics(metrics_path), stage, q) if metrics_path else None
            stage_plan = stage_suites(stage, witness_frame(summary, checks), shards_frame(summary.shards),
                                      rates, q, slices, per_slice=summary.per_slice())
            totals = summary.totals(checks)
            suites.update(validator.validate_all(stage_plan, {name: totals for name, _, _ in stage_plan}))
    validator.build_docs()
    partitions = [partition_of(p, args.input) for p in shards["dedup"]]
    return ({"success": all(s["success"] for s in suites.values()), "suites": suites},
            _ledger(summary, partitions))


def _summarize(stage: str, paths: list[Path], checks: Checks, work: str,
               executor: Executor) -> StageSummary:
    """One stage output's aggregates, with a progress line over its shards."""
    docs = countable_total(count_documents, paths)

    def mapper(fn: Any, tasks: Sequence[Any]) -> list[Any]:
        if fn is not summarize_task:
            return executor.map(fn, tasks)
        with common.progress(f"quality {stage}", len(tasks), items_total=docs) as progress:
            return map_tracked(executor, fn, tasks, progress, items=lambda r: r.rows)
    return summarize_stage([str(p) for p in paths], checks, work, mapper, docs or 0)


def _ledger(summary: StageSummary, partitions: Sequence[str]) -> Ledger:
    """The dedup output moves on: every document seen and kept, per partition (a slice,
    or ``<slice>/<language>``) of the shards ``summary`` was made of; empty shards add none."""
    ledger = Ledger()
    for partition, (docs, chars) in zip(partitions, summary.per_shard):
        if not docs:
            continue
        counts = ledger.slices[partition]
        counts.docs_in += docs
        counts.docs_out += docs
        counts.chars_in += chars
        counts.chars_out += chars
    return ledger


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    # GE builds its site in a local folder: an output on object storage is built in a
    # local staging folder and published to it, committed by its manifest last
    with atomic_dirs(args.output, args.docs, build_locally=True) as (out, docs_dir):
        summary, ledger = _validate(params, args, docs_dir)
        write_json(out / VALIDATION_FILE, summary)
    common.log_output(tracker, args.output, "quality", VALIDATION_FILE)
    common.log_output(tracker, args.docs, "quality/data_docs")
    if not summary["success"]:
        raise GateError(f"see {store_join(args.output, VALIDATION_FILE)} and "
                        f"{store_join(args.docs, 'index.html')}:\n  " + "\n  ".join(failures(summary)))
    checks = sum(len(s["checks"]) for s in summary["suites"].values())
    return common.metrics_payload("quality", ledger, success=True, expectations=checks,
                                  suites=len(summary["suites"]))


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("quality", argv, build_parser, run)
