"""Deduplication's global step as partitioned tasks: no process holds the whole corpus.

:func:`plan_partitioned` decides the same removals as the one-process
:func:`redrobe.dedup.shards.plan_removals` (every kept document, reason and
``duplicate_of`` identical), but every step is a map of small tasks over partitions
that read and write files by URL (:mod:`redrobe.partfile`) under ``work``, a local
directory or an object-storage URL, and return a few KB. Documents are numbered
``shard << 32 | row``, so numeric order is corpus order and the owner shard of every
document is known without a table.

1. **keys**, one task per shard: the shard's sketch (cached per shard as before) is
   stored under ``work`` and its keys are written partitioned by key hash: the exact
   digest and every MinHash band key, each with the document's scope (slice, unless
   ``cross_slice``) and text digest.
2. **buckets**, one task per key partition: equal keys are sorted together; exact and
   unverified band buckets become chain edges (consecutive members, as before). With
   ``verify``, a bucket of two or more different texts is kept for step 4 and the first
   member of each of its texts asks its shard for its shingles.
3. **shingles**, one task per group of shards: each requested document's shingle set,
   sent to the partitions that asked for it.
4. **verify**, one task per key partition: inside each bucket, every text is compared
   with the earlier texts until it joins their cluster (exact Jaccard, a verdict per
   pair of texts), exactly the pairs the one-process plan could link.
5. **components** (:mod:`redrobe.dedup.components`): connected components of all edges;
   every cluster's root is its smallest number, the first document in corpus order.
   With a semantic pass its pairs among the survivors are one more edge file and a
   second components run gives the final roots.
6. **reasons**, one task per group of shards (by removed document) and **resolve**,
   one per group (by kept document): the join that names the kept document's id and
   decides the reason (``exact_duplicate`` when the normalized texts are equal, else
   the pass that linked it), plus cluster statistics merged in the driver.
7. the stage's write tasks read their shard's removals (:func:`removals_of`).

The driver holds per-shard metadata only (row counts, slice, a few counters).
"""

from __future__ import annotations

import dataclasses
import math
import os
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np

from redrobe.accounting import Ledger
from redrobe.config import Dedup, DedupSemantic
from redrobe.dedup.components import EDGES, LABELS, connected_components, serial_map
from redrobe.dedup.exact import EXACT_DUPLICATE
from redrobe.dedup.minhash import NEAR_DUPLICATE, MinHasher, exact_jaccard
from redrobe.dedup.semantic import SEMANTIC_DUPLICATE, Encoder
from redrobe.dedup.semantic_tasks import encode_corpus, semantic_edges
from redrobe.dedup.shards import (
    Removal,
    ShardSketch,
    SketchTask,
    WriteTask,
    sketch_task,
    slice_of,
    stream_documents,
    write_shard,
)
from redrobe.documents import count_documents
from redrobe.mix64 import mix_columns
from redrobe.partfile import (
    get_bytes,
    join,
    partition_of,
    partition_sizes,
    put_bytes,
    read_partition,
    read_partitions,
    record_size,
    write_partitioned,
)
from redrobe.storage import local_path

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
#: semantic(layout, label files of the first components) -> (edge file, statistics)
SemanticEdges = Callable[["Layout", tuple[str, ...]], tuple[str, dict[str, Any]]]

#: keys of every document: exact digest or one band key, with scope and text digest
KEYS = np.dtype([("scope", "<u4"), ("kind", "<u4"), ("k1", "<u8"), ("k2", "<u8"),
                 ("doc", "<i8"), ("d0", "<u8"), ("d1", "<u8")])
#: a document whose shingles a key partition needs
NEEDS = np.dtype([("doc", "<i8"), ("part", "<i8")])
#: one text of a bucket kept for verification
BUCKETS = np.dtype([("bucket", "<i8"), ("doc", "<i8"), ("d0", "<u8"), ("d1", "<u8")])
#: one shingle hash of a requested document
SHINGLES = np.dtype([("doc", "<i8"), ("hash", "<u8")])
#: a pair of texts (digests in ascending order, a document of each) a key partition asks about
PAIRS = np.dtype([("a0", "<u8"), ("a1", "<u8"), ("b0", "<u8"), ("b1", "<u8"),
                  ("doc_a", "<i8"), ("doc_b", "<i8"), ("part", "<i8")])
#: a pair of texts: the digests of both, the smaller first
PAIR = np.dtype([("a0", "<u8"), ("a1", "<u8"), ("b0", "<u8"), ("b1", "<u8")])
#: the verdict on a pair of texts: exact Jaccard >= threshold
VERDICTS = np.dtype([("a0", "<u8"), ("a1", "<u8"), ("b0", "<u8"), ("b1", "<u8"), ("ok", "<u8")])
#: a removed document, its final root, its text digest and how it was linked
CLAIMS = np.dtype([("doc", "<i8"), ("root", "<i8"), ("d0", "<u8"), ("d1", "<u8"),
                   ("flags", "<u8"), ("slice", "<i8")])

EXACT_KIND = 0          # KEYS.kind of the exact digest; band b is kind b + 1
HAS_DIGEST = 1          # CLAIMS.flags: the removed document's text has a digest
FIRST_STAGE = 2         # CLAIMS.flags: its root did not change in the semantic pass
REASON_CODES = (EXACT_DUPLICATE, NEAR_DUPLICATE, SEMANTIC_DUPLICATE)
SHARD_BITS = 32
#: bytes of shingle sets a verify task keeps cached (documents are re-read past it)
SHINGLE_CACHE_BYTES = 64 << 20
ROW_MASK = (1 << SHARD_BITS) - 1


def doc_number(shard: int | np.ndarray, row: int | np.ndarray) -> Any:
    """The corpus-wide number of row ``row`` of shard ``shard`` (corpus order)."""
    return (np.asarray(shard, dtype=np.int64) << SHARD_BITS) | np.asarray(row, dtype=np.int64)


def owner_of(docs: np.ndarray) -> np.ndarray:
    """The shard of each document number."""
    return np.asarray(docs, dtype=np.int64) >> SHARD_BITS


# ----------------------------------------------------------------------------- layout

@dataclass(frozen=True)
class Layout:
    """Where every step reads and writes, and how the corpus is partitioned."""

    work: str
    shards: int          # S: owners of document numbers
    parts: int           # P: key partitions (and components partitions)
    groups: int = 1      # G: contiguous shard ranges; each group task carries its own

    def sketch(self, shard: int) -> str:
        return join(self.work, "sketch", f"{shard:06d}.npz")

    def keys(self, group: int) -> str:
        return join(self.work, "keys", f"{group:06d}.part")

    def edges(self, name: str, part: int) -> str:
        return join(self.work, "edges", f"{name}-{part:06d}.part")

    def needs(self, part: int) -> str:
        return join(self.work, "needs", f"{part:06d}.part")

    def buckets(self, part: int) -> str:
        return join(self.work, "buckets", f"{part:06d}.part")

    def shingles(self, shard: int) -> str:
        return join(self.work, "shingles", f"{shard:06d}.part")

    def pairs(self, part: int) -> str:
        return join(self.work, "pairs", f"{part:06d}.part")

    def verdicts(self, part: int) -> str:
        return join(self.work, "verdicts", f"{part:06d}.part")

    def shingled(self, shard: int) -> str:
        return join(self.work, "shingles", f"{shard:06d}.docs")

    def claims(self, group: int) -> str:
        return join(self.work, "claims", f"{group:06d}.part")

    def removals(self, group: int) -> str:
        return join(self.work, "removals", f"{group:06d}.part")



def _span_name(span: tuple[int, int]) -> str:
    return f"shards {span[0]}..{span[1] - 1}"


def shard_groups(rows: Sequence[int], docs_per_group: int) -> tuple[tuple[int, int], ...]:
    """Contiguous shard ranges of about ``docs_per_group`` documents each (at least one shard)."""
    groups, lo, total = [], 0, 0
    for shard, n in enumerate(rows):
        if shard > lo and total + n > docs_per_group:
            groups.append((lo, shard))
            lo, total = shard, 0
        total += n
    groups.append((lo, len(rows)))
    return tuple(groups)


def keys_per_doc(params: Dedup) -> int:
    return 1 + (params.minhash.bands if params.minhash.enabled else 0)


# ----------------------------------------------------------------------------- 1. keys

@dataclass(frozen=True)
class KeysTask:
    """Step 1 for one group of shards: sketch each and write the group's keys, partitioned
    (one file per group, so a bucket task reads as many files as there are groups)."""

    group: int
    span: tuple[int, int]              # the group's shards [lo, hi)
    sketches: tuple[SketchTask, ...]   # the group's shards, in order
    scopes: tuple[int, ...]
    layout: Layout

    @property
    def name(self) -> str:
        return _span_name(self.span)


@dataclass(frozen=True)
class GroupKeys:
    rows: tuple[int, ...]    # documents of each shard of the group
    reused: int              # shards whose sketch came from the cache


def keys_task(task: KeysTask) -> GroupKeys:
    lo, _ = task.span
    records, rows, reused = [], [], 0
    for shard, (sketch_of, scope) in enumerate(zip(task.sketches, task.scopes), start=lo):
        sketch, hit = sketch_task(sketch_of)
        put_bytes(task.layout.sketch(shard), sketch.to_bytes())
        records.append(shard_keys(sketch, shard, scope))
        rows.append(len(sketch))
        reused += hit
    keys = np.concatenate(records + [np.empty(0, KEYS)])
    bucket_hash = mix_columns(keys["kind"], keys["k1"], keys["k2"], keys["scope"])
    write_partitioned(task.layout.keys(task.group), keys, partition_of(bucket_hash, task.layout.parts),
                      task.layout.parts)
    return GroupKeys(rows=tuple(rows), reused=reused)


def shard_keys(sketch: ShardSketch, shard: int, scope: int) -> np.ndarray:
    """Every key of every document of one sketch as KEYS records."""
    docs = doc_number(shard, np.arange(len(sketch)))
    d0, d1 = sketch.digests[:, 0], sketch.digests[:, 1]
    parts = []
    exact = np.flatnonzero(sketch.has_digest)
    parts.append(_key_records(docs[exact], EXACT_KIND, d0[exact], d1[exact], d0[exact], d1[exact], scope))
    signed = np.flatnonzero(sketch.has_signature)
    # A text without a digest has no words and so no signature; a signature without a
    # digest cannot happen, but such a document would be its own text.
    t0 = np.where(sketch.has_digest, d0, docs.astype(np.uint64))
    t1 = np.where(sketch.has_digest, d1, np.uint64(0xFFFFFFFFFFFFFFFF))
    for band in range(sketch.band_keys.shape[1]):
        keys = sketch.band_keys[signed, band]
        parts.append(_key_records(docs[signed], band + 1, keys, np.zeros_like(keys),
                                  t0[signed], t1[signed], scope))
    return np.concatenate(parts) if parts else np.empty(0, KEYS)


def _key_records(docs: np.ndarray, kind: int, k1: np.ndarray, k2: np.ndarray,
                 d0: np.ndarray, d1: np.ndarray, scope: int) -> np.ndarray:
    r = np.empty(len(docs), KEYS)
    r["scope"], r["kind"], r["k1"], r["k2"] = scope, kind, k1, k2
    r["doc"], r["d0"], r["d1"] = docs, d0, d1
    return r


# ----------------------------------------------------------------------------- 2. buckets

@dataclass(frozen=True)
class BucketTask:
    """Step 2 for one key partition."""

    part: int
    layout: Layout
    exact: bool
    verify: bool

    @property
    def name(self) -> str:
        return f"key partition {self.part}"


def bucket_task(task: BucketTask) -> dict[str, int]:
    layout = task.layout
    r = np.concatenate([read_partition(layout.keys(g), KEYS, task.part) for g in range(layout.groups)]
                       + [np.empty(0, KEYS)])
    r = r[np.lexsort((r["doc"], r["k2"], r["k1"], r["kind"], r["scope"]))]
    same = np.ones(max(len(r) - 1, 0), dtype=bool)
    for name in ("scope", "kind", "k1", "k2"):
        same &= r[name][1:] == r[name][:-1]
    exact_kind = r["kind"][1:] == EXACT_KIND
    chain = same & (exact_kind if task.exact else np.zeros_like(same))
    links = {"exact": int(chain.sum()), "minhash": 0}
    band_pair = same & ~exact_kind
    if not task.verify:
        links["minhash"] = int(band_pair.sum())
        chain |= band_pair
    edges = [_pairs(r["doc"][:-1][chain], r["doc"][1:][chain])]
    stats = {"keys": len(r), "verify_buckets": 0}
    if task.verify:
        same_text_edges, buckets = _verify_buckets(r, band_pair)
        edges.append(same_text_edges)
        _write_verify_inputs(layout, task.part, buckets)
        stats["verify_buckets"] = int(len(np.unique(buckets["bucket"]))) if len(buckets) else 0
    _write_edges(layout.edges("keys", task.part), np.concatenate(edges), layout.parts)
    return {**stats, **{f"links_{k}": v for k, v in links.items()}}


def _pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    e = np.empty(len(a), EDGES)
    e["a"], e["b"] = a, b
    return e


def _write_edges(url: str, edges: np.ndarray, parts: int) -> None:
    write_partitioned(url, edges, partition_of(edges["a"].astype(np.uint64), parts), parts)


def _runs(same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of every run of two or more records that are ``same`` as the previous."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], same, [False]]).astype(np.int8)))
    return edges[0::2], edges[1::2] + 1


def _verify_buckets(r: np.ndarray, band_pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chain edges among equal texts of each band bucket, and the buckets of two or more
    texts as BUCKETS records (one record per text: its first member)."""
    lo, hi = _runs(band_pair)
    if not len(lo):
        return np.empty(0, EDGES), np.empty(0, BUCKETS)
    sizes = hi - lo
    bucket = np.repeat(np.arange(len(lo)), sizes)
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())])
    members = r[idx]
    # within a bucket: by text, then corpus order, so each text's first member leads its run
    order = np.lexsort((members["doc"], members["d1"], members["d0"], bucket))
    members, bucket = members[order], bucket[order]
    same_text = (bucket[1:] == bucket[:-1]) & (members["d0"][1:] == members["d0"][:-1]) \
        & (members["d1"][1:] == members["d1"][:-1])
    text_edges = _pairs(members["doc"][:-1][same_text], members["doc"][1:][same_text])
    lead = np.concatenate([[True], ~same_text])
    texts = np.bincount(bucket[lead], minlength=len(lo))
    keep = lead & (texts[bucket] > 1)
    out = np.empty(int(keep.sum()), BUCKETS)
    out["bucket"], out["doc"] = bucket[keep], members["doc"][keep]
    out["d0"], out["d1"] = members["d0"][keep], members["d1"][keep]
    return text_edges, out


def _write_verify_inputs(layout: Layout, part: int, buckets: np.ndarray) -> None:
    write_partitioned(layout.buckets(part), buckets, np.zeros(len(buckets), np.int64), 1)
    docs = np.unique(buckets["doc"])
    needs = np.empty(len(docs), NEEDS)
    needs["doc"], needs["part"] = docs, part
    write_partitioned(layout.needs(part), needs, owner_of(docs), layout.shards)
    stars = _star_pairs(buckets, part)
    write_partitioned(layout.pairs(part), stars, partition_of(
        mix_columns(stars["a0"], stars["a1"], stars["b0"], stars["b1"]), layout.parts), layout.parts)


def _star_pairs(buckets: np.ndarray, part: int) -> np.ndarray:
    """Each bucket's first text (corpus order) paired with each of its other texts: the
    comparisons verification starts with, which a bucket of near copies needs alone."""
    buckets = buckets[np.lexsort((buckets["doc"], buckets["bucket"]))]
    first = np.ones(len(buckets), dtype=bool)
    first[1:] = buckets["bucket"][1:] != buckets["bucket"][:-1]
    lead = buckets[np.flatnonzero(first)[np.cumsum(first) - 1]]
    lead, other = lead[~first], buckets[~first]
    swap = (lead["d0"] > other["d0"]) | ((lead["d0"] == other["d0"]) & (lead["d1"] > other["d1"]))
    lo, hi = np.where(swap, other, lead), np.where(swap, lead, other)
    pairs = np.empty(len(lo), PAIRS)
    pairs["a0"], pairs["a1"], pairs["doc_a"] = lo["d0"], lo["d1"], lo["doc"]
    pairs["b0"], pairs["b1"], pairs["doc_b"] = hi["d0"], hi["d1"], hi["doc"]
    pairs["part"] = part
    return pairs


# ----------------------------------------------------------------------------- 3b. pairs

@dataclass(frozen=True)
class PairTask:
    """Step 3b for one pair partition: the verdict on each distinct pair of texts once,
    sent back to every key partition that asked (a pair of near copies shares several
    bands, whose buckets land in different key partitions)."""

    part: int
    layout: Layout
    threshold: float

    @property
    def name(self) -> str:
        return f"pair partition {self.part}"


def pair_task(task: PairTask) -> dict[str, int]:
    layout = task.layout
    asked = np.concatenate([read_partition(layout.pairs(p), PAIRS, task.part) for p in range(layout.parts)]
                           + [np.empty(0, PAIRS)])
    asked = asked[np.lexsort((asked["part"], asked["b1"], asked["b0"], asked["a1"], asked["a0"]))]
    new_pair = _any_change(asked, ("a0", "a1", "b0", "b1"))
    store = ShingleStore(layout)
    heads = np.flatnonzero(new_pair)
    ok = np.array([exact_jaccard(store.get(int(asked["doc_a"][i])), store.get(int(asked["doc_b"][i])))
                   >= task.threshold for i in heads.tolist()], dtype=np.uint64)
    answers = _any_change(asked, ("a0", "a1", "b0", "b1", "part"))
    out = np.empty(int(answers.sum()), VERDICTS)
    for name in ("a0", "a1", "b0", "b1"):
        out[name] = asked[name][answers]
    out["ok"] = ok[(np.cumsum(new_pair) - 1)[answers]] if len(ok) else 0
    write_partitioned(layout.verdicts(task.part), out, asked["part"][answers], layout.parts)
    return {"pairs_checked": len(heads), "pairs_accepted": int(ok.sum()), "documents_read": len(store.read)}


def _any_change(records: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """For sorted records: True where any of ``names`` differs from the previous record."""
    change = np.zeros(len(records), dtype=bool)
    change[:1] = True
    for name in names:
        change[1:] |= records[name][1:] != records[name][:-1]
    return change


# ----------------------------------------------------------------------------- 3. shingles

@dataclass(frozen=True)
class ShingleTask:
    """Step 3 for one group of shards: shingle sets of the requested documents."""

    group: int
    span: tuple[int, int]
    paths: tuple[str, ...]       # the group's shards, in order
    layout: Layout
    params: Any                  # MinHashParams
    batch_docs: int

    @property
    def name(self) -> str:
        return _span_name(self.span)


def shingle_task(task: ShingleTask) -> dict[str, int]:
    """Per shard of the group that was asked for shingles: one file holding each requested
    document's sorted shingle hashes as its own partition (so a verify task reads one
    document with one range read) and the sorted list of those documents. The task holds
    one shard's requested shingles at a time."""
    layout = task.layout
    lo, hi = task.span
    needs = np.concatenate([read_partitions(layout.needs(p), NEEDS, lo, hi) for p in range(layout.parts)]
                           + [np.empty(0, NEEDS)])
    docs = np.unique(needs["doc"])
    owners = owner_of(docs)
    hasher = MinHasher.from_params(task.params)
    for shard in np.unique(owners).tolist():
        mine = docs[owners == shard]
        write_partitioned(layout.shingles(shard), *_shingle_records(hasher, task.paths[shard - lo],
                                                                    task.batch_docs, mine), len(mine))
        put_bytes(layout.shingled(shard), mine.astype("<i8").tobytes())
    return {"documents": len(docs)}


def _shingle_records(hasher: MinHasher, path: str, batch_docs: int,
                     docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHINGLES records of ``docs`` (sorted numbers of one shard) and, for each record, the
    rank of its document (its partition)."""
    wanted = set((docs & ROW_MASK).tolist())
    by_row = {row: hasher.shingle_set(doc.text)
              for row, doc in enumerate(stream_documents(path, batch_docs)) if row in wanted}
    hashes = [by_row[row] for row in (docs & ROW_MASK).tolist()]
    sizes = np.array([len(h) for h in hashes], np.int64)
    records = np.empty(int(sizes.sum()), SHINGLES)
    records["doc"] = np.repeat(docs, sizes)
    records["hash"] = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    return records, np.repeat(np.arange(len(docs)), sizes)


# ----------------------------------------------------------------------------- 4. verify

@dataclass(frozen=True)
class VerifyTask:
    """Step 4 for one key partition."""

    part: int
    layout: Layout
    threshold: float

    @property
    def name(self) -> str:
        return f"key partition {self.part}"


def verify_task(task: VerifyTask) -> dict[str, int]:
    layout = task.layout
    buckets = read_partition(layout.buckets(task.part), BUCKETS, 0)
    buckets = buckets[np.lexsort((buckets["doc"], buckets["bucket"]))]   # each bucket in corpus order
    store = ShingleStore(layout)
    verdicts = Verdicts(_known_verdicts(layout, task.part))
    star = verdicts.many(_with_first(buckets))
    a, b = array("q"), array("q")
    for lo, hi in _bucket_bounds(buckets["bucket"]):
        _verified_links(buckets[lo:hi], star[lo:hi].tolist(), store.get, verdicts, task.threshold, (a, b))
    edges = _pairs(np.frombuffer(a, np.int64), np.frombuffer(b, np.int64))
    _write_edges(layout.edges("verify", task.part), edges, layout.parts)
    return {"pairs_checked": len(verdicts.checked), "pairs_accepted": sum(verdicts.checked.values()),
            "documents_read": len(store.read)}


def _with_first(buckets: np.ndarray) -> np.ndarray:
    """PAIR of each text (BUCKETS sorted by bucket, then corpus order) with its bucket's
    first text: the pairs verification starts with, which :func:`_star_pairs` asked about."""
    first = np.ones(len(buckets), dtype=bool)
    first[1:] = buckets["bucket"][1:] != buckets["bucket"][:-1]
    lead = np.flatnonzero(first)[np.cumsum(first) - 1]
    d0, d1 = buckets["d0"], buckets["d1"]
    own = np.arange(len(buckets))
    swap = (d0[lead] > d0) | ((d0[lead] == d0) & (d1[lead] > d1))
    lo, hi = np.where(swap, own, lead), np.where(swap, lead, own)
    pairs = np.empty(len(buckets), PAIR)
    pairs["a0"], pairs["a1"], pairs["b0"], pairs["b1"] = d0[lo], d1[lo], d0[hi], d1[hi]
    return pairs


def _known_verdicts(layout: Layout, part: int) -> np.ndarray:
    """The pair tasks' verdicts on this partition's first-text pairs (VERDICTS records)."""
    return np.concatenate([read_partition(layout.verdicts(q), VERDICTS, part) for q in range(layout.parts)]
                          + [np.empty(0, VERDICTS)])


class Verdicts:
    """Verdicts on pairs of texts ``(a0, a1, b0, b1)``: the pair tasks' (``known``
    VERDICTS records) and the ones this task computes (:attr:`checked`).

    The known ones stay numpy records, sorted and looked up by binary search: a bucket
    of thousands of near copies (a template family, a share of the corpus) brings a
    verdict per member, and as Python tuples in a dict each would cost ~300 bytes
    instead of 40, so a verify task's memory would grow with the largest family. The
    computed ones are few (pairs beyond each bucket's first text) and stay a dict."""

    def __init__(self, known: np.ndarray) -> None:
        known = known[np.lexsort((known["b1"], known["b0"], known["a1"], known["a0"]))]
        self.pairs = np.empty(len(known), PAIR)
        for name in ("a0", "a1", "b0", "b1"):
            self.pairs[name] = known[name]
        self.ok = known["ok"] != 0
        self.checked: dict[tuple[int, int, int, int], bool] = {}

    def many(self, pairs: np.ndarray) -> np.ndarray:
        """int8 per PAIR record: 1 or 0 for a known verdict, -1 for a pair not known."""
        if not len(self.pairs):
            return np.full(len(pairs), -1, np.int8)
        at = np.minimum(np.searchsorted(self.pairs, pairs), len(self.pairs) - 1)
        return np.where(self.pairs[at] == pairs, self.ok[at], -1).astype(np.int8)

    def get(self, pair: tuple[int, int, int, int]) -> bool | None:
        """The verdict on ``pair`` if known or checked here, else None."""
        at = int(np.searchsorted(self.pairs, np.array(pair, PAIR)))
        if at < len(self.pairs) and self.pairs[at].tolist() == pair:
            return bool(self.ok[at])
        return self.checked.get(pair)


class ShingleStore:
    """Shingle sets of requested documents, read one document at a time from its shard's
    file (step 3) when a comparison needs it, and kept in a least-recently-used cache of
    at most ``budget`` bytes: a verify task's memory does not grow with its buckets."""

    def __init__(self, layout: Layout, budget: int | None = None) -> None:
        self.layout = layout
        self.budget = SHINGLE_CACHE_BYTES if budget is None else budget
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.index: dict[int, np.ndarray] = {}
        self.size = 0
        self.read: set[int] = set()

    def get(self, doc: int) -> np.ndarray:
        if doc in self.cache:
            self.cache.move_to_end(doc)
            return self.cache[doc]
        shard = doc >> SHARD_BITS
        if shard not in self.index:
            self.index[shard] = np.frombuffer(get_bytes(self.layout.shingled(shard)), dtype="<i8")
        rank = int(np.searchsorted(self.index[shard], doc))
        hashes = read_partition(self.layout.shingles(shard), SHINGLES, rank)["hash"]
        self.read.add(doc)
        self.cache[doc] = hashes
        self.size += hashes.nbytes
        while self.size > self.budget and len(self.cache) > 1:
            self.size -= self.cache.popitem(last=False)[1].nbytes
        return hashes


def _bucket_bounds(bucket: np.ndarray) -> list[tuple[int, int]]:
    if not len(bucket):
        return []
    cuts = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
    return list(zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(bucket)]]).tolist()))


def _verified_links(texts: np.ndarray, star: list[int], shingles: Callable[[int], np.ndarray],
                    verdicts: Verdicts, threshold: float, out: tuple[array, array]) -> None:
    """Links among one bucket's texts (in corpus order) whose exact Jaccard reaches the
    threshold, appended to ``out`` (the linked documents' numbers: first ends, second ends).
    ``star[k]``: the known verdict on text k with the first text (-1: not known).

    Texts are taken in corpus order; each is compared with the members of every earlier
    cluster until one matches (then the clusters merge), so it joins every cluster the
    all-pairs graph would join it to, while a bucket of near-identical texts costs one
    comparison per text (with the first member), not one per pair. Members are kept as
    machine integers (``array``), so a bucket of thousands costs bytes per text.
    """
    docs, d0, d1 = texts["doc"], texts["d0"], texts["d1"]

    def verdict(i: int, k: int) -> bool:
        if i == 0 and star[k] >= 0:
            return star[k] == 1
        x, y = (int(d0[i]), int(d1[i])), (int(d0[k]), int(d1[k]))
        pair = (*min(x, y), *max(x, y))
        ok = verdicts.get(pair)
        if ok is None:
            ok = exact_jaccard(shingles(int(docs[i])), shingles(int(docs[k]))) >= threshold
            verdicts.checked[pair] = ok
        return ok

    clusters: dict[int, array] = {}
    for k in range(len(docs)):
        joined = None
        for c in list(clusters):
            match = next((i for i in clusters[c] if verdict(i, k)), None)
            if match is None:
                continue
            out[0].append(int(docs[match]))
            out[1].append(int(docs[k]))
            if joined is None:
                clusters[c].append(k)
                joined = c
            else:
                clusters[joined].extend(clusters.pop(c))
        if joined is None:
            clusters[k] = array("q", [k])


# ----------------------------------------------------------------------------- 6. reasons

@dataclass(frozen=True)
class ClaimTask:
    """Step 6a for one group of shards: their removed documents, sent to their roots' shards."""

    group: int
    span: tuple[int, int]
    slices: tuple[int, ...]        # slice index of each shard of the span
    layout: Layout
    final: tuple[str, ...]         # label files of all passes
    first: tuple[str, ...] = ()    # label files before the semantic pass (none: the same)

    @property
    def name(self) -> str:
        return _span_name(self.span)


def claim_task(task: ClaimTask) -> dict[str, int]:
    layout = task.layout
    lo, hi = task.span
    final = _labels(task.final, lo, hi)
    first_roots = _roots_in(_labels(task.first, lo, hi), final["node"]) if task.first else final["root"]
    flags = np.where(first_roots == final["root"], FIRST_STAGE, 0).astype(np.uint64)
    _, d0, d1, has = _doc_facts(layout, final["node"])
    claims = np.empty(len(final), CLAIMS)
    claims["doc"], claims["root"], claims["d0"], claims["d1"] = final["node"], final["root"], d0, d1
    claims["flags"] = flags | np.where(has, HAS_DIGEST, 0).astype(np.uint64)
    claims["slice"] = np.asarray(task.slices, np.int64)[owner_of(final["node"]) - lo] if len(final) else 0
    write_partitioned(layout.claims(task.group), claims, owner_of(claims["root"]), layout.shards)
    return {"semantic_moved": int((flags & FIRST_STAGE == 0).sum())}


def _labels(urls: Sequence[str], lo: int, hi: int) -> np.ndarray:
    found = [read_partitions(url, LABELS, lo, hi) for url in urls]
    labels = np.concatenate(found + [np.empty(0, LABELS)])
    return labels[np.argsort(labels["node"], kind="stable")]


def _roots_in(labels: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The root of each node under ``labels`` (sorted by node); unlabelled nodes are roots."""
    roots = nodes.copy()
    if len(labels):
        at = np.minimum(np.searchsorted(labels["node"], nodes), len(labels) - 1)
        hit = labels["node"][at] == nodes
        roots[hit] = labels["root"][at[hit]]
    return roots


@dataclass(frozen=True)
class ResolveTask:
    """Step 6b for one group of shards: the kept documents' ids, the reasons, cluster counts."""

    group: int
    span: tuple[int, int]
    slices: tuple[int, ...]        # slice index of each shard of the span
    names: int                     # how many slices the corpus has
    layout: Layout

    @property
    def name(self) -> str:
        return _span_name(self.span)


def resolve_task(task: ResolveTask) -> dict[str, Any]:
    layout = task.layout
    lo, hi = task.span
    claims = np.concatenate([read_partitions(layout.claims(g), CLAIMS, lo, hi)
                             for g in range(layout.groups)] + [np.empty(0, CLAIMS)])
    claims = claims[np.lexsort((claims["doc"], claims["root"]))]
    root_ids, r0, r1, r_has = _doc_facts(layout, claims["root"])
    has = (claims["flags"] & HAS_DIGEST != 0) & r_has
    exact = has & (claims["d0"] == r0) & (claims["d1"] == r1)
    first = claims["flags"] & FIRST_STAGE != 0
    reason = np.where(exact, 0, np.where(first, 1, 2))
    write_partitioned(layout.removals(task.group), _removal_records(claims["doc"], reason, root_ids),
                      owner_of(claims["doc"]), layout.shards)
    root_slices = np.asarray(task.slices, np.int64)[owner_of(claims["root"]) - lo]
    return _cluster_counts(claims["root"], claims["slice"], root_slices, task.names)


def _doc_facts(layout: Layout, roots: np.ndarray) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Id (UTF-8), text digest and whether it has one, of each document, from the
    sketches of their shards."""
    ids: list[bytes] = [b""] * len(roots)
    d0, d1 = np.zeros(len(roots), np.uint64), np.zeros(len(roots), np.uint64)
    has = np.zeros(len(roots), bool)
    owners, rows = owner_of(roots), roots & ROW_MASK
    for shard in np.unique(owners).tolist():
        sketch = ShardSketch.from_bytes(get_bytes(layout.sketch(shard)))
        at = np.flatnonzero(owners == shard)
        r = rows[at]
        d0[at], d1[at], has[at] = sketch.digests[r, 0], sketch.digests[r, 1], sketch.has_digest[r]
        for i, row in zip(at.tolist(), r.tolist()):
            ids[i] = sketch.ids[row].encode("utf-8")
    return ids, d0, d1, has


def _removal_dtype(width: int) -> np.dtype:
    return np.dtype([("doc", "<i8"), ("reason", "<i8"), ("length", "<i8"), ("kept", f"S{width}")])


def _removal_records(docs: np.ndarray, reason: np.ndarray, kept: list[bytes]) -> np.ndarray:
    width = max([len(k) for k in kept] + [1])
    out = np.empty(len(docs), _removal_dtype(width))
    out["doc"], out["reason"] = docs, reason
    out["length"] = [len(k) for k in kept]
    out["kept"] = kept
    return out


def _cluster_counts(roots: np.ndarray, member_slice: np.ndarray, root_slices: np.ndarray,
                    names: int) -> dict[str, Any]:
    """Cluster statistics of the clusters whose roots this task resolved (claims sorted by
    root; the slice of each removed member and of each claim's root)."""
    if not len(roots):
        return {"clusters": 0, "documents": 0, "largest": 0, "cross_slice": 0, "kept_slices": [0] * names}
    cuts = np.flatnonzero(roots[1:] != roots[:-1]) + 1
    heads = np.concatenate([[0], cuts])
    sizes = np.diff(np.concatenate([heads, [len(roots)]])) + 1
    root_slice = root_slices[heads]
    lo = np.minimum(np.minimum.reduceat(member_slice, heads), root_slice)
    hi = np.maximum(np.maximum.reduceat(member_slice, heads), root_slice)
    return {"clusters": len(heads), "documents": int(sizes.sum()), "largest": int(sizes.max()),
            "cross_slice": int((lo != hi).sum()),
            "kept_slices": np.bincount(root_slice, minlength=names).tolist()}


def removals_of(layout: Layout, shard: int) -> dict[int, Removal]:
    """row -> (id, reason, kept id) of every removed document of ``shard`` (step 7's input)."""
    sketch = ShardSketch.from_bytes(get_bytes(layout.sketch(shard)))
    out: dict[int, Removal] = {}
    for g in range(layout.groups):
        url = layout.removals(g)
        records = read_partition(url, _removal_dtype(record_size(url) - 24), shard)
        for doc, reason, length, kept in zip(records["doc"].tolist(), records["reason"].tolist(),
                                             records["length"].tolist(), records["kept"].tolist()):
            row = doc & ROW_MASK
            out[row] = (sketch.ids[row], REASON_CODES[reason], kept.ljust(length, b"\0").decode("utf-8"))
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- semantic

@dataclass
class SemanticLinks:
    """The semantic pass of the plan (:data:`SemanticEdges`): SemDeDup among the
    documents the exact and MinHash components keep, as one more edge file.

    Every step is a map of tasks through ``mapper`` (:mod:`redrobe.dedup.semantic_tasks`)
    writing under the plan's work directory (``layout.work``/semantic). ``on_shard(n)``
    reports the documents embedded per shard once they all are.
    """

    params: DedupSemantic
    paths: tuple[str, ...]
    cross_slice: bool
    batch_docs: int = 256
    encoder: Encoder | None = None
    on_shard: Callable[[int], None] | None = None
    mapper: Mapper = serial_map
    slices: tuple[str, ...] = ()   # each shard's slice (a language partition's base slice)

    def __call__(self, layout: Layout, labels: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        encoder = self.encoder or Encoder(batch_size=self.params.batch_size, threads=self.params.threads,
                                          device=self.params.device)
        work = join(layout.work, "semantic")
        slices = list(self.slices) or [slice_of(p) for p in self.paths]
        files = encode_corpus(self.paths, slices, labels, self.params, work, self.batch_docs, encoder,
                              self.mapper)
        if self.on_shard is not None:
            for count in files.counts:
                self.on_shard(count)
        names = sorted(set(slices))
        scopes = tuple(0 if self.cross_slice else names.index(name) for name in slices)
        url = layout.edges("semantic", 0)
        return url, semantic_edges(files, scopes, self.params, work, url, layout.parts, self.mapper)


# ----------------------------------------------------------------------------- driver

@dataclass(frozen=True)
class PartitionedPlan:
    """What the write tasks need (``layout``) and the statistics for the metrics."""

    layout: Layout
    rows: tuple[int, ...]
    reused: int
    clusters: dict[str, Any]
    semantic: dict[str, Any] = field(default_factory=dict)
    scratch_bytes: int = 0      # what the plan left under its work directory


def plan_partitioned(paths: Sequence[str], params: Dedup, work: str, mapper: Mapper,
                     batch_docs: int = 256, cache: Any = None, rows_hint: Sequence[int] = (),
                     semantic: SemanticEdges | None = None,
                     slices_of: Sequence[str] = ()) -> PartitionedPlan:
    """Cluster the shards ``paths`` (corpus order) with partitioned tasks under ``work``.

    ``rows_hint``: documents per shard if known (sizes the partitions; counted otherwise
    from Parquet footers). ``semantic(layout, labels)``, given the label files of the
    exact and MinHash components, returns a file of semantic edges and their statistics.
    ``slices_of``: each shard's slice (the base slice of a language partition: without
    ``cross_slice`` the language partitions of a slice are deduplicated together); by
    default the folder a shard is in.
    """
    shard_slices = list(slices_of) or [slice_of(p) for p in paths]
    names = sorted(set(shard_slices))
    slices = tuple(names.index(name) for name in shard_slices)
    scopes = (0,) * len(paths) if params.cross_slice else slices
    rows = list(rows_hint) if rows_hint else shard_rows(paths)
    per_doc = keys_per_doc(params)
    spans = shard_groups(rows, max(1, params.partition_keys // per_doc))
    layout = Layout(work, len(paths), max(1, math.ceil(sum(rows) * per_doc / params.partition_keys)),
                    len(spans))
    # Every map's results are reduced as soon as it ends: workers of later maps are forked
    # from this process, so what it keeps per task is in every one of them.
    sketched, reused = _sketched_rows(mapper(keys_task, [
        KeysTask(g, (lo, hi), tuple(SketchTask(str(p), params, batch_docs, cache) for p in paths[lo:hi]),
                 scopes[lo:hi], layout) for g, (lo, hi) in enumerate(spans)]))
    edge_files, clusters = _link(layout, spans, tuple(map(str, paths)), params, mapper, batch_docs)
    cc = _components(layout, edge_files, "components", params.partition_keys, mapper)
    final, first = cc.label_urls, ()
    semantic_stats: dict[str, Any] = {}
    if semantic is not None:
        extra, semantic_stats = semantic(layout, cc.label_urls)
        first, final = final, _components(layout, edge_files + [extra], "components-all",
                                          params.partition_keys, mapper).label_urls
    moved = _sums(mapper(claim_task, [ClaimTask(g, (lo, hi), slices[lo:hi], layout, final, first)
                                      for g, (lo, hi) in enumerate(spans)]))
    counts = _merge_counts(mapper(resolve_task, [ResolveTask(g, (lo, hi), slices[lo:hi], len(names), layout)
                                                 for g, (lo, hi) in enumerate(spans)]), names)
    if semantic is not None:
        clusters["links"]["semantic"] = semantic_stats.get("pairs", 0)
        semantic_stats = {**semantic_stats, "removed": moved["semantic_moved"]}
    return PartitionedPlan(layout, sketched, reused, {**counts, **clusters}, semantic_stats,
                           scratch_bytes(work))


def _sketched_rows(keys: list[GroupKeys]) -> tuple[tuple[int, ...], int]:
    """Documents of every shard, and how many shards reused a cached sketch."""
    return tuple(n for k in keys for n in k.rows), sum(k.reused for k in keys)


def _sums(results: Sequence[dict[str, int]]) -> dict[str, int]:
    """The tasks' counters added up (every task returns the same keys)."""
    return {k: sum(r[k] for r in results) for k in results[0]} if results else {}


def scratch_bytes(work: str) -> int:
    """Bytes under the plan's work directory (all it wrote, but the rounds of connected
    components, which are removed as they go, at most two rounds of edges at a time)."""
    path = local_path(work)
    if path is not None:
        return _tree_bytes(path) if os.path.isdir(path) else 0
    fs, path = fsspec.core.url_to_fs(work)
    return int(fs.du(path)) if fs.exists(path) else 0


def _tree_bytes(folder: str) -> int:
    """Bytes of the files under a local folder, one directory entry at a time: ``fs.du``
    lists every file's details at once (about 1 KB each, thousands of files), memory
    freed afterwards but left fragmented in the driver the write tasks are forked from."""
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_bytes(entry.path)
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def _components(layout: Layout, edge_files: list[str], name: str, partition_keys: int,
                mapper: Mapper) -> Any:
    """Connected components on as many partitions as the edges need (duplicates are a
    small share of the keys, so usually far fewer than the key partitions)."""
    edges = sum(int(partition_sizes(url, EDGES).sum()) for url in edge_files)
    parts = max(1, min(layout.parts, math.ceil(2 * edges / partition_keys)))
    return connected_components(edge_files, join(layout.work, name), parts, layout.shards, mapper,
                                input_parts=layout.parts)


def _link(layout: Layout, spans: Sequence[tuple[int, int]], paths: tuple[str, ...], params: Dedup,
          mapper: Mapper, batch_docs: int) -> tuple[list[str], dict[str, Any]]:
    """Steps 2-4: the edge files, and the link counts for the metrics."""
    verify = params.minhash.enabled and params.minhash.verify
    parts = range(layout.parts)
    found = _sums(mapper(bucket_task, [BucketTask(p, layout, params.exact, verify) for p in parts]))
    links = {"exact": found.get("links_exact", 0), "minhash": found.get("links_minhash", 0)}
    edge_files = [layout.edges("keys", p) for p in parts]
    if not verify:
        return edge_files, {"links": links}
    mapper(shingle_task, [ShingleTask(g, (lo, hi), paths[lo:hi], layout, params.minhash, batch_docs)
                          for g, (lo, hi) in enumerate(spans)])
    judged = _sums(mapper(pair_task, [PairTask(p, layout, params.minhash.threshold) for p in parts]))
    verified = _sums(mapper(verify_task, [VerifyTask(p, layout, params.minhash.threshold) for p in parts]))
    stats = {k: judged[k] + verified[k] for k in verified}
    stats["pairs_rejected"] = stats["pairs_checked"] - stats["pairs_accepted"]
    links["minhash"] = stats["pairs_accepted"]
    return edge_files + [layout.edges("verify", p) for p in parts], {"links": links, "minhash_verify": stats}


def shard_rows(paths: Sequence[str]) -> list[int]:
    """Documents per shard by their footers; 1 for an unreadable one (only partition sizes
    and progress use these: the keys task reads the shard and names what is wrong)."""
    return [_count(p) for p in paths]


def _count(path: str) -> int:
    try:
        return count_documents(path)
    except (OSError, ValueError):
        return 1


def _merge_counts(counts: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    kept = np.zeros(len(names), np.int64)
    for c in counts:
        kept[:len(c["kept_slices"])] += np.asarray(c["kept_slices"], np.int64)
    return {"duplicate_clusters": sum(c["clusters"] for c in counts),
            "documents_in_clusters": sum(c["documents"] for c in counts),
            "largest_cluster": max([c["largest"] for c in counts] + [0]),
            "cross_slice_clusters": sum(c["cross_slice"] for c in counts),
            "by_kept_slice": {name: int(kept[k]) for k, name in enumerate(names)}}


# ----------------------------------------------------------------------------- 7. write

@dataclass(frozen=True)
class PlannedWrite:
    """Pass 2 for one shard, its removals read from the plan's files."""

    write: WriteTask
    layout: Layout
    shard: int

    @property
    def input(self) -> str:
        return self.write.input


def planned_write(task: PlannedWrite) -> Ledger:
    return write_shard(dataclasses.replace(task.write, removals=removals_of(task.layout, task.shard)))
