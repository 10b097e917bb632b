"""`redrobe quality`: the Great Expectations gate over the deduplicated shards.

    redrobe quality --params params.yaml --input data/interim/dedup \
        --clean-metrics data/metrics/clean.json --dedup-metrics data/metrics/dedup.json \
        --output data/processed/quality --metrics data/metrics/quality.json

Writes ``<output>/validation.json`` (the suites' results, ``success`` at the top) and
exits 1 naming each failed expectation when the gate fails, which stops ``dvc repro``
and the Prefect flow before any tokenizer or model is trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.documents import atomic_dir, count_documents, list_shards, write_json
from redrobe.errors import GateError, InputError
from redrobe.progress import countable_total
from redrobe.quality.suite import failures, removal_rates, run_suites, summarize_shards
from redrobe.stages import common


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("quality", __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="deduplicated shards")
    p.add_argument("--clean-metrics", required=True)
    p.add_argument("--dedup-metrics", required=True)
    p.add_argument("--output", required=True, help="directory for validation.json")
    return p


def _read_metrics(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read stage metrics: {exc}") from exc


def run(params: Params, args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards found (expected <slice>/part-*.parquet)")
    total_docs = countable_total(count_documents, shards)
    with common.progress("quality", len(shards), items_total=total_docs) as progress:
        docs, shard_frame = summarize_shards(progress.track(shards, items=count_documents),
                                             params.shared.batch_docs)
    rates = removal_rates({"clean": _read_metrics(args.clean_metrics),
                           "dedup": _read_metrics(args.dedup_metrics)}, params.quality)
    summary = run_suites(docs, shard_frame, rates, params.quality, params.shared.slices)
    with atomic_dir(args.output) as out:
        write_json(out / "validation.json", summary)
    tracker.log_artifact(Path(args.output) / "validation.json", "quality")
    if not summary["success"]:
        raise GateError(f"see {Path(args.output) / 'validation.json'}:\n  "
                        + "\n  ".join(failures(summary)))
    ledger = Ledger()
    for source, chars in zip(docs["source"], docs["chars"]):
        ledger.seen(source, int(chars))
        ledger.kept(source, int(chars))
    checks = sum(len(s["checks"]) for s in summary["suites"].values())
    return common.metrics_payload("quality", ledger, success=True, expectations=checks,
                                  removal_rates=rates.to_dict(orient="records"))


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("quality", argv, build_parser, run, ("shared", "quality"))
