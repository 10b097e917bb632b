"""Semantic dedup (SemDeDup, :mod:`redrobe.dedup.semantic`) as partitioned tasks.

The same links as the one-process :func:`~redrobe.dedup.semantic.link_similar`, but no
process holds per-document state for the whole corpus: every step is a map of small
tasks that read and write files by URL under a work directory (local or fsspec).

1. **encode**, one task per shard of a semantic slice: the surviving documents' text
   views are embedded (batched on the GPU when ``device`` resolves to cuda) and written
   as raw ``(row, vec)`` records (:func:`embedding_records`) to one file per shard.
2. **k-means**: the seeded sample is read from the shard files and trained exactly as
   :func:`~redrobe.dedup.semantic.kmeans`, as a Lloyd loop of maps over sample windows
   and cluster ranges (:mod:`redrobe.dedup.kmeans_tasks`).
3. **assign**, one task per shard: every document's nearest centroid, written as
   MEMBERS records ``(cluster, doc, scope, vec)`` partitioned by cluster. Rows are
   assigned in the one-process blocks of ``block_docs`` (global row numbers): BLAS
   rounds a product differently for different shapes, so the same blocks give the same
   nearest centroid even for a near tie. A task takes the blocks that start in its shard.
4. **pairs**: clusters of at most ``BOUND_CLUSTERS x docs_per_cluster`` members are
   searched whole, several small ones per task; a larger one is first copied in corpus
   order to one file (**split**, streaming), then searched as block-pair tasks of at
   most ``PAIR_BLOCKS`` column blocks each. Blocks are the one-process blocks (so the
   pairs, and their count, are identical). Each task writes star edges of a local
   union-find (EDGES of :mod:`redrobe.dedup.components`); a last **gather** task
   copies them into the one edge file the plan reads.

The driver holds per-shard row counts and per-cluster sizes (summed from the MEMBERS
files' partition headers). A task holds at most one shard's embeddings (encode; assign:
plus less than one block of the next shards), one window of the k-means sample and the
centroids (k-means, see its module), ``BOUND_CLUSTERS x docs_per_cluster`` members (a
cluster task), one MEMBERS partition at a time (split) or ``(1 + PAIR_BLOCKS) x
block_docs`` members (a block task). The gather task holds the semantic star edges (at
most one per embedded document): the plan takes one edge file per pass.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np

from redrobe.config import DedupSemantic
from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.components import EDGES, OWNER_SHIFT, read_labels
from redrobe.dedup.kmeans_tasks import train_centroids
from redrobe.dedup.semantic import (
    Encoder,
    block_pairs,
    embed_documents,
    link_cluster,
    nearest_centroid,
    num_clusters,
)
from redrobe.errors import InputError
from redrobe.partfile import (
    get_bytes,
    join,
    partition_of,
    partition_sizes,
    put_bytes,
    read_all,
    read_partitions,
    write_partitioned,
)

Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Sequence[Any]]

#: clusters above BOUND_CLUSTERS x docs_per_cluster members are split into block tasks
BOUND_CLUSTERS = 4
#: column blocks one block task compares with its row block
PAIR_BLOCKS = 8
ROW_MASK = (1 << OWNER_SHIFT) - 1


def embedding_records(dim: int, dtype: str) -> np.dtype:
    """One embedded document of a shard file: its row in the shard and its unit vector."""
    return np.dtype([("row", "<i8"), ("vec", dtype, (dim,))])


def member_records(dim: int, dtype: str) -> np.dtype:
    """One document of a k-means cluster: cluster, document number, scope, vector."""
    return np.dtype([("cluster", "<i8"), ("doc", "<i8"), ("scope", "<i8"), ("vec", dtype, (dim,))])


def read_range(url: str, dtype: np.dtype, lo: int, hi: int) -> np.ndarray:
    """Records ``lo`` .. ``hi - 1`` of a raw record file (one seek and one read)."""
    with fsspec.open(url, "rb") as fh:
        fh.seek(lo * dtype.itemsize)
        data = fh.read((hi - lo) * dtype.itemsize)
    if len(data) != (hi - lo) * dtype.itemsize:
        raise InputError(f"{url}: records {lo}..{hi - 1} asked for, the file ends before")
    return np.frombuffer(data, dtype=dtype).copy()


# ----------------------------------------------------------------------------- embedding files

@dataclass(frozen=True)
class EmbeddingFiles:
    """Every embedded document, numbered 0..N-1 in (shard, row) order, in one file per shard.

    Shard ``s``'s file is :meth:`url` (none for a shard without embeddings). Nothing stays
    open: each read opens the file it needs. :meth:`rows` is that of
    :class:`~redrobe.dedup.semantic.EmbeddingStore`, so
    :func:`~redrobe.dedup.semantic.kmeans` trains on it unchanged.
    """

    root: str
    counts: tuple[int, ...]
    dim: int
    dtype: str
    first: int = 0               # a window (:meth:`window`): shard of counts[0] ...
    start: int = 0               # ... and number of its first document

    def url(self, s: int) -> str:
        """The file of the window's shard ``s`` (shard ``first + s`` of the corpus)."""
        return join(self.root, f"{self.first + s:06d}.rec")

    @property
    def records(self) -> np.dtype:
        return embedding_records(self.dim, self.dtype)

    @property
    def offsets(self) -> np.ndarray:
        return self.start + np.concatenate([[0], np.cumsum(self.counts, dtype=np.int64)]).astype(np.int64)

    def window(self, lo: int, hi: int) -> EmbeddingFiles:
        """Only the shards that hold documents ``lo`` .. ``hi - 1`` (what a task carries)."""
        offsets = self.offsets
        s0 = int(np.searchsorted(offsets, lo, side="right")) - 1
        s1 = int(np.searchsorted(offsets, hi, side="left"))
        return EmbeddingFiles(self.root, self.counts[s0:s1], self.dim, self.dtype, self.first + s0,
                              int(offsets[s0]))

    def __len__(self) -> int:
        return int(sum(self.counts))

    def rows(self, index: np.ndarray) -> np.ndarray:
        """(len(index), dim) float32 embeddings of the documents ``index`` (any order); reads
        one shard's span of ``index`` at a time."""
        out = np.empty((len(index), self.dim), dtype=np.float32)
        offsets = self.offsets
        shard = np.searchsorted(offsets, index, side="right") - 1
        for s in np.unique(shard).tolist():
            sel = np.flatnonzero(shard == s)
            local = index[sel] - offsets[s]
            lo = int(local.min())
            out[sel] = read_range(self.url(s), self.records, lo, int(local.max()) + 1)["vec"][local - lo]
        return out

    def read(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(document numbers, vectors as stored) of documents ``lo`` .. ``hi - 1``."""
        offsets = self.offsets
        docs, vecs = [np.empty(0, np.int64)], [np.empty((0, self.dim), self.dtype)]
        first = int(np.searchsorted(offsets, lo, side="right")) - 1
        for s in range(first, len(self.counts)):
            if offsets[s] >= hi:
                break
            a, b = max(lo, offsets[s]) - offsets[s], min(hi, offsets[s + 1]) - offsets[s]
            if b > a:
                r = read_range(self.url(s), self.records, int(a), int(b))
                docs.append((np.int64(self.first + s) << OWNER_SHIFT) | r["row"])
                vecs.append(r["vec"])
        return np.concatenate(docs), np.concatenate(vecs)


# ----------------------------------------------------------------------------- 1. encode

@dataclass(frozen=True)
class EncodeTask:
    """Step 1 for one shard: embed the documents no earlier pass removed."""

    input: str
    shard: int
    slice: str
    labels: tuple[str, ...]      # label files of the earlier passes (removed = labelled)
    output: str
    params: DedupSemantic
    batch_docs: int
    encoder: Encoder


def encode_task(task: EncodeTask) -> tuple[int, int]:
    """(documents embedded, dimension) of one shard, its records written to ``output``."""
    removed = frozenset((read_labels(task.labels, task.shard)["node"] & ROW_MASK).tolist())
    rows, _, emb = embed_documents(task.input, removed, task.slice, task.params, task.batch_docs,
                                   task.encoder)
    records = np.empty(len(rows), embedding_records(emb.shape[1], task.params.embedding_dtype))
    records["row"], records["vec"] = rows, emb
    put_bytes(task.output, records.tobytes())
    return len(rows), int(emb.shape[1])


def encode_corpus(paths: Sequence[str], slices: Sequence[str], labels: tuple[str, ...],
                  params: DedupSemantic, work: str, batch_docs: int, encoder: Encoder,
                  mapper: Mapper) -> EmbeddingFiles:
    """Step 1 over every shard of a slice in ``params.slices`` (others: no file, no rows)."""
    root = join(work, "embeddings")
    files = EmbeddingFiles(root, (), 0, params.embedding_dtype)
    tasks = [EncodeTask(str(p), s, name, labels, files.url(s), params, batch_docs, encoder)
             for s, (p, name) in enumerate(zip(paths, slices)) if name in params.slices]
    done = dict(zip((t.shard for t in tasks), mapper(encode_task, tasks)))
    dims = {dim for count, dim in done.values() if count}
    if len(dims) > 1:
        raise ValueError(f"embeddings of different dimensions {sorted(dims)}")
    return EmbeddingFiles(root, tuple(done.get(s, (0, 0))[0] for s in range(len(paths))),
                          dims.pop() if dims else 0, params.embedding_dtype)


# ----------------------------------------------------------------------------- 3. assign

@dataclass(frozen=True)
class AssignTask:
    """Step 3: documents ``lo`` .. ``hi - 1`` (whole blocks, the first in shard ``shard``)."""

    files: EmbeddingFiles
    shard: int
    lo: int
    hi: int
    k: int
    centroids: str               # '' when k == 1
    scopes: tuple[int, ...]      # scope of every shard of ``files``
    block: int
    output: str

    @property
    def name(self) -> str:
        return f"assignment of embeddings {self.lo}..{self.hi - 1} (shard {self.shard})"


def assign_task(task: AssignTask) -> int:
    centroids = np.load(io.BytesIO(get_bytes(task.centroids))) if task.centroids else None
    parts = []
    for start in range(task.lo, task.hi, task.block):
        docs, vecs = task.files.read(start, min(start + task.block, task.hi))
        r = np.empty(len(docs), member_records(task.files.dim, task.files.dtype))
        r["doc"], r["vec"] = docs, vecs
        r["scope"] = np.asarray(task.scopes, np.int64)[(docs >> OWNER_SHIFT) - task.files.first]
        if centroids is not None:   # the one-process arithmetic: the block as float32
            r["cluster"] = nearest_centroid(vecs.astype(np.float32), centroids, task.block)
        else:
            r["cluster"] = 0
        parts.append(r)
    records = np.concatenate(parts)
    write_partitioned(task.output, records, records["cluster"], task.k)
    return len(records)


def assign_tasks(files: EmbeddingFiles, k: int, centroids: str, scopes: tuple[int, ...], block: int,
                 work: str) -> list[AssignTask]:
    """One task per shard in which some block of ``block`` documents starts."""
    offsets, n = files.offsets, len(files)
    starts = (offsets + block - 1) // block * block          # first block start in each shard
    tasks: list[AssignTask] = []
    for s in range(len(files.counts)):
        lo, hi = int(starts[s]), int(min(starts[s + 1], n))
        if lo < hi:
            window = files.window(lo, hi)
            tasks.append(AssignTask(window, s, lo, hi, k, centroids,
                                    scopes[window.first:window.first + len(window.counts)], block,
                                    members_url(work, len(tasks))))
    return tasks


def members_url(work: str, task: int) -> str:
    """The MEMBERS file of assign task ``task`` (numbered 0.. in corpus order)."""
    return join(work, "members", f"{task:06d}.part")


# ----------------------------------------------------------------------------- 4. pairs

@dataclass(frozen=True)
class ClusterTask:
    """Step 4 for the clusters ``lo`` .. ``hi - 1`` (small ones): every pair inside each."""

    work: str                    # MEMBERS files of step 3: members_url(work, 0..files-1)
    files: int
    lo: int
    hi: int
    records: np.dtype
    threshold: float
    block: int
    output: str
    parts: int

    @property
    def name(self) -> str:
        return f"k-means clusters {self.lo}..{self.hi - 1}"


@dataclass(frozen=True)
class SplitTask:
    """Step 4a for one large cluster: its members in corpus order, as one raw record file."""

    work: str
    files: int
    cluster: int
    records: np.dtype
    output: str

    @property
    def name(self) -> str:
        return f"k-means cluster {self.cluster}"


@dataclass(frozen=True)
class BlockTask:
    """Step 4b for one large cluster: row block ``row`` against column blocks ``lo`` .. ``hi - 1``."""

    members: str                 # the cluster's file of step 4a
    size: int
    row: int
    lo: int
    hi: int
    records: np.dtype
    threshold: float
    block: int
    output: str
    parts: int

    @property
    def name(self) -> str:
        return f"{self.members} block {self.row} x blocks {self.lo}..{self.hi - 1}"


@dataclass(frozen=True)
class _Vectors:
    """Vectors in memory with the store's ``rows`` (float32 copies), for link_cluster."""

    vec: np.ndarray

    def rows(self, index: np.ndarray) -> np.ndarray:
        return self.vec[index].astype(np.float32)


def cluster_task(task: ClusterTask) -> int:
    r = np.concatenate([read_partitions(members_url(task.work, t), task.records, task.lo, task.hi)
                        for t in range(task.files)] + [np.empty(0, task.records)])
    r = r[np.lexsort((r["doc"], r["cluster"]))]              # by cluster, then corpus order
    uf, pairs = UnionFind(len(r)), 0
    cuts = np.flatnonzero(np.diff(r["cluster"])) + 1
    index = np.arange(len(r), dtype=np.int64)
    for members in np.split(index, cuts):
        if len(members) > 1:
            pairs += link_cluster(_Vectors(r["vec"]), members, r["scope"], task.threshold, task.block,
                                  uf, index)
    _write_stars(task.output, r["doc"], uf, task.parts)
    return pairs


def split_task(task: SplitTask) -> int:
    """Streams the cluster's partition of each MEMBERS file (shard order = corpus order)."""
    size = 0
    with fsspec.open(task.output, "wb") as out:
        for t in range(task.files):
            r = read_partitions(members_url(task.work, t), task.records, task.cluster, task.cluster + 1)
            out.write(r.tobytes())
            size += len(r)
    return size


def block_task(task: BlockTask) -> int:
    a = _block(task, task.row)
    a_vec = a["vec"].astype(np.float32)
    docs, edges, pairs = [a["doc"]], [], 0
    for j in range(task.lo, task.hi):
        b = a if j == task.row else _block(task, j)
        ra, cb = block_pairs(a_vec, b["vec"].astype(np.float32), a["scope"], b["scope"], task.threshold,
                             j == task.row)
        pairs += len(ra)
        edges.append(np.stack([a["doc"][ra], b["doc"][cb]], axis=1))
        if j != task.row:
            docs.append(b["doc"])
    nodes = np.concatenate(docs)
    e = np.concatenate(edges + [np.empty((0, 2), np.int64)])
    # a union-find over this task's documents: star edges, at most one per document
    uf = UnionFind(len(nodes))                # nodes: the blocks in order, so sorted
    uf.union_pairs(np.searchsorted(nodes, e[:, 0]), np.searchsorted(nodes, e[:, 1]))
    _write_stars(task.output, nodes, uf, task.parts)
    return pairs


def _block(task: BlockTask, j: int) -> np.ndarray:
    return read_range(task.members, task.records, j * task.block, min((j + 1) * task.block, task.size))


def _write_stars(url: str, docs: np.ndarray, uf: UnionFind, parts: int) -> None:
    """Each linked document's edge to its local root: the same components, fewer edges."""
    roots = uf.roots()
    moved = np.flatnonzero(roots != np.arange(len(roots)))
    write_edges(url, docs[moved], docs[roots[moved]], parts)


def write_edges(url: str, a: np.ndarray, b: np.ndarray, parts: int) -> None:
    """EDGES records (a, b) partitioned by ``a``, as every edge file of the plan."""
    e = np.empty(len(a), EDGES)
    e["a"], e["b"] = a, b
    write_partitioned(url, e, partition_of(e["a"].astype(np.uint64), parts), parts)


@dataclass(frozen=True)
class GatherTask:
    """Step 5: the edges of every pair task, as one edge file."""

    inputs: tuple[str, ...]
    output: str
    parts: int

    @property
    def name(self) -> str:
        return self.output


def gather_task(task: GatherTask) -> int:
    e = np.concatenate([read_all(url, EDGES) for url in task.inputs] + [np.empty(0, EDGES)])
    write_edges(task.output, e["a"], e["b"], task.parts)
    return len(e)


# ----------------------------------------------------------------------------- driver

def semantic_edges(files: EmbeddingFiles, scopes: tuple[int, ...], params: DedupSemantic, work: str,
                   output: str, parts: int, mapper: Mapper) -> dict[str, Any]:
    """Steps 2-5 over embedded shards: SemDeDup links as the EDGES file ``output``.

    ``scopes[s]`` keeps documents of shard ``s`` apart from other scopes. Returns the
    statistics of :func:`~redrobe.dedup.semantic.link_similar` (the same values).
    """
    n = len(files)
    k = num_clusters(n, params) if n else 0
    stats = {"embedded": n, "kmeans_clusters": k, "largest_kmeans_cluster": min(n, 1), "pairs": 0}
    if n < 2:
        mapper(gather_task, [GatherTask((), output, parts)])
        return stats
    centroids = join(work, "centroids.npy") if k > 1 else ""
    if centroids:
        train_centroids(files, k, params, join(work, "kmeans"), centroids, mapper)
    assigned = assign_tasks(files, k, centroids, scopes, params.block_docs, work)
    mapper(assign_task, assigned)
    records = member_records(files.dim, files.dtype)
    sizes = sum((partition_sizes(t.output, records) for t in assigned), np.zeros(k, np.int64))
    tasks = _pair_tasks(sizes, len(assigned), records, params, work, parts, mapper)
    pairs = mapper(_pairs_task, tasks)
    mapper(gather_task, [GatherTask(tuple(t.output for t in tasks), output, parts)])
    return {**stats, "largest_kmeans_cluster": int(sizes.max()), "pairs": int(sum(pairs))}


def _pairs_task(task: ClusterTask | BlockTask) -> int:
    return cluster_task(task) if isinstance(task, ClusterTask) else block_task(task)


def _pair_tasks(sizes: np.ndarray, members: int, records: np.dtype, params: DedupSemantic,
                work: str, parts: int, mapper: Mapper) -> list[ClusterTask | BlockTask]:
    """Cluster tasks over runs of small clusters; each large cluster split, then block tasks."""
    bound = BOUND_CLUSTERS * params.docs_per_cluster
    block, threshold = params.block_docs, params.threshold
    tasks: list[ClusterTask | BlockTask] = [
        ClusterTask(work, members, lo, hi, records, threshold, block, _edge_url(work, t), parts)
        for t, (lo, hi) in enumerate(_small_runs(sizes, bound))]
    split = [SplitTask(work, members, c, records, join(work, "clusters", f"{c:06d}.rec"))
             for c in np.flatnonzero(sizes > bound).tolist()]
    if split:
        mapper(split_task, split)
    for s in split:
        size = int(sizes[s.cluster])
        blocks = math.ceil(size / block)
        for i in range(blocks):
            for j in range(i, blocks, PAIR_BLOCKS):
                tasks.append(BlockTask(s.output, size, i, j, min(j + PAIR_BLOCKS, blocks), records, threshold,
                                       block, _edge_url(work, len(tasks)), parts))
    return tasks


def _small_runs(sizes: np.ndarray, bound: int) -> list[tuple[int, int]]:
    """Runs [lo, hi) of consecutive clusters of at most ``bound`` members in all (large
    clusters excluded), leaving out runs without a cluster of two or more members."""
    runs, lo, total = [], 0, 0
    for c, size in enumerate(sizes.tolist()):
        if size > bound or total + size > bound:
            runs.append((lo, c))
            lo, total = (c + 1, 0) if size > bound else (c, size)
        else:
            total += size
    runs.append((lo, len(sizes)))
    return [(lo, hi) for lo, hi in runs if hi > lo and sizes[lo:hi].max() > 1]


def _edge_url(work: str, task: int) -> str:
    return join(work, "edges", f"{task:06d}.part")
