"""`redrobe clean`: Unicode normalization and the published quality rules, per slice.

    redrobe clean --params params.yaml --input data/raw --output data/interim/clean \
        --removed data/interim/removed/clean --quarantine data/interim/quarantine/clean \
        --metrics data/metrics/clean.json

Reads ``params.clean`` (normalization form, rule sets per slice and their thresholds:
Gopher quality / repetition, C4, RedPajama github code rules) and ``params.shared``
(batch_docs, workers). Every raw shard ``<slice>/part-NNNNN.parquet`` gives one shard
of the same name under each of --output (kept documents, normalized, C4-edited),
--removed (the documents as read, with ``reason`` and ``rule_set`` columns) and
--quarantine (documents whose processing raised, as read, with an ``error`` column).
The metrics hold the per-slice accounting (removed_by_reason included), characters
removed per reason, the rule sets each slice ran and per-rule-set totals; the
input → output shard edges are logged as ``lineage/clean.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Clean, Params, as_dict
from redrobe.documents import (ShardWriter, atomic_dir, count_documents, list_shards,
                                read_documents)
from redrobe.errors import InputError
from redrobe.parallel import map_shards
from redrobe.progress import countable_total, documents_seen, map_tracked
from redrobe.stages import common
from redrobe.text.rules import KEPT, REMOVED, Cleaner, CleanStats

REMOVED_COLUMNS = ("reason", "rule_set")
QUARANTINE_COLUMNS = ("error",)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("clean", __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="raw shards (<slice>/part-*.parquet)")
    p.add_argument("--output", required=True, help="directory for the kept documents")
    p.add_argument("--removed", required=True, help="directory for the removed documents")
    p.add_argument("--quarantine", required=True, help="directory for documents that failed")
    return p


@dataclass(frozen=True)
class ShardTask:
    """One raw shard and where its three outputs go (paths and params only: picklable)."""

    slice: str
    input: str
    output: str
    removed: str
    quarantine: str
    clean: Clean
    batch_docs: int


def clean_shard(task: ShardTask) -> tuple[Ledger, CleanStats]:
    """Stream one raw shard through the slice's Cleaner into its three output shards."""
    cleaner = Cleaner.for_slice(task.slice, task.clean)
    ledger, stats = Ledger(), CleanStats()
    stats.start_slice(task.slice, cleaner.rule_set_names)
    with ShardWriter(task.output, task.batch_docs) as kept, \
            ShardWriter(task.removed, task.batch_docs, REMOVED_COLUMNS) as removed, \
            ShardWriter(task.quarantine, task.batch_docs, QUARANTINE_COLUMNS) as quarantine:
        for outcome in cleaner(read_documents(task.input, task.batch_docs)):
            ledger.seen(task.slice, outcome.input_chars)
            if outcome.status == KEPT:
                kept.write(outcome.doc)
                ledger.kept(task.slice, len(outcome.doc.text))
            elif outcome.status == REMOVED:
                removed.write(outcome.doc.with_extra(reason=outcome.reason, rule_set=outcome.rule_set))
                ledger.removed(task.slice, outcome.reason)
            else:
                quarantine.write(outcome.doc.with_extra(error=outcome.error))
                ledger.quarantined(task.slice)
            stats.add(task.slice, outcome)
    return ledger, stats


def run(params: Params, args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards found (expected <slice>/part-*.parquet)")
    rel = [p.relative_to(args.input) for p in shards]
    ledger, stats = Ledger(), CleanStats()
    with atomic_dir(args.output) as out, atomic_dir(args.removed) as removed, \
            atomic_dir(args.quarantine) as quarantine:
        tasks = [ShardTask(slice=r.parent.name, input=str(p), output=str(out / r),
                           removed=str(removed / r), quarantine=str(quarantine / r),
                           clean=params.clean, batch_docs=params.shared.batch_docs)
                 for p, r in zip(shards, rel)]
        progress = common.progress("clean", len(tasks),
                                   items_total=countable_total(count_documents, shards))
        with progress:
            results = map_tracked(map_shards, clean_shard, tasks, params.shared.workers, progress,
                                  items=lambda r: documents_seen(r[0]))
        for shard_ledger, shard_stats in results:
            ledger.merge(shard_ledger)
            stats.merge(shard_stats)
    common.log_lineage(tracker, "clean", [(p, Path(args.output) / r) for p, r in zip(shards, rel)])
    return common.metrics_payload("clean", ledger, params=as_dict(params.clean), shards=len(shards),
                                  **stats.as_dict())


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("clean", argv, build_parser, run, ("shared", "clean"))
