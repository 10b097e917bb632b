"""Which documents each training step saw, and validation tokens per curriculum bucket.

``docs.parquet`` (contract: :mod:`redrobe.curriculum.layout`) gives every written
document's file offset, so a window ``[start, start + window)`` of ``bucket-NN.bin``
maps back to the documents it overlaps (:class:`DocTable`). :func:`data_order` walks a
schedule's ``rows(step, micro)`` (:mod:`redrobe.train.data`) and yields one row per
(step, micro, lane, document overlapped):

    step, micro, lane, bucket, doc_id, start, end

where ``[start, end)`` is the overlap in the bucket file's token positions (a
document owns its tokens and its trailing eos). Because the schedules are pure
functions of (step, micro), this log can be written before, during or after
training and is the same; :func:`write_data_order` streams it to Parquet in one row
group per ``chunk_steps`` steps, so memory does not grow with the run:

    table = DocTable.read("data/processed/buckets")
    write_data_order("data/metrics/data_order.parquet", batches, table, steps=200)
    # which documents did step 17 see?
    pq.read_table(path, filters=[("step", "=", 17)])

The table is never read whole: :class:`DocTable` indexes where each bucket's rows sit
from the Parquet footer and decodes the row groups a lookup needs through an LRU of a
fixed byte budget, so memory is O(row groups) plus the cache, whatever the documents.

Validation documents have a score (in docs.parquet) but no bucket (they sit in the
per-slice ``val-<slice>.bin``). :meth:`DocTable.val_by_bucket` assigns each one the
bucket its score falls in under the index's ``score_edges`` and gathers, per bucket,
up to ``max_tokens`` of their tokens (whole documents, eos included) from the val
files, so validation loss can be reported per difficulty bucket as well as per slice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redrobe.curriculum.buckets import assign_buckets, bucket_name
from redrobe.curriculum.cache import LRU, TokenFiles
from redrobe.curriculum.layout import DOCS_FILE, SPLIT_VAL, read_index, val_file
from redrobe.documents import atomic_file

ORDER_SCHEMA = pa.schema([
    pa.field("step", pa.int32()), pa.field("micro", pa.int16()), pa.field("lane", pa.int32()),
    pa.field("bucket", pa.int16()), pa.field("doc_id", pa.string()),
    pa.field("start", pa.int64()), pa.field("end", pa.int64()),
])


class Rows(Protocol):
    """What :func:`data_order` needs of a schedule (``redrobe.train.data.Batches``)."""
    window: int
    grad_accum: int

    def rows(self, step: int, micro: int) -> tuple[np.ndarray, np.ndarray]: ...


#: decoded docs.parquet row groups a DocTable keeps (bytes): a bound, whatever the corpus
CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class Blocks:
    """Where each bucket's documents sit in docs.parquet: one block per run of one
    bucket's rows inside one row group (rows ``[lo, hi)`` of ``group``, the first at
    token ``offset``), sorted by (bucket, offset). O(row groups + buckets) numbers."""

    bucket: np.ndarray
    offset: np.ndarray
    group: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def _columns(meta: pq.FileMetaData) -> dict[str, int]:
    """Column name -> its index in the footer's per-group column chunks."""
    return {meta.schema.column(i).name: i for i in range(meta.num_columns)}


def _stat(meta: pq.RowGroupMetaData, column: int) -> tuple[Any, Any] | None:
    stats = meta.column(column).statistics
    return (stats.min, stats.max) if stats is not None and stats.has_min_max else None


def _group_runs(docs: pq.ParquetFile, g: int, col: dict[str, int]) -> list[tuple[int, int, int, int]]:
    """(bucket, first offset, lo, hi) of each run of one bucket in row group ``g``; from
    the footer's statistics when the group holds one bucket, else from its two columns."""
    meta = docs.metadata.row_group(g)
    bucket, offset = _stat(meta, col["bucket"]), _stat(meta, col["offset"])
    if bucket is not None and offset is not None and bucket[0] == bucket[1]:
        return [(int(bucket[0]), int(offset[0]), 0, meta.num_rows)]
    rows = docs.read_row_group(g, columns=["bucket", "offset"])
    buckets, offsets = rows["bucket"].to_numpy(), rows["offset"].to_numpy()
    cuts = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(buckets)]
    return [(int(buckets[a]), int(offsets[a]), a, b) for a, b in zip(cuts, cuts[1:])]


def _blocks(docs: pq.ParquetFile) -> Blocks:
    """The training blocks of every row group (validation rows, bucket -1, left out)."""
    col = _columns(docs.metadata)
    runs = [(k, off, g, a, b) for g in range(docs.metadata.num_row_groups)
            for k, off, a, b in _group_runs(docs, g, col) if k >= 0 and b > a]
    table = np.array(runs, dtype=np.int64).reshape(-1, 5)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    return Blocks(*(np.ascontiguousarray(table[:, i]) for i in range(5)))


class DocTable:
    """docs.parquet of a buckets directory, read lazily: the footer (opened on first use),
    a block index (:class:`Blocks`, built on the first :meth:`overlaps`) and the row
    groups a lookup needs, decoded through an :class:`~redrobe.curriculum.cache.LRU` of
    ``cache_bytes``. Memory is bounded by the cache and O(row groups), not by documents;
    :meth:`close` lets all of it go (a later call opens the file again). ``files`` reads
    the validation tokens (a bounded set of open files)."""

    def __init__(self, root: str | os.PathLike, index: dict[str, Any], files: TokenFiles,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.root, self.index, self.files = Path(root), index, files
        (self.root / DOCS_FILE).stat()   # a missing table fails here, not mid-run
        self._docs: pq.ParquetFile | None = None
        self._blocks: Blocks | None = None
        self.groups: LRU[int, tuple[np.ndarray, np.ndarray, pa.Array]] = LRU(
            cache_bytes, weigh=lambda v: v[0].nbytes + v[1].nbytes + v[2].nbytes)

    @classmethod
    def read(cls, root: str | os.PathLike, files: TokenFiles | None = None,
             cache_bytes: int = CACHE_BYTES) -> DocTable:
        index = read_index(root)
        if files is None:
            files = TokenFiles.of_index(root, index)
        return cls(root, index, files, cache_bytes)

    @property
    def docs(self) -> pq.ParquetFile:
        """The open Parquet file; its footer is O(row groups) (about 1 KB a group)."""
        if self._docs is None:
            self._docs = pq.ParquetFile(self.root / DOCS_FILE)
        return self._docs

    @property
    def blocks(self) -> Blocks:
        if self._blocks is None:
            self._blocks = _blocks(self.docs)
        return self._blocks

    def _group(self, g: int) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """Row group ``g``'s offsets, ends (eos included) and ids, decoded once while cached."""
        def load() -> tuple[np.ndarray, np.ndarray, pa.Array]:
            rows = self.docs.read_row_group(g, columns=["id", "tokens", "offset"])
            offsets = rows["offset"].to_numpy().astype(np.int64)
            ends = offsets + rows["tokens"].to_numpy().astype(np.int64) + 1   # + eos
            return offsets, ends, rows["id"].combine_chunks()
        return self.groups.get(g, load)

    def overlaps(self, bucket: int, start: int, end: int) -> Iterator[tuple[str, int, int]]:
        """(doc id, overlap start, overlap end) of every document in ``[start, end)``."""
        blocks = self.blocks
        lo, hi = np.searchsorted(blocks.bucket, [bucket, bucket + 1]).tolist()
        # the block holding ``start``: the last one of the bucket that begins at or before it
        first = lo + max(int(np.searchsorted(blocks.offset[lo:hi], start, side="right")) - 1, 0)
        for k in range(first, hi):
            if blocks.offset[k] >= end:
                return
            offsets, ends, ids = self._group(int(blocks.group[k]))
            a, b = int(blocks.lo[k]), int(blocks.hi[k])
            at = a + max(int(np.searchsorted(offsets[a:b], start, side="right")) - 1, 0)
            for i in range(at, b):
                if offsets[i] >= end:
                    return
                yield ids[i].as_py(), max(int(offsets[i]), start), min(int(ends[i]), end)

    def _val_groups(self, source: str) -> Iterator[pa.Table]:
        """``source``'s validation rows (score, tokens, offset) in file order (the layout's
        row order), one row group at a time; groups the footer rules out are not read."""
        meta = self.docs.metadata
        col = _columns(meta)
        for g in range(meta.num_row_groups):
            bucket, sources = _stat(meta.row_group(g), col["bucket"]), _stat(meta.row_group(g), col["source"])
            if (bucket is not None and bucket[0] >= 0) or (
                    sources is not None and not sources[0] <= source <= sources[1]):
                continue   # training rows only (val rows have bucket -1), or other slices
            rows = self.docs.read_row_group(g, columns=["source", "split", "score", "tokens", "offset"])
            yield rows.filter(pc.and_(pc.equal(rows["split"], SPLIT_VAL),
                                      pc.equal(rows["source"], source)))

    def val_by_bucket(self, max_tokens: int) -> dict[str, np.ndarray]:
        """Per bucket name: up to ``max_tokens`` validation tokens of the documents whose
        score falls in it (whole documents in slice then file order; empty if none).
        Streams the validation rows: memory is the result plus one row group."""
        edges = self.index["score_edges"]
        parts: dict[int, list[np.ndarray]] = {k: [] for k in range(len(self.index["buckets"]))}
        used = dict.fromkeys(parts, 0)
        for source in sorted(self.index["val"]):
            tokens_file = self.files.file(val_file(source))
            for rows in self._val_groups(source):
                buckets = assign_buckets(rows["score"].to_numpy(), edges).tolist()
                for offset, tokens, k in zip(rows["offset"].to_pylist(), rows["tokens"].to_pylist(),
                                             buckets):
                    if used[k] + tokens + 1 <= max_tokens:
                        parts[k].append(tokens_file[offset:offset + tokens + 1])
                        used[k] += tokens + 1
        dtype = np.dtype(self.index["dtype"])
        return {bucket_name(k): np.concatenate(p) if p else np.zeros(0, dtype=dtype)
                for k, p in parts.items()}

    def close(self) -> None:
        """Let the file, its footer, the block index and the cache go."""
        if self._docs is not None:
            self._docs.close()
        self._docs, self._blocks = None, None
        self.groups.clear()


def _step_rows(batches: Rows, table: DocTable, step: int) -> dict[str, list]:
    cols: dict[str, list] = {f.name: [] for f in ORDER_SCHEMA}
    for micro in range(batches.grad_accum):
        buckets, starts = batches.rows(step, micro)
        for lane, (k, s) in enumerate(zip(buckets.tolist(), starts.tolist())):
            for doc_id, a, b in table.overlaps(k, s, s + batches.window):
                for name, value in zip(cols, (step, micro, lane, k, doc_id, a, b)):
                    cols[name].append(value)
    return cols


def data_order(batches: Rows, table: DocTable, steps: int, first_step: int = 1,
               chunk_steps: int = 256) -> Iterator[pa.RecordBatch]:
    """The documents seen at steps ``first_step..steps``, ``chunk_steps`` steps a batch."""
    for lo in range(first_step, steps + 1, chunk_steps):
        cols: dict[str, list] = {f.name: [] for f in ORDER_SCHEMA}
        for step in range(lo, min(lo + chunk_steps, steps + 1)):
            for name, values in _step_rows(batches, table, step).items():
                cols[name].extend(values)
        yield pa.RecordBatch.from_pydict(cols, schema=ORDER_SCHEMA)


def write_data_order(path: str | os.PathLike, batches: Rows, table: DocTable, steps: int,
                     chunk_steps: int = 256) -> int:
    """Write the data order of steps 1..``steps`` as Parquet (atomically); return its rows."""
    count = 0
    with atomic_file(path, "wb") as fh, pq.ParquetWriter(fh, ORDER_SCHEMA, compression="zstd") as writer:
        for batch in data_order(batches, table, steps, chunk_steps=chunk_steps):
            writer.write_batch(batch)
            count += batch.num_rows
    return count
