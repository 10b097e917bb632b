"""`redrobe clean`: Unicode normalization and the published quality rules, per slice.

    redrobe clean --params params.yaml --input data/raw --output data/interim/clean \
        --removed data/interim/removed/clean --quarantine data/interim/quarantine/clean \
        --metrics data/metrics/clean.json

Reads ``params.clean`` (normalization form, rule sets / presets / expressions per
slice and their thresholds: Gopher quality / repetition, C4, FineWeb, RedPajama github
code rules, store_signals) and ``params.shared`` (batch_docs, workers). Every raw shard
``<slice>/part-NNNNN.parquet`` gives one shard of the same name under each of --output
(kept documents, normalized, C4-edited), --removed (the documents as read, with
``reason`` and ``rule_set`` columns) and --quarantine (documents whose processing
raised, as read, with an ``error`` column). With ``clean.store_signals`` kept and
removed documents also carry ``quality_signals`` (RedPajama-V2 span JSON of the
normalized text) and ``language``. A language partition ``<slice>/<language>`` (a slice
ingest routed by language) is cleaned with its slice's rule sets, each document judged
by the language ingest gave it, whose ``language`` and ``language_score`` columns stay
on its kept and removed documents. The metrics hold the per-partition accounting
(removed_by_reason included), characters removed per reason, ``removal_by_rule``
(docs, chars and their fractions of the slice's input per reason),
``removal_by_language`` (documents in, kept, removed and quarantined per identified
language and slice, removals by reason; ``clean.language_rules`` judges each document
by its language), the rule sets each slice ran and per-rule-set totals; the input →
output shard edges are logged as ``lineage/clean.json``.

Incremental runs: each shard's three outputs and counts are cached under --cache-dir
(outside DVC's outputs, so ``dvc repro`` does not delete it), keyed by the raw shard's
sha256, the slice, ``params.clean``, ``shared.batch_docs`` and the code of the text
rules (:mod:`redrobe.shardcache`). Adding a raw shard cleans only that shard; the
others are restored byte for byte. Without --cache-dir nothing is cached. An entry
holds the three Parquet files and the counts as JSON (never pickle: reading an entry
runs no code); one that is damaged, malformed or disagrees with itself (rows in a file
!= its count) is a miss, and the shard is cleaned again.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import pkgutil
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

import redrobe.text
from redrobe import accounting, documents
from redrobe.accounting import Ledger, SliceCounts
from redrobe.config import Clean, Params, as_dict
from redrobe.documents import (
    ShardWriter,
    Status,
    atomic_dirs,
    base_slice,
    count_documents,
    list_shards,
    partition_of,
    read_documents,
    split_partition,
)
from redrobe.errors import InputError
from redrobe.parallel import executor_for
from redrobe.progress import countable_total, documents_seen, map_tracked
from redrobe.shardcache import ShardCache, code_digest, pack_files, split_files, unpack_files
from redrobe.stages import common
from redrobe.storage import location, relative
from redrobe.text.rules import LANGUAGE_COLUMNS, SIGNAL_COLUMNS, Cleaner, CleanStats

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

REMOVED_COLUMNS = ("reason", "rule_set")
QUARANTINE_COLUMNS = ("error",)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("clean", __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="raw shards (<slice>/part-*.parquet)")
    p.add_argument("--output", required=True, help="directory for the kept documents")
    p.add_argument("--removed", required=True, help="directory for the removed documents")
    p.add_argument("--quarantine", required=True, help="directory for documents that failed")
    p.add_argument("--cache-dir", default="",
                   help="per-shard cache for incremental runs (dvc.yaml: .redrobe/cache/clean; "
                        "default '' = off)")
    return p


@dataclass(frozen=True)
class ShardTask:
    """One raw shard and where its three outputs go (paths and params only: picklable);
    ``slice`` is its partition (a slice, or ``<slice>/<language>``)."""

    slice: str
    input: str
    output: str
    removed: str
    quarantine: str
    clean: Clean
    batch_docs: int
    cache: ShardCache | None = None

    @property
    def outputs(self) -> tuple[str, str, str]:
        return self.output, self.removed, self.quarantine


def clean_cache(root: str, task: ShardTask) -> ShardCache:
    """The cache for ``task``'s slice: the rules differ per slice, so the slice is in the key."""
    text_modules = [sys.modules[__name__], documents, accounting]
    for info in pkgutil.iter_modules(redrobe.text.__path__, "redrobe.text."):
        text_modules.append(importlib.import_module(info.name))
    # library versions that change output bytes: the Parquet writer, the language model
    # and the stop-word lists
    versions = ",".join(f"{d}={importlib.metadata.version(d)}"
                        for d in ("pyarrow", "py3langid", "stopwordsiso"))
    params = {"slice": task.slice, "clean": as_dict(task.clean), "batch_docs": task.batch_docs}
    return ShardCache(root, params, code_digest(*text_modules, version=versions))


def clean_shard(task: ShardTask) -> tuple[Ledger, CleanStats, bool]:
    """Clean one raw shard, or restore its outputs and counts from the cache (``True``)."""
    if task.cache is None:
        return (*_clean_shard(task), False)
    # a fresh result's files are already written (None); a cached one brings their bytes
    result: tuple[Ledger, CleanStats, list[bytes] | None]
    result, hit = task.cache.cached(
        task.input, lambda: (*_clean_shard(task), None),
        encode=lambda r: pack_files(task.outputs, encode_counts(r[0], r[1])),
        decode=lambda payload: _decode_entry(payload, len(task.outputs)))
    ledger, stats, blobs = result
    if blobs is not None:
        unpack_files(blobs, task.outputs)
    return ledger, stats, hit


def _decode_entry(payload: bytes, n_files: int) -> tuple[Ledger, CleanStats, list[bytes]]:
    """A cache entry's files and counts; ValueError (a miss) unless the files are Parquet
    whose row counts are the ledger's kept, removed and quarantined documents."""
    blobs, tail = split_files(payload, n_files)
    ledger, stats = decode_counts(tail)
    totals = ledger.as_dict()["total"]
    expected = (totals["out"], totals["removed"], totals["quarantined"])
    rows = tuple(pq.ParquetFile(pa.BufferReader(blob)).metadata.num_rows for blob in blobs)
    if rows != expected:
        raise ValueError(f"cached files hold {rows} rows, the counts say {expected}")
    return ledger, stats, blobs


# ----------------------------------------------------------------------------- counts as JSON

_SLICE_FIELDS = ("docs_in", "docs_out", "quarantined", "chars_in", "chars_out")
_STATS_COUNTERS = ("chars_removed", "docs_removed", "rule_set_totals", "language_docs", "language_reasons")


def encode_counts(ledger: Ledger, stats: CleanStats) -> bytes:
    """One shard's ledger and clean stats as canonical JSON (the cache entry's tail)."""
    slices = {name: {**{f: getattr(c, f) for f in _SLICE_FIELDS}, "removed": dict(c.removed)}
              for name, c in ledger.slices.items()}
    counters = {attr: {k: dict(v) for k, v in getattr(stats, attr).items()}
                for attr in _STATS_COUNTERS}
    payload = {"ledger": slices, "rule_sets_by_slice": stats.rule_sets_by_slice, **counters}
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_counts(data: bytes) -> tuple[Ledger, CleanStats]:
    """The inverse of :func:`encode_counts`; raises (ValueError, KeyError) on any other
    shape or type, which the cache counts as a miss."""
    payload = _mapping(json.loads(data))
    ledger = Ledger()
    for name, entry in _mapping(payload["ledger"]).items():
        entry = _mapping(entry)
        if set(entry) != {*_SLICE_FIELDS, "removed"}:
            raise ValueError(f"ledger slice {name!r}: unexpected fields {sorted(entry)}")
        ledger.slices[name] = SliceCounts(**{f: _count(entry[f]) for f in _SLICE_FIELDS},
                                          removed=_counter(entry["removed"]))
    stats = CleanStats()
    for name, rules in _mapping(payload["rule_sets_by_slice"]).items():
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ValueError(f"rule sets of {name!r} are not a list of names")
        stats.rule_sets_by_slice[name] = rules
    for attr in _STATS_COUNTERS:
        setattr(stats, attr, defaultdict(Counter, {k: _counter(v)
                                                   for k, v in _mapping(payload[attr]).items()}))
    return ledger, stats


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _counter(value: Any) -> Counter:
    return Counter({key: _count(n) for key, n in _mapping(value).items()})


def _clean_shard(task: ShardTask) -> tuple[Ledger, CleanStats]:
    """Stream one raw shard through its slice's Cleaner into its three output shards."""
    cleaner = Cleaner.for_slice(base_slice(task.slice), task.clean)
    ledger, stats = Ledger(), CleanStats()
    stats.start_slice(task.slice, cleaner.rule_set_names)
    signal_columns: tuple[str, ...] = SIGNAL_COLUMNS if cleaner.store_signals else ()
    if split_partition(task.slice)[1] is not None:   # routed: the language columns stay on
        signal_columns = tuple(dict.fromkeys(signal_columns + LANGUAGE_COLUMNS))
    with ShardWriter(task.output, task.batch_docs, signal_columns) as kept, \
            ShardWriter(task.removed, task.batch_docs, REMOVED_COLUMNS + signal_columns) as removed, \
            ShardWriter(task.quarantine, task.batch_docs, QUARANTINE_COLUMNS) as quarantine:
        for outcome in cleaner(read_documents(task.input, task.batch_docs)):
            ledger.seen(task.slice, outcome.input_chars)
            if outcome.status == Status.KEPT:
                kept.write(outcome.doc.with_extra(**outcome.columns))
                ledger.kept(task.slice, len(outcome.doc.text))
            elif outcome.status == Status.REMOVED:
                assert outcome.reason is not None  # what REMOVED means
                removed.write(outcome.doc.with_extra(reason=outcome.reason, rule_set=outcome.rule_set,
                                                     **outcome.columns))
                ledger.removed(task.slice, outcome.reason)
            else:
                quarantine.write(outcome.doc.with_extra(error=outcome.error))
                ledger.quarantined(task.slice)
            stats.add(task.slice, outcome)
    return ledger, stats


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards found (expected <slice>/part-*.parquet)")
    rel = [relative(p, args.input) for p in shards]
    ledger, stats = Ledger(), CleanStats()
    with atomic_dirs(args.output, args.removed, args.quarantine) as (out, removed, quarantine):
        tasks = [ShardTask(slice=partition_of(p, args.input), input=str(p), output=str(out / r),
                           removed=str(removed / r), quarantine=str(quarantine / r),
                           clean=params.clean, batch_docs=params.shared.batch_docs)
                 for p, r in zip(shards, rel)]
        if args.cache_dir:
            tasks = [replace(t, cache=clean_cache(args.cache_dir, t)) for t in tasks]
        progress = common.progress("clean", len(tasks),
                                   items_total=countable_total(count_documents, shards))
        with progress:
            results = map_tracked(executor_for(params.shared), clean_shard, tasks, progress,
                                  items=lambda r: documents_seen(r[0]))
        for shard_ledger, shard_stats, _ in results:
            ledger.merge(shard_ledger)
            stats.merge(shard_stats)
    reused = sum(hit for *_, hit in results)
    common.log_lineage(tracker, "clean", [(p, location(args.output) / r) for p, r in zip(shards, rel)],
                       committed=(args.input, args.output))
    return common.metrics_payload("clean", ledger, params=as_dict(params.clean), shards=len(shards),
                                  cache={"shards_cleaned": len(shards) - reused, "shards_reused": reused},
                                  removal_by_rule=stats.removal_by_rule(ledger.as_dict()),
                                  removal_by_language=stats.removal_by_language(ledger.as_dict()),
                                  **stats.as_dict())


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("clean", argv, build_parser, run)
