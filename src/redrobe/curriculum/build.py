"""Assemble a buckets directory (the contract in layout.py) from tokenized shards.

Input: the per-document records of :func:`redrobe.curriculum.tokens.tokenize_shard`
and the memory-mapped spill files they point into. Steps, each a plain function:

1. :func:`fit_difficulty` — the configured difficulty score (difficulty.py registry)
   fitted on the training split's statistics; :func:`score_documents` — every
   document's score;
2. :func:`plan_buckets` — quantile edges over the training scores and each bucket's
   members in (score, id) order; :func:`plan_validation` — each slice's validation
   documents in id order;
3. :func:`write_curriculum` — copy token slices into ``bucket-NN.bin`` and
   ``val-<slice>.bin`` (tokens then eos), write ``docs.parquet`` and ``index.json``.

Token arrays are never held in memory: every copy is one document's slice of a
memory-mapped spill file.

    scorer = fit_difficulty("unigram_surprisal", records, spills, counts)
    scores = score_documents(records, spills, scorer)
    index = write_curriculum(out_dir, records, scores, spills, spec, num_buckets, slices,
                             score="unigram_surprisal")
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from redrobe.curriculum.buckets import assign_buckets, bucket_name, quantile_edges
from redrobe.curriculum.difficulty import (
    SCORE_NAME,
    SCORES,
    ScoreOptions,
    Scorer,
    TrainStats,
    bigram_counts,
    fit_scorer,
)
from redrobe.curriculum.layout import (
    DOCS_FILE,
    INDEX_FILE,
    SPLIT_TRAIN,
    SPLIT_VAL,
    bucket_file,
    dtype_name,
    token_dtype,
    val_file,
)
from redrobe.curriculum.tokens import DocRecord, TokenFileWriter
from redrobe.documents import write_json

DOCS_SCHEMA = pa.schema([
    pa.field("id", pa.string()), pa.field("source", pa.string()),
    pa.field("split", pa.string()), pa.field("bucket", pa.int32()),
    pa.field("score", pa.float64()), pa.field("tokens", pa.int64()),
    pa.field("offset", pa.int64()),
])
#: docs.parquet rows buffered before a row group is written
DOCS_ROW_GROUP = 8192


@dataclass(frozen=True)
class TokenSpec:
    """What the index records about the tokenizer."""
    vocab_size: int
    bos_id: int
    eos_id: int


def _doc_tokens(spills: Sequence[np.ndarray], rec: DocRecord) -> np.ndarray:
    return spills[rec.shard][rec.offset:rec.offset + rec.tokens]


def fit_difficulty(name: str, records: Sequence[DocRecord], spills: Sequence[np.ndarray],
                   counts: np.ndarray, opts: ScoreOptions | None = None) -> Scorer:
    """Fit score ``name`` on the training split (``counts``: its unigram counts); the
    bigram reference model is counted here, one training document at a time."""
    stats = TrainStats(counts=counts)
    if name in SCORES and SCORES[name].needs_bigrams:
        train = (_doc_tokens(spills, r) for r in records if r.split == SPLIT_TRAIN)
        stats.bigrams = bigram_counts(train, len(counts))
    return fit_scorer(name, stats, opts)


def score_documents(records: Sequence[DocRecord], spills: Sequence[np.ndarray],
                    scorer: Scorer) -> np.ndarray:
    """Difficulty score of every record (train and val), aligned with ``records``."""
    return np.fromiter((scorer(_doc_tokens(spills, r), r.compression) for r in records),
                       dtype=np.float64, count=len(records))


def plan_buckets(records: Sequence[DocRecord], scores: np.ndarray,
                 num_buckets: int) -> tuple[list[float], list[list[int]]]:
    """Quantile edges and, per bucket, the training record indices in (score, id) order."""
    train = np.array([i for i, r in enumerate(records) if r.split == SPLIT_TRAIN], dtype=np.int64)
    edges = quantile_edges(scores[train], num_buckets)
    members: list[list[int]] = [[] for _ in range(num_buckets)]
    for i, b in zip(train.tolist(), assign_buckets(scores[train], edges).tolist()):
        members[b].append(i)
    for group in members:
        group.sort(key=lambda i: (scores[i], records[i].id))
    return edges, members


def plan_validation(records: Sequence[DocRecord], slices: Sequence[str]) -> dict[str, list[int]]:
    """Per slice (every slice in ``slices``, possibly empty): val record indices by id."""
    plan: dict[str, list[int]] = {s: [] for s in sorted(slices)}
    for i, r in enumerate(records):
        if r.split == SPLIT_VAL:
            plan[r.slice].append(i)
    for group in plan.values():
        group.sort(key=lambda i: records[i].id)
    return plan


class DocsWriter:
    """docs.parquet in bounded row groups (rows are sized by documents, not tokens)."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, DOCS_SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        self._rows.append(row)
        if len(self._rows) >= DOCS_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=DOCS_SCHEMA))
            self._rows = []

    def close(self) -> None:
        self.flush()
        self._writer.close()


def _write_group(out: Path, file: str, members: Sequence[int], records: Sequence[DocRecord],
                 scores: np.ndarray, spills: Sequence[np.ndarray], spec: TokenSpec,
                 docs: DocsWriter, split: str, bucket: int) -> tuple[int, int, Counter]:
    """Write one token file; return (tokens, docs, tokens per slice), eos included."""
    by_slice: Counter = Counter()
    with TokenFileWriter(out / file, token_dtype(spec.vocab_size), spec.eos_id) as writer:
        for i in members:
            rec = records[i]
            offset = writer.append(_doc_tokens(spills, rec))
            by_slice[rec.slice] += rec.tokens + 1
            docs.add(id=rec.id, source=rec.source, split=split, bucket=bucket,
                     score=float(scores[i]), tokens=rec.tokens, offset=offset)
    return writer.tokens, writer.docs, by_slice


def _bucket_entry(k: int, written: tuple[int, int, Counter], members: Sequence[int],
                  scores: np.ndarray, slices: Sequence[str]) -> dict[str, Any]:
    tokens, n_docs, by_slice = written
    name = bucket_name(k)
    return {
        "name": name, "file": bucket_file(name), "tokens": tokens, "docs": n_docs,
        # members are in score order, so the ends are the extremes (null when empty)
        "score_min": float(scores[members[0]]) if members else None,
        "score_max": float(scores[members[-1]]) if members else None,
        "tokens_by_slice": {s: by_slice.get(s, 0) for s in sorted(slices)},
    }


def write_curriculum(out_dir: str | os.PathLike, records: Sequence[DocRecord],
                     scores: np.ndarray, spills: Sequence[np.ndarray], spec: TokenSpec,
                     num_buckets: int, slices: Sequence[str],
                     score: str = SCORE_NAME) -> dict[str, Any]:
    """Write bucket/val token files, docs.parquet and index.json; return the index."""
    out = Path(out_dir)
    edges, buckets = plan_buckets(records, scores, num_buckets)
    docs = DocsWriter(out / DOCS_FILE)
    entries = []
    for k, members in enumerate(buckets):
        written = _write_group(out, bucket_file(bucket_name(k)), members, records, scores,
                               spills, spec, docs, SPLIT_TRAIN, k)
        entries.append(_bucket_entry(k, written, members, scores, slices))
    val = {}
    for name, members in plan_validation(records, slices).items():
        tokens, n_docs, _ = _write_group(out, val_file(name), members, records, scores,
                                         spills, spec, docs, SPLIT_VAL, -1)
        val[name] = {"file": val_file(name), "tokens": tokens, "docs": n_docs,
                     "bytes": sum(records[i].bytes for i in members)}
    docs.close()
    index = {
        "dtype": dtype_name(token_dtype(spec.vocab_size)), "vocab_size": spec.vocab_size,
        "eos_id": spec.eos_id, "bos_id": spec.bos_id, "num_buckets": num_buckets,
        "score": score, "score_edges": edges, "buckets": entries, "val": val,
        "docs_file": DOCS_FILE,
    }
    write_json(out / INDEX_FILE, index)
    return index
