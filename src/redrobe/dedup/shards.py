"""The two passes of deduplication over a directory of shards.

Pass 1, per shard (parallel): :func:`sketch_shard` streams the shard and keeps only
compact data per document: its id, a 128-bit digest of the normalized text and the
MinHash band keys (16 + 8 x bands bytes), never the text.

Between the passes, in one process: :func:`plan_removals` turns the sketches of all
shards, in (slice, shard, row) order, into duplicate clusters and decides for each
document whether it is kept (the first of its cluster) or removed, and why.

Pass 2, per shard (parallel): :func:`write_shard` re-reads the shard and writes the kept
documents to one output shard and the removed ones, with ``reason`` and
``duplicate_of`` (the kept document's id), to one removed shard of the same name.

    sketches = [sketch_shard(p, params.dedup, 256) for p in shard_paths]
    plan = plan_removals(sketches, params.dedup)
    ledger = write_shard(WriteTask(..., removals=plan.removals[i]))

Reasons: a removed document is an ``exact_duplicate`` when its normalized text equals
the kept document's, else a ``near_duplicate`` (linked through MinHash-LSH, possibly
via other members of the cluster). With ``cross_slice`` false, keys only match within
a slice, so clusters never span slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow.parquet as pq

from redrobe.accounting import Ledger
from redrobe.config import Dedup
from redrobe.dedup.clusters import UnionFind, equal_key_pairs
from redrobe.dedup.exact import DIGEST_BYTES, EXACT_DUPLICATE, content_digest
from redrobe.dedup.minhash import NEAR_DUPLICATE, MinHasher
from redrobe.documents import BASE_COLUMNS, Document, ShardWriter, read_documents
from redrobe.errors import InputError

#: columns added to removed shards
REMOVED_COLUMNS = ("reason", "duplicate_of")

#: one removal: (removed document's id, reason, kept document's id)
Removal = tuple[str, str, str]


@dataclass(frozen=True)
class ShardSketch:
    """Pass-1 data of one shard; arrays have one row per document, in shard order."""

    path: str
    slice: str
    ids: list[str]
    digests: np.ndarray        # (n, 2) uint64: content digest; zero where has_digest is False
    has_digest: np.ndarray     # (n,) bool: False when the normalized text is empty
    band_keys: np.ndarray      # (n, bands) uint64; (n, 0) when MinHash is disabled
    has_signature: np.ndarray  # (n,) bool: False when there are no words (or MinHash is off)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class WriteTask:
    """Pass-2 work for one shard: where to read and write, and which rows to remove."""

    input: str
    output: str
    removed: str
    batch_docs: int
    rows: int                                   # documents pass 1 saw in this shard
    removals: dict[int, Removal] = field(default_factory=dict)  # row -> removal


@dataclass(frozen=True)
class DedupPlan:
    """What pass 2 must do, plus cluster statistics for the metrics."""

    removals: list[dict[int, Removal]]  # per shard, in the order of the sketches
    clusters: dict[str, Any]


def slice_of(path: str | Path) -> str:
    """The slice of a shard ``<root>/<slice>/part-NNNNN.parquet``."""
    return Path(path).parent.name


def stream_documents(path: str | Path, batch_docs: int) -> Iterator[Document]:
    """read_documents (which names unreadable shards) plus a check for null text or id."""
    for row, doc in enumerate(read_documents(path, batch_docs)):
        if not isinstance(doc.text, str) or not isinstance(doc.id, str):
            raise InputError(f"{path}: record {row} (id {doc.id!r}) has no text or no id")
        yield doc


# ----------------------------------------------------------------------------- pass 1

def sketch_shard(path: str, params: Dedup, batch_docs: int) -> ShardSketch:
    """Digest and band keys of every document of one shard (top-level: picklable)."""
    hasher = MinHasher.from_params(params.minhash) if params.minhash.enabled else None
    bands = params.minhash.bands if hasher else 0
    ids: list[str] = []
    digests: list[bytes] = []
    has_digest: list[bool] = []
    keys: list[np.ndarray] = []
    has_sig: list[bool] = []
    no_digest, no_keys = bytes(DIGEST_BYTES), np.zeros(bands, dtype=np.uint64)
    for doc in stream_documents(path, batch_docs):
        ids.append(doc.id)
        digest = content_digest(doc.text)
        has_digest.append(digest is not None)
        digests.append(digest or no_digest)
        sig = hasher.signature(doc.text) if hasher else None
        has_sig.append(sig is not None)
        keys.append(hasher.band_keys(sig) if sig is not None else no_keys)
    return ShardSketch(
        path=str(path), slice=slice_of(path), ids=ids,
        digests=np.frombuffer(b"".join(digests), dtype="<u8").reshape(len(ids), 2).astype(np.uint64),
        has_digest=np.array(has_digest, dtype=bool),
        band_keys=np.vstack(keys) if keys else np.empty((0, bands), dtype=np.uint64),
        has_signature=np.array(has_sig, dtype=bool))


# ----------------------------------------------------------------------------- clusters

def plan_removals(sketches: Sequence[ShardSketch], params: Dedup) -> DedupPlan:
    """Cluster all documents and decide, per shard and row, which ones are removed.

    ``sketches`` must be in (slice, shard) order: document indices follow it, and the
    smallest index of a cluster (its first document) is the one kept.
    """
    sizes = np.array([len(s) for s in sketches], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    names = sorted({s.slice for s in sketches})
    slice_idx = np.repeat([names.index(s.slice) for s in sketches], sizes).astype(np.int64)
    scope = np.zeros_like(slice_idx) if params.cross_slice else slice_idx
    digests = _stack([s.digests for s in sketches], (0, 2))
    has_digest = _stack([s.has_digest for s in sketches], (0,), bool)

    uf = UnionFind(int(offsets[-1]))
    links = {"exact": 0, "minhash": 0}
    if params.exact:
        m = np.flatnonzero(has_digest)
        a, b = equal_key_pairs([scope[m], digests[m, 0], digests[m, 1]], m)
        uf.union_pairs(a, b)
        links["exact"] = len(a)
    if params.minhash.enabled:
        bands = _stack([s.band_keys for s in sketches], (0, params.minhash.bands))
        m = np.flatnonzero(_stack([s.has_signature for s in sketches], (0,), bool))
        for band in range(bands.shape[1]):
            a, b = equal_key_pairs([scope[m], bands[m, band]], m)
            uf.union_pairs(a, b)
            links["minhash"] += len(a)
    roots = uf.roots()

    same_text = has_digest & has_digest[roots] & (digests == digests[roots]).all(axis=1)
    ids = [doc_id for s in sketches for doc_id in s.ids]
    removals: list[dict[int, Removal]] = [{} for _ in sketches]
    for i in np.flatnonzero(roots != np.arange(len(roots))).tolist():
        shard = int(np.searchsorted(offsets, i, side="right")) - 1
        reason = EXACT_DUPLICATE if same_text[i] else NEAR_DUPLICATE
        removals[shard][i - int(offsets[shard])] = (ids[i], reason, ids[roots[i]])
    return DedupPlan(removals=removals,
                     clusters={**cluster_stats(roots, slice_idx, names), "links": links})


def cluster_stats(roots: np.ndarray, slice_idx: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Counts of duplicate clusters (components with more than one document)."""
    uniq, counts = np.unique(roots, return_counts=True)
    dup_roots, dup_sizes = uniq[counts > 1], counts[counts > 1]
    lo = np.full(len(roots), len(names), dtype=np.int64)
    hi = np.full(len(roots), -1, dtype=np.int64)
    np.minimum.at(lo, roots, slice_idx)
    np.maximum.at(hi, roots, slice_idx)
    kept_slices = slice_idx[dup_roots]
    return {
        "duplicate_clusters": int(len(dup_roots)),
        "documents_in_clusters": int(dup_sizes.sum()),
        "largest_cluster": int(dup_sizes.max()) if len(dup_sizes) else 0,
        "cross_slice_clusters": int((lo[dup_roots] != hi[dup_roots]).sum()),
        "by_kept_slice": {name: int((kept_slices == k).sum()) for k, name in enumerate(names)},
    }


def _stack(arrays: Sequence[np.ndarray], empty_shape: tuple[int, ...], dtype: Any = np.uint64) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(empty_shape, dtype=dtype)


# ----------------------------------------------------------------------------- pass 2

def write_shard(task: WriteTask) -> Ledger:
    """Split one shard into kept and removed documents; return its accounting."""
    name = slice_of(task.input)
    extras = [c for c in pq.ParquetFile(task.input).schema_arrow.names if c not in BASE_COLUMNS]
    removed_extras = list(dict.fromkeys(extras + list(REMOVED_COLUMNS)))
    ledger = Ledger()
    rows = 0
    with ShardWriter(task.output, task.batch_docs, extras) as kept, \
            ShardWriter(task.removed, task.batch_docs, removed_extras) as removed:
        for row, doc in enumerate(stream_documents(task.input, task.batch_docs)):
            rows += 1
            ledger.seen(name, len(doc.text))
            removal = task.removals.get(row)
            if removal is None:
                kept.write(doc)
                ledger.kept(name, len(doc.text))
                continue
            doc_id, reason, duplicate_of = removal
            if doc.id != doc_id:
                raise InputError(f"{task.input}: record {row} is {doc.id!r}, expected {doc_id!r}:"
                                 " the shard changed during deduplication")
            removed.write(doc.with_extra(reason=reason, duplicate_of=duplicate_of))
            ledger.removed(name, reason)
    if rows != task.rows:
        raise InputError(f"{task.input}: {rows} records, pass 1 saw {task.rows}:"
                         " the shard changed during deduplication")
    return ledger
