"""The bucket stage's global step as partitioned tasks: no process holds the corpus.

:func:`build_partitioned` writes the same buckets directory as the one-process
:func:`redrobe.curriculum.build.write_curriculum` (every file byte-identical), but each
step is a map of small tasks that exchange files under ``work`` and return a few KB:

1. **tokenize**, one task per shard: its spill file, its kept documents' records
   (``records/*.parquet``), its removed documents and its training unigram counts.
2. **bigrams** (``reference_ppl`` only), one task per shard: its training bigram counts
   (nonzero slots); **fit**, one task: the summed statistics the scores need.
3. **score**, one task per shard: every record's score, and the training scores as
   sorted keys (:mod:`redrobe.curriculum.select`).
4. **quantiles**: the bucket edges from the exact order statistics numpy's quantiles
   use (:func:`redrobe.curriculum.buckets.edge_ranks`), plus every
   ``partition_docs``-th score as an extra boundary; each range of scores between two
   boundaries is one training partition, inside one bucket. Each slice's validation
   documents are one more partition.
5. **shuffle**, one task per shard: its records, fixed-width, written grouped by
   partition (:mod:`redrobe.partfile`).
6. **sort**, one task per partition: its records in (score, id) order (validation: id
   order), their tokens copied from the spill files, one spill open at a time, into the
   partition's token file.
7. **assemble**, one task: partition files concatenated in order into ``bucket-NN.bin``
   / ``val-<slice>.bin``, ``docs.parquet``, ``removed.parquet`` and ``index.json``.

Memory: a sort task holds its partition's records (about ``partition_docs``, more only
when that many training documents tie on one score; a validation partition holds its
slice's validation records); every other task one shard's records, or a constant.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from redrobe.accounting import Ledger
from redrobe.curriculum.buckets import assign_buckets, bucket_name, edge_ranks, edges_from_order_stats
from redrobe.curriculum.build import DocsWriter, TokenSpec
from redrobe.curriculum.difficulty import (
    SCORES,
    ScoreOptions,
    TrainStats,
    bigram_counts,
    fit_scorer,
)
from redrobe.curriculum.layout import (
    DOCS_FILE,
    INDEX_FILE,
    REMOVED_FILE,
    SPLIT_TRAIN,
    SPLIT_VAL,
    bucket_file,
    dtype_name,
    memmap_tokens,
    token_dtype,
    val_file,
)
from redrobe.curriculum.select import Mapper, select_ranks, write_keys
from redrobe.curriculum.tokens import ShardTask, ShardTokens, tokenized
from redrobe.documents import ShardWriter, read_documents, write_json
from redrobe.errors import InputError
from redrobe.partfile import read_partition, write_partitioned

#: training documents per sort partition (the bound on a sort task's records)
PARTITION_DOCS = 1 << 20
#: the folders of ``work``, one per kind of file the steps exchange
KINDS = ("records", "counts", "removed", "bigrams", "scores", "keys", "shuffle", "rows", "tokens")
RECORD_COLUMNS = ("id", "source", "split", "offset", "tokens", "bytes", "compression")


def _record_dtype(id_width: int) -> np.dtype:
    """A document on its way to its partition (``id`` padded; ``id_len`` restores it)."""
    return np.dtype([("score", "<f8"), ("shard", "<i8"), ("offset", "<i8"), ("tokens", "<i8"),
                     ("bytes", "<i8"), ("out", "<i8"), ("source", "<i4"), ("slice", "<i4"),
                     ("id_len", "<i4"), ("id", f"S{max(id_width, 1)}")])


@dataclass(frozen=True)
class Work:
    """Where the steps exchange files (a local directory)."""

    root: str

    def path(self, kind: str, n: int, ext: str) -> str:
        return str(Path(self.root) / kind / f"{n:06d}.{ext}")


# ----------------------------------------------------------------------------- 1. tokenize

@dataclass(frozen=True)
class TokenizeTask:
    shard: ShardTask
    work: Work

    @property
    def name(self) -> str:
        return self.shard.shard


@dataclass
class ShardSummary:
    """What the driver keeps of a shard: counts, never documents."""

    ledger: Ledger
    id_width: int = 0
    sources: set[str] = field(default_factory=set)
    removed: int = 0


def tokenize_task(task: TokenizeTask) -> ShardSummary:
    st = task.shard
    result = ShardTokens(task=st, counts=np.zeros(st.vocab_size, dtype=np.int64))
    summary = ShardSummary(result.ledger)
    rows: dict[str, list[Any]] = {c: [] for c in RECORD_COLUMNS}
    with ShardWriter(task.work.path("removed", st.index, "parquet"), st.batch_docs,
                     ("reason",)) as removed:
        for rec in tokenized(st, result):
            for c in RECORD_COLUMNS:
                rows[c].append(getattr(rec, c))
            summary.id_width = max(summary.id_width, len(rec.id.encode("utf-8")))
            summary.sources.add(rec.source)
            _drain(result, removed)
        _drain(result, removed)
        summary.removed = removed.count
    pq.write_table(pa.table(rows, schema=_RECORDS), task.work.path("records", st.index, "parquet"))
    np.save(task.work.path("counts", st.index, "npy"), result.counts)
    return summary


_RECORDS = pa.schema([("id", pa.string()), ("source", pa.string()), ("split", pa.string()),
                      ("offset", pa.int64()), ("tokens", pa.int64()), ("bytes", pa.int64()),
                      ("compression", pa.float64())])


def _drain(result: ShardTokens, out: ShardWriter) -> None:
    out.write_all(result.removed)
    result.removed.clear()


def _records(work: Work, shard: int) -> pa.Table:
    return pq.read_table(work.path("records", shard, "parquet"))


def _spill(task: ShardTask) -> np.ndarray:
    return memmap_tokens(task.spill, token_dtype(task.vocab_size))


def _train_tokens(table: pa.Table, spill: np.ndarray) -> Any:
    for split, offset, tokens in zip(table["split"].to_pylist(), table["offset"].to_pylist(),
                                     table["tokens"].to_pylist()):
        if split == SPLIT_TRAIN:
            yield spill[offset:offset + tokens]


# ----------------------------------------------------------------------------- 2. fit

@dataclass(frozen=True)
class BigramTask:
    shard: ShardTask
    work: Work

    @property
    def name(self) -> str:
        return self.shard.shard


def bigram_task(task: BigramTask) -> int:
    """The shard's training bigram counts, nonzero slots only; returns how many."""
    spill = _spill(task.shard)
    table, left = bigram_counts(_train_tokens(_records(task.work, task.shard.index), spill),
                                task.shard.vocab_size)
    del spill   # closes the memory map
    slots = np.flatnonzero(table)
    np.savez(task.work.path("bigrams", task.shard.index, "npz"), slots=slots,
             counts=table[slots], left=left)
    return len(slots)


@dataclass(frozen=True)
class FitTask:
    work: Work
    vocab_size: int
    shards: tuple[int, ...]     # the shard indices
    bigrams: bool

    @property
    def name(self) -> str:
        return "fit"


def fit_task(task: FitTask) -> None:
    """Sum the shards' counts (and bigrams) into ``stats.npz``, one file at a time."""
    counts = np.zeros(task.vocab_size, dtype=np.int64)
    for i in task.shards:
        counts += np.load(task.work.path("counts", i, "npy"))
    stats = {"counts": counts}
    if task.bigrams:
        table, left = bigram_counts([], task.vocab_size)
        for i in task.shards:
            with np.load(task.work.path("bigrams", i, "npz")) as part:
                table[part["slots"]] += part["counts"]
                left += part["left"]
        stats.update(table=table, left=left)
    with open(Path(task.work.root) / "stats.npz", "wb") as fh:
        np.savez(fh, **stats)   # type: ignore[arg-type]  # numpy's stub reads **kwds as allow_pickle


def _load_stats(work: Work) -> TrainStats:
    with np.load(Path(work.root) / "stats.npz") as f:
        bigrams = (f["table"], f["left"]) if "table" in f else None
        return TrainStats(counts=f["counts"], bigrams=bigrams)


# ----------------------------------------------------------------------------- 3. score

@dataclass(frozen=True)
class ScoreTask:
    shard: ShardTask
    work: Work
    score: str
    options: ScoreOptions

    @property
    def name(self) -> str:
        return self.shard.shard


def score_task(task: ScoreTask) -> int:
    """Score every record of the shard; store the training scores as sorted keys."""
    scorer = fit_scorer(task.score, _load_stats(task.work), task.options)
    table = _records(task.work, task.shard.index)
    spill = _spill(task.shard)
    scores = np.fromiter(
        (scorer(spill[o:o + n], c) for o, n, c in zip(table["offset"].to_pylist(),
                                                      table["tokens"].to_pylist(),
                                                      table["compression"].to_pylist())),
        dtype=np.float64, count=table.num_rows)
    del spill
    np.save(task.work.path("scores", task.shard.index, "npy"), scores)
    train = np.asarray(table["split"].to_pylist(), dtype=object) == SPLIT_TRAIN
    return write_keys(task.work.path("keys", task.shard.index, "keys"), scores[train])


# ----------------------------------------------------------------------------- 4. quantiles

@dataclass(frozen=True)
class Partitions:
    """Training partitions split at ``bounds`` (like buckets at their edges), then one
    validation partition per slice."""

    edges: tuple[float, ...]
    bounds: tuple[float, ...]
    slices: tuple[str, ...]

    @property
    def train(self) -> int:
        return len(self.bounds) + 1

    @property
    def count(self) -> int:
        return self.train + len(self.slices)

    def bucket(self, part: int) -> int:
        """The bucket of training partition ``part`` (edges are among the bounds)."""
        if part == 0:
            return 0
        return int(np.searchsorted(np.asarray(self.edges), self.bounds[part - 1], side="right"))


def plan_partitions(files: Sequence[str], n_train: int, num_buckets: int, slices: Sequence[str],
                    mapper: Mapper, partition_docs: int = PARTITION_DOCS) -> Partitions:
    """Bucket edges equal to ``quantile_edges`` of all training scores, and the bounds."""
    below, above, gamma = edge_ranks(n_train, num_buckets) if num_buckets > 1 else \
        (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    extra = list(range(partition_docs, n_train, partition_docs))
    wanted = sorted(set(below.tolist()) | set(above.tolist()) | set(extra))
    value = dict(zip(wanted, select_ranks(files, wanted, mapper))) if wanted else {}
    edges = edges_from_order_stats([value[r] for r in below.tolist()],
                                   [value[r] for r in above.tolist()], gamma)
    bounds = sorted(set(edges) | {value[r] for r in extra})
    return Partitions(tuple(edges), tuple(bounds), tuple(sorted(slices)))


# ----------------------------------------------------------------------------- 5. shuffle

@dataclass(frozen=True)
class ShuffleTask:
    shard: ShardTask
    work: Work
    parts: Partitions
    sources: tuple[str, ...]
    id_width: int

    @property
    def name(self) -> str:
        return self.shard.shard


def shuffle_task(task: ShuffleTask) -> list[int]:
    """Write the shard's records grouped by partition; return the partitions it feeds."""
    table = _records(task.work, task.shard.index)
    ids = [i.encode("utf-8") for i in table["id"].to_pylist()]
    rec = np.zeros(table.num_rows, _record_dtype(task.id_width))
    rec["score"] = np.load(task.work.path("scores", task.shard.index, "npy"))
    rec["shard"] = task.shard.index
    for c in ("offset", "tokens", "bytes"):
        rec[c] = table[c].to_numpy()
    lookup = {s: i for i, s in enumerate(task.sources)}
    rec["source"] = [lookup[s] for s in table["source"].to_pylist()]
    # an empty shard (a partition clean or dedup emptied) counts under no slice: it has
    # no record to place, and its slice may be in no ledger
    rec["slice"] = task.parts.slices.index(task.shard.slice) if len(rec) else 0
    rec["id_len"] = [len(i) for i in ids]
    rec["id"] = ids
    train = np.asarray(table["split"].to_pylist(), dtype=object) == SPLIT_TRAIN
    part = np.where(train, assign_buckets(rec["score"], task.parts.bounds),
                    task.parts.train + rec["slice"])
    write_partitioned(task.work.path("shuffle", task.shard.index, "part"), rec, part,
                      task.parts.count)
    return sorted(set(part.tolist()))


# ----------------------------------------------------------------------------- 6. sort

@dataclass(frozen=True)
class SortTask:
    part: int
    work: Work
    shards: tuple[ShardTask, ...]
    parts: Partitions
    id_width: int
    eos_id: int

    @property
    def name(self) -> str:
        return f"partition {self.part}"


def sort_task(task: SortTask) -> dict[str, Any]:
    """Write the partition's documents in curriculum order to its token and row files."""
    dtype = _record_dtype(task.id_width)
    rec = np.concatenate([read_partition(task.work.path("shuffle", s.index, "part"), dtype, task.part)
                          for s in task.shards] + [np.empty(0, dtype)])
    keys = (rec["offset"], rec["shard"], rec["id_len"], rec["id"])
    rec = rec[np.lexsort(keys + ((rec["score"],) if task.part < task.parts.train else ()))]
    ends = np.cumsum(rec["tokens"] + 1)
    rec["out"] = ends - rec["tokens"] - 1
    _copy_tokens(task, rec, int(ends[-1]) if len(rec) else 0)
    write_partitioned(task.work.path("rows", task.part, "part"), rec, np.zeros(len(rec), np.int64), 1)
    by_slice = np.bincount(rec["slice"], weights=rec["tokens"] + 1, minlength=len(task.parts.slices))
    return {"tokens": int(ends[-1]) if len(rec) else 0, "docs": len(rec),
            "score_min": float(rec["score"][0]) if len(rec) else None,
            "score_max": float(rec["score"][-1]) if len(rec) else None,
            "bytes": int(rec["bytes"].sum()), "tokens_by_slice": by_slice.astype(np.int64).tolist()}


def _copy_tokens(task: SortTask, rec: np.ndarray, length: int) -> None:
    """Each document's tokens, then eos, at its ``out`` offset; one spill open at a time."""
    path = Path(task.work.path("tokens", task.part, "bin"))
    dtype = token_dtype(task.shards[0].vocab_size)
    if not length:
        path.write_bytes(b"")
        return
    out = np.memmap(path, dtype=dtype, mode="w+", shape=(length,))
    out[rec["out"] + rec["tokens"]] = task.eos_id
    by_index = {s.index: s for s in task.shards}
    for shard in np.unique(rec["shard"]).tolist():
        spill = _spill(by_index[shard])
        for o, n, at in rec[rec["shard"] == shard][["offset", "tokens", "out"]].tolist():
            out[at:at + n] = spill[o:o + n]
        del spill
    out.flush()
    del out


# ----------------------------------------------------------------------------- 7. assemble

@dataclass(frozen=True)
class AssembleTask:
    out: str
    work: Work
    parts: Partitions
    found: tuple[dict[str, Any], ...]     # what each sort task returned
    sources: tuple[str, ...]
    id_width: int
    spec: TokenSpec
    score: str
    shards: tuple[int, ...]     # the shard indices, in order
    batch_docs: int

    @property
    def name(self) -> str:
        return "assemble"


def assemble_task(task: AssembleTask) -> dict[str, Any]:
    """Concatenate the partitions into the buckets directory; return the index."""
    out, parts = Path(task.out), task.parts
    docs = DocsWriter(out / DOCS_FILE)
    groups: dict[int, list[int]] = {}
    for p in range(parts.train):
        groups.setdefault(parts.bucket(p), []).append(p)
    entries = []
    for k in range(len(parts.edges) + 1):
        members = groups.get(k, [])
        _concat(task, members, out / bucket_file(bucket_name(k)), docs, SPLIT_TRAIN, k)
        entries.append(_entry(task, k, members))
    val = {}
    for i, name in enumerate(parts.slices):
        p = parts.train + i
        _concat(task, [p], out / val_file(name), docs, SPLIT_VAL, -1)
        found = task.found[p]
        val[name] = {"file": val_file(name), "tokens": found["tokens"], "docs": found["docs"],
                     "bytes": found["bytes"]}
    docs.close()
    _removed(task)
    index = {
        "dtype": dtype_name(token_dtype(task.spec.vocab_size)), "vocab_size": task.spec.vocab_size,
        "eos_id": task.spec.eos_id, "bos_id": task.spec.bos_id, "num_buckets": len(parts.edges) + 1,
        "score": task.score, "score_edges": list(parts.edges), "buckets": entries, "val": val,
        "docs_file": DOCS_FILE,
    }
    write_json(out / INDEX_FILE, index)
    return index


def _concat(task: AssembleTask, members: Sequence[int], path: Path, docs: DocsWriter, split: str,
            bucket: int) -> None:
    base = 0
    with open(path, "wb") as fh:
        for p in members:
            with open(task.work.path("tokens", p, "bin"), "rb") as src:
                shutil.copyfileobj(src, fh)
            rows = read_partition(task.work.path("rows", p, "part"), _record_dtype(task.id_width), 0)
            for r in rows.tolist():
                score, _, _, tokens, _, at, source, _, id_len, raw = r
                docs.add(id=raw.ljust(id_len, b"\0").decode("utf-8"), source=task.sources[source],
                         split=split, bucket=bucket, score=score, tokens=tokens, offset=base + at)
            base += task.found[p]["tokens"]


def _entry(task: AssembleTask, k: int, members: Sequence[int]) -> dict[str, Any]:
    found = [task.found[p] for p in members if task.found[p]["docs"]]
    by_slice = np.zeros(len(task.parts.slices), np.int64)
    for f in found:
        by_slice += np.asarray(f["tokens_by_slice"], np.int64)
    name = bucket_name(k)
    return {
        "name": name, "file": bucket_file(name), "tokens": sum(f["tokens"] for f in found),
        "docs": sum(f["docs"] for f in found),
        "score_min": found[0]["score_min"] if found else None,
        "score_max": found[-1]["score_max"] if found else None,
        "tokens_by_slice": {s: int(by_slice[i]) for i, s in enumerate(task.parts.slices)},
    }


def _removed(task: AssembleTask) -> None:
    with ShardWriter(Path(task.out) / REMOVED_FILE, task.batch_docs, ("reason",)) as removed:
        for i in task.shards:
            removed.write_all(read_documents(task.work.path("removed", i, "parquet"), task.batch_docs))


# ----------------------------------------------------------------------------- driver

@dataclass
class Built:
    """What the stage needs after the build: accounting, the index, lineage."""

    ledger: Ledger
    index: dict[str, Any]
    files_by_shard: dict[int, set[str]]
    partitions: int = 0
    bounds: tuple[float, ...] = ()


def build_partitioned(out: Path, shards: Sequence[ShardTask], spec: TokenSpec, score: str,
                      options: ScoreOptions, num_buckets: int, work: Work, mapper: Mapper,
                      batch_docs: int, partition_docs: int = PARTITION_DOCS,
                      input_name: str = "input") -> Built:
    """Steps 1-7 for ``shards`` (tasks numbered 0..S-1, spill files under ``work``);
    ``input_name`` names the corpus in the error raised when nothing can be bucketed."""
    for kind in KINDS:
        (Path(work.root) / kind).mkdir(parents=True, exist_ok=True)
    summaries = mapper(tokenize_task, [TokenizeTask(s, work) for s in shards])
    ledger = Ledger()
    for s in summaries:   # task order: deterministic whatever the worker count
        ledger.merge(s.ledger)
    ledger.check()
    _fit(shards, work, spec, score, mapper)
    n_train = sum(mapper(score_task, [ScoreTask(s, work, score, options) for s in shards]))
    if not n_train:
        raise InputError(f"{input_name}: no training documents with tokens to bucket")
    parts = plan_partitions([work.path("keys", s.index, "keys") for s in shards], n_train,
                            num_buckets, sorted(ledger.slices), mapper, partition_docs)
    sources = tuple(sorted(set().union(*(s.sources for s in summaries))))
    width = max(s.id_width for s in summaries)
    fed = mapper(shuffle_task, [ShuffleTask(s, work, parts, sources, width) for s in shards])
    found = mapper(sort_task, [SortTask(p, work, tuple(shards), parts, width, spec.eos_id)
                               for p in range(parts.count)])
    (index,) = mapper(assemble_task, [AssembleTask(str(out), work, parts, tuple(found), sources,
                                                   width, spec, score, tuple(s.index for s in shards),
                                                   batch_docs)])
    return Built(ledger, index, _files_by_shard(parts, fed, summaries), parts.count, parts.bounds)


def _fit(shards: Sequence[ShardTask], work: Work, spec: TokenSpec, score: str,
         mapper: Mapper) -> None:
    bigrams = score in SCORES and SCORES[score].needs_bigrams
    if bigrams:
        mapper(bigram_task, [BigramTask(s, work) for s in shards])
    mapper(fit_task, [FitTask(work, spec.vocab_size, tuple(s.index for s in shards), bigrams)])


def _files_by_shard(parts: Partitions, fed: Sequence[list[int]],
                    summaries: Sequence[ShardSummary]) -> dict[int, set[str]]:
    """For each input shard: the output files its documents went to."""
    files: dict[int, set[str]] = {}
    for i, (feeds, summary) in enumerate(zip(fed, summaries)):
        names = {bucket_file(bucket_name(parts.bucket(p))) if p < parts.train
                 else val_file(parts.slices[p - parts.train]) for p in feeds}
        if summary.removed:
            names.add(REMOVED_FILE)
        if names:
            files[i] = names
    return files

