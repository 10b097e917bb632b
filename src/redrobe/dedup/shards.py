"""The two passes of deduplication over a directory of shards.

Pass 1, per shard (parallel): :func:`sketch_shard` streams the shard and keeps only
compact data per document: its id, a 128-bit digest of the normalized text and the
MinHash band keys (16 + 8 x bands bytes), never the text. :func:`sketch_task` does the
same through a :class:`redrobe.shardcache.ShardCache`, so an unchanged shard is never
sketched twice (incremental runs).

Between the passes, the clustering. The stage runs it as partitioned tasks
(:mod:`redrobe.dedup.plan`); this module holds the same clustering in one process,
the reference that plan is tested against and what the paper tables use on their
small corpora: :func:`plan_removals` runs the link passes
(:class:`ExactPass`, :class:`MinHashPass`, and any other :class:`LinkPass`) over the
sketches of all shards, in (slice, shard, row) order, into one union-find, and decides
for each document whether it is kept (the first of its cluster) or removed, and why.
With ``dedup.minhash.verify`` the MinHash pass re-reads the shingles of candidate
documents only and links a pair only when its exact Jaccard reaches the threshold.

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

import dataclasses
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow.parquet as pq

from redrobe.accounting import Ledger
from redrobe.config import Dedup, MinHashParams
from redrobe.dedup.clusters import UnionFind, equal_key_groups, equal_key_pairs
from redrobe.dedup.exact import DIGEST_BYTES, EXACT_DUPLICATE, normalized_digest
from redrobe.dedup.minhash import (
    NEAR_DUPLICATE,
    MinHasher,
    exact_jaccard,
    normalized_bytes,
)
from redrobe.documents import BASE_COLUMNS, Document, ShardWriter, read_documents
from redrobe.errors import InputError
from redrobe.shardcache import ShardCache, code_digest

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

    def to_bytes(self) -> bytes:
        """The arrays as an ``.npz`` (no pickle); path and slice are not stored. Ids are
        UTF-8 bytes plus lengths, so any id round-trips exactly."""
        encoded = [i.encode("utf-8") for i in self.ids]
        buf = io.BytesIO()
        np.savez(buf, id_bytes=np.frombuffer(b"".join(encoded), dtype=np.uint8),
                 id_lengths=np.array([len(e) for e in encoded], dtype=np.int64),
                 digests=self.digests, has_digest=self.has_digest, band_keys=self.band_keys,
                 has_signature=self.has_signature)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, path: str = "", slice: str = "") -> ShardSketch:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            blob, ends = z["id_bytes"].tobytes(), np.cumsum(z["id_lengths"]).tolist()
            ids = [blob[a:b].decode("utf-8") for a, b in zip([0] + ends[:-1], ends)]
            sketch = cls(path=path, slice=slice, ids=ids, digests=z["digests"].astype(np.uint64),
                         has_digest=z["has_digest"].astype(bool),
                         band_keys=z["band_keys"].astype(np.uint64),
                         has_signature=z["has_signature"].astype(bool))
        if not (len(ids) == len(sketch.digests) == len(sketch.has_digest) == len(sketch.band_keys)
                == len(sketch.has_signature)):
            raise ValueError("sketch arrays of unequal length")
        return sketch


@dataclass(frozen=True)
class WriteTask:
    """Pass-2 work for one shard: where to read and write, and which rows to remove."""

    input: str
    output: str
    removed: str
    batch_docs: int
    rows: int                                   # documents pass 1 saw in this shard
    removals: dict[int, Removal] = field(default_factory=dict)  # row -> removal
    partition: str = ""                         # what the ledger counts it under ("": its slice)


@dataclass(frozen=True)
class DedupPlan:
    """What pass 2 must do, plus cluster statistics for the metrics."""

    removals: list[dict[int, Removal]]  # per shard, in the order of the sketches
    clusters: dict[str, Any]


def slice_of(path: str | Path) -> str:
    """The slice of a shard ``<root>/<slice>/part-NNNNN.parquet`` (a language partition's
    shard, one folder deeper, needs its root: :func:`redrobe.documents.partition_of`)."""
    return Path(path).parent.name


def _serial_map(fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
    return [fn(t) for t in tasks]


def stream_documents(path: str | Path, batch_docs: int) -> Iterator[Document]:
    """read_documents (which names unreadable shards) plus a check for null text or id."""
    for row, doc in enumerate(read_documents(path, batch_docs)):
        if not isinstance(doc.text, str) or not isinstance(doc.id, str):
            raise InputError(f"{path}: record {row} (id {doc.id!r}) has no text or no id")
        yield doc


# ----------------------------------------------------------------------------- pass 1

#: bump when the sketch layout or its computation changes without a source change
SKETCH_VERSION = "2"


def sketch_shard(path: str, params: Dedup, batch_docs: int) -> ShardSketch:
    """Digest and band keys of every document of one shard (top-level: picklable).

    Documents are hashed ``batch_docs`` at a time: the MinHash of a whole batch is one
    set of numpy operations over all of its shingles.
    """
    hasher = MinHasher.from_params(params.minhash) if params.minhash.enabled else None
    bands = params.minhash.bands if hasher else 0
    ids: list[str] = []
    digests: list[bytes] = []
    has_digest: list[bool] = []
    keys: list[np.ndarray] = [np.empty((0, bands), dtype=np.uint64)]
    has_sig: list[np.ndarray] = [np.empty(0, dtype=bool)]
    no_digest = bytes(DIGEST_BYTES)
    for batch in _batches(stream_documents(path, batch_docs), batch_docs):
        ids.extend(doc.id for doc in batch)
        normalized = [normalized_bytes(doc.text) for doc in batch]
        for digest in map(normalized_digest, normalized):
            has_digest.append(digest is not None)
            digests.append(digest or no_digest)
        if hasher is None:
            keys.append(np.zeros((len(batch), 0), dtype=np.uint64))
            has_sig.append(np.zeros(len(batch), dtype=bool))
            continue
        sigs, has = hasher.signatures_of_normalized(normalized)
        keys.append(np.where(has[:, None], hasher.band_keys(sigs), np.uint64(0)))
        has_sig.append(has)
    return ShardSketch(
        path=str(path), slice=slice_of(path), ids=ids,
        digests=np.frombuffer(b"".join(digests), dtype="<u8").reshape(len(ids), 2).astype(np.uint64),
        has_digest=np.array(has_digest, dtype=bool),
        band_keys=np.concatenate(keys), has_signature=np.concatenate(has_sig))


def _batches(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    while batch := list(islice(docs, size)):
        yield batch


def sketch_params(params: Dedup) -> dict[str, Any]:
    """The params a shard's sketch depends on (the cache key uses these, nothing else)."""
    m = params.minhash
    return {"minhash": m.enabled and {"ngram": m.ngram, "num_perm": m.num_perm,
                                      "seed": m.seed, "bands": m.bands, "rows": m.rows}}


def sketch_cache(root: str | Path, params: Dedup) -> ShardCache:
    """The sketch cache under ``root``: keyed by shard digest, sketch params and code."""
    from redrobe.dedup import exact, minhash
    from redrobe.text import normalize
    code = code_digest(exact, minhash, normalize, sys.modules[__name__], version=SKETCH_VERSION)
    return ShardCache(root, sketch_params(params), code)


@dataclass(frozen=True)
class SketchTask:
    """Pass-1 work for one shard; ``cache`` None sketches without caching."""

    path: str
    params: Dedup
    batch_docs: int
    cache: ShardCache | None = None


def sketch_task(task: SketchTask) -> tuple[ShardSketch, bool]:
    """(sketch, reused): from the cache when an entry for this exact shard exists."""
    def compute() -> ShardSketch:
        return sketch_shard(task.path, task.params, task.batch_docs)

    if task.cache is None:
        return compute(), False
    sketch, hit = task.cache.cached(task.path, compute, ShardSketch.to_bytes, ShardSketch.from_bytes)
    # the entry holds arrays only: the path (and so the slice) is the one asked for
    return dataclasses.replace(sketch, path=str(task.path), slice=slice_of(task.path)), hit


# ----------------------------------------------------------------------------- clusters

@dataclass(frozen=True)
class CorpusIndex:
    """All documents of all sketches, numbered 0..N-1 in (slice, shard, row) order."""

    sketches: Sequence[ShardSketch]
    offsets: np.ndarray    # (shards + 1,) first document index of each shard
    slice_idx: np.ndarray  # (N,) index of each document's slice in ``names``
    scope: np.ndarray      # (N,) documents may only match within equal scopes
    names: list[str]

    @classmethod
    def build(cls, sketches: Sequence[ShardSketch], cross_slice: bool) -> CorpusIndex:
        sizes = np.array([len(s) for s in sketches], dtype=np.int64)
        names = sorted({s.slice for s in sketches})
        slice_idx = np.repeat([names.index(s.slice) for s in sketches], sizes).astype(np.int64)
        scope = np.zeros_like(slice_idx) if cross_slice else slice_idx
        return cls(sketches, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   slice_idx, scope, names)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def column(self, name: str, empty_shape: tuple[int, ...], dtype: Any = np.uint64) -> np.ndarray:
        """One sketch field of every document, stacked."""
        arrays = [getattr(s, name) for s in self.sketches]
        return np.concatenate(arrays) if arrays else np.empty(empty_shape, dtype=dtype)

    def locate(self, doc: int) -> tuple[int, int]:
        """(shard, row) of document ``doc``."""
        shard = int(np.searchsorted(self.offsets, doc, side="right")) - 1
        return shard, doc - int(self.offsets[shard])


class LinkPass(Protocol):
    """One kind of duplicate detection: links documents in the shared union-find.

    Passes run in order; a removed document's reason is the ``reason`` of the first
    pass after which it was in its kept document's cluster. A new kind of dedup is one
    more pass in the list given to :func:`plan_removals`.
    """

    @property
    def name(self) -> str: ...

    @property
    def reason(self) -> str: ...

    def link(self, corpus: CorpusIndex, uf: UnionFind) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExactPass:
    """Links documents whose normalized texts have the same 128-bit digest."""

    name: str = "exact"
    reason: str = EXACT_DUPLICATE

    def link(self, corpus: CorpusIndex, uf: UnionFind) -> dict[str, Any]:
        digests = corpus.column("digests", (0, 2))
        m = np.flatnonzero(corpus.column("has_digest", (0,), bool))
        a, b = equal_key_pairs([corpus.scope[m], digests[m, 0], digests[m, 1]], m)
        uf.union_pairs(a, b)
        return {"links": len(a)}


@dataclass(frozen=True)
class MinHashPass:
    """Links documents that share a MinHash-LSH band bucket (RedPajama-V2's components).

    With ``params.verify`` a candidate pair is linked only when the exact Jaccard of
    the two shingle sets reaches ``params.threshold``; the shingles of the candidate
    documents (and only those) are re-read from their shards through ``mapper``
    (e.g. a :mod:`redrobe.parallel` executor's ``map``).
    """

    params: MinHashParams
    batch_docs: int = 256
    mapper: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] = _serial_map
    name: str = "minhash"
    reason: str = NEAR_DUPLICATE

    def link(self, corpus: CorpusIndex, uf: UnionFind) -> dict[str, Any]:
        bands = corpus.column("band_keys", (0, self.params.bands))
        m = np.flatnonzero(corpus.column("has_signature", (0,), bool))
        if not self.params.verify:
            links = 0
            for band in range(bands.shape[1]):
                a, b = equal_key_pairs([corpus.scope[m], bands[m, band]], m)
                uf.union_pairs(a, b)
                links += len(a)
            return {"links": links}
        buckets = [g for band in range(bands.shape[1])
                   for g in equal_key_groups([corpus.scope[m], bands[m, band]], m)]
        return self._verified(corpus, uf, buckets)

    def _verified(self, corpus: CorpusIndex, uf: UnionFind, buckets: list[np.ndarray]) -> dict[str, Any]:
        # Only buckets not already inside one cluster (e.g. exact copies) need shingles.
        open_buckets = [g for g in buckets if len({uf.find(int(i)) for i in g}) > 1]
        sets = self._shingle_sets(corpus, sorted({int(i) for g in open_buckets for i in g}))
        # Verdicts are keyed by the two texts' content digests: exact copies have the
        # same shingle set, so a pair of texts is compared once however many copies exist.
        digests = corpus.column("digests", (0, 2))
        text = {i: tuple(digests[i].tolist()) for i in sets}
        verdicts: dict[tuple[tuple[int, int], tuple[int, int]], bool] = {}
        for group in open_buckets:
            members = group.tolist()
            for k, j in enumerate(members):
                # Link j to every earlier cluster of the bucket it truly matches; one
                # verified member is enough per cluster (Jaccard is not transitive).
                for i in members[:k]:
                    if uf.find(i) == uf.find(j):
                        continue
                    key = (min(text[i], text[j]), max(text[i], text[j]))
                    if key not in verdicts:
                        verdicts[key] = exact_jaccard(sets[i], sets[j]) >= self.params.threshold
                    if verdicts[key]:
                        uf.union(i, j)
        accepted = sum(verdicts.values())
        return {"links": accepted, "verify": {"pairs_checked": len(verdicts), "pairs_accepted": accepted,
                                             "pairs_rejected": len(verdicts) - accepted,
                                             "documents_read": len(sets)}}

    def _shingle_sets(self, corpus: CorpusIndex, docs: list[int]) -> dict[int, np.ndarray]:
        by_shard: dict[int, list[int]] = {}
        for doc in docs:
            shard, row = corpus.locate(doc)
            by_shard.setdefault(shard, []).append(row)
        tasks = [ShingleTask(corpus.sketches[s].path, tuple(rows), self.params, self.batch_docs)
                 for s, rows in sorted(by_shard.items())]
        sets: dict[int, np.ndarray] = {}
        for shard, found in zip(sorted(by_shard), self.mapper(shingle_sets, tasks)):
            sets.update({int(corpus.offsets[shard]) + row: hashes for row, hashes in found.items()})
        return sets


@dataclass(frozen=True)
class ShingleTask:
    """Rows of one shard whose shingle sets verification needs."""

    path: str
    rows: tuple[int, ...]
    params: MinHashParams
    batch_docs: int


def shingle_sets(task: ShingleTask) -> dict[int, np.ndarray]:
    """row -> sorted unique shingle hashes, for the task's rows only (top-level: picklable)."""
    hasher, wanted = MinHasher.from_params(task.params), set(task.rows)
    return {row: hasher.shingle_set(doc.text)
            for row, doc in enumerate(stream_documents(task.path, task.batch_docs)) if row in wanted}


def default_passes(params: Dedup, batch_docs: int = 256,
                   mapper: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] = _serial_map,
                   ) -> list[LinkPass]:
    """The passes ``params`` enables, in order: exact, then MinHash-LSH."""
    passes: list[LinkPass] = []
    if params.exact:
        passes.append(ExactPass())
    if params.minhash.enabled:
        passes.append(MinHashPass(params.minhash, batch_docs, mapper))
    return passes


def plan_removals(sketches: Sequence[ShardSketch], params: Dedup,
                  passes: Sequence[LinkPass] | None = None) -> DedupPlan:
    """Cluster all documents and decide, per shard and row, which ones are removed.

    ``sketches`` must be in (slice, shard) order: document indices follow it, and the
    smallest index of a cluster (its first document) is the one kept. ``passes``
    defaults to :func:`default_passes`.
    """
    corpus = CorpusIndex.build(sketches, params.cross_slice)
    passes = default_passes(params) if passes is None else passes
    uf = UnionFind(len(corpus))
    stats = {"exact": {"links": 0}, "minhash": {"links": 0}}
    after: list[np.ndarray] = []   # roots after each pass, for the reasons
    for link_pass in passes:
        stats[link_pass.name] = link_pass.link(corpus, uf)
        after.append(uf.roots())
    roots = after[-1] if after else np.arange(len(corpus), dtype=np.int64)
    return DedupPlan(removals=_removals(corpus, roots, passes, after),
                     clusters={**cluster_stats(roots, corpus.slice_idx, corpus.names),
                               "links": {name: s["links"] for name, s in stats.items()},
                               **{f"{name}_verify": s["verify"] for name, s in stats.items()
                                  if "verify" in s}})


def _removals(corpus: CorpusIndex, roots: np.ndarray, passes: Sequence[LinkPass],
              after: list[np.ndarray]) -> list[dict[int, Removal]]:
    """Per shard: row -> (id, reason, kept id) for every document that is not a root."""
    digests = corpus.column("digests", (0, 2))
    has_digest = corpus.column("has_digest", (0,), bool)
    # Identical normalized text is an exact duplicate whichever pass linked it.
    same_text = has_digest & has_digest[roots] & (digests == digests[roots]).all(axis=1)
    ids = [doc_id for s in corpus.sketches for doc_id in s.ids]
    removals: list[dict[int, Removal]] = [{} for _ in corpus.sketches]
    for i in np.flatnonzero(roots != np.arange(len(roots))).tolist():
        shard, row = corpus.locate(i)
        reason = EXACT_DUPLICATE if same_text[i] else next(
            p.reason for p, r in zip(passes, after) if r[i] == roots[i])
        removals[shard][row] = (ids[i], reason, ids[roots[i]])
    return removals


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
        "duplicate_clusters": len(dup_roots),
        "documents_in_clusters": int(dup_sizes.sum()),
        "largest_cluster": int(dup_sizes.max()) if len(dup_sizes) else 0,
        "cross_slice_clusters": int((lo[dup_roots] != hi[dup_roots]).sum()),
        "by_kept_slice": {name: int((kept_slices == k).sum()) for k, name in enumerate(names)},
    }



# ----------------------------------------------------------------------------- pass 2

def write_shard(task: WriteTask) -> Ledger:
    """Split one shard into kept and removed documents; return its accounting."""
    name = task.partition or slice_of(task.input)
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
