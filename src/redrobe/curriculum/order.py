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
from redrobe.curriculum.layout import DOCS_FILE, SPLIT_TRAIN, SPLIT_VAL, open_tokens, read_index, val_file
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


@dataclass
class DocTable:
    """docs.parquet of a buckets directory, split by file (sized by documents)."""
    root: Path
    index: dict[str, Any]
    train: list[tuple[np.ndarray, np.ndarray, list[str]]]   # per bucket: offsets, ends, ids
    val: pa.Table                                           # the validation rows

    @classmethod
    def read(cls, root: str | os.PathLike) -> DocTable:
        root = Path(root)
        index = read_index(root)
        docs = pq.read_table(root / DOCS_FILE, columns=["id", "source", "split", "bucket",
                                                        "score", "tokens", "offset"])
        train = []
        for k in range(len(index["buckets"])):
            rows = docs.filter(pc.and_(pc.equal(docs["split"], SPLIT_TRAIN),
                                      pc.equal(docs["bucket"], k)))
            offsets = rows["offset"].to_numpy().astype(np.int64)
            ends = offsets + rows["tokens"].to_numpy().astype(np.int64) + 1   # + eos
            train.append((offsets, ends, rows["id"].to_pylist()))
        val = docs.filter(pc.equal(docs["split"], SPLIT_VAL))
        return cls(root, index, train, val)

    def overlaps(self, bucket: int, start: int, end: int) -> Iterator[tuple[str, int, int]]:
        """(doc id, overlap start, overlap end) of every document in ``[start, end)``."""
        offsets, ends, ids = self.train[bucket]
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        for i in range(max(first, 0), len(offsets)):
            if offsets[i] >= end:
                break
            yield ids[i], max(int(offsets[i]), start), min(int(ends[i]), end)

    def val_by_bucket(self, max_tokens: int) -> dict[str, np.ndarray]:
        """Per bucket name: up to ``max_tokens`` validation tokens of the documents whose
        score falls in it (whole documents in slice then id order; empty if none)."""
        edges = self.index["score_edges"]
        buckets = assign_buckets(self.val["score"].to_numpy(), edges).tolist()
        arrays = {s: open_tokens(self.root, self.index, val_file(s))
                  for s in sorted(set(self.val["source"].to_pylist()))}
        parts: dict[int, list[np.ndarray]] = {k: [] for k in range(len(self.index["buckets"]))}
        used = dict.fromkeys(parts, 0)
        rows = zip(self.val["source"].to_pylist(), self.val["offset"].to_pylist(),
                   self.val["tokens"].to_pylist(), buckets)
        for source, offset, tokens, k in sorted(rows, key=lambda r: (r[0], r[1])):
            if used[k] + tokens + 1 <= max_tokens:
                parts[k].append(np.asarray(arrays[source][offset:offset + tokens + 1]))
                used[k] += tokens + 1
        dtype = np.dtype(self.index["dtype"])
        return {bucket_name(k): np.concatenate(p) if p else np.zeros(0, dtype=dtype)
                for k, p in parts.items()}


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
