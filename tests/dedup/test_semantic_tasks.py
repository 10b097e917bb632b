"""Semantic dedup as partitioned tasks against the one-process link_similar, on planted vectors.

Each corpus is written twice: as the shard files of the tasks (raw (row, vec) records)
and as the one-process EmbeddingStore's .npy files; both must give the same k-means,
the same cluster sizes, the same number of pairs and the same components.
"""

import numpy as np
import pytest

from redrobe.config import DedupSemantic
from redrobe.dedup import kmeans_tasks as kt
from redrobe.dedup import semantic_tasks as st
from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.components import EDGES, OWNER_SHIFT
from redrobe.dedup.kmeans_tasks import train_centroids
from redrobe.dedup.semantic import (
    EmbeddingStore,
    ShardEmbedding,
    _kmeans_pp,
    assign,
    kmeans,
    link_similar,
    nearest_centroid,
    num_clusters,
    sample_size,
)
from redrobe.errors import InputError
from redrobe.partfile import read_all


def unit_rows(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def topic_corpus(seed, shards, per_shard, topics, noise, dim=24):
    """Shards of near copies of a few topics (every third document noise), float16."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(topics, dim))
    out = []
    for s in range(shards):
        n = int(per_shard[s % len(per_shard)])
        base = centers[rng.integers(topics, size=n)]
        base[::3] = rng.normal(size=base[::3].shape)
        out.append(unit_rows(base + rng.normal(scale=noise, size=base.shape)))
    return out


def write_both(tmp_path, shards, slices):
    """(EmbeddingFiles, the old store's shards, doc number of each store row)."""
    old, docs = [], []
    for s, vecs in enumerate(shards):
        rows = np.arange(len(vecs), dtype=np.int64) * 3 + 1          # rows 1, 4, 7, ...
        rec = np.empty(len(vecs), st.embedding_records(vecs.shape[1], "float16"))
        rec["row"], rec["vec"] = rows, vecs
        (tmp_path / "emb").mkdir(parents=True, exist_ok=True)
        (tmp_path / "emb" / f"{s:06d}.rec").write_bytes(rec.tobytes())
        np.save(tmp_path / "emb" / f"{s}.npy", vecs)
        old.append(ShardEmbedding(path=f"{slices[s]}/part-{s:05d}.parquet", slice=slices[s],
                                  embeddings=str(tmp_path / "emb" / f"{s}.npy"), rows=rows,
                                  ids=[str(r) for r in rows]))
        docs.append((np.int64(s) << OWNER_SHIFT) | rows)
    files = st.EmbeddingFiles(str(tmp_path / "emb"), tuple(len(v) for v in shards), shards[0].shape[1],
                              "float16")
    return files, old, np.concatenate(docs)


class Spy:
    """A serial mapper that remembers every task it ran."""

    def __init__(self):
        self.tasks = []

    def __call__(self, fn, tasks):
        self.tasks += list(tasks)
        return [fn(t) for t in tasks]

    def of(self, kind):
        return [t for t in self.tasks if isinstance(t, kind)]


def roots_of(edges, docs):
    """Component root (store row) of every store row under ``edges`` (doc numbers)."""
    uf = UnionFind(len(docs))
    uf.union_pairs(np.searchsorted(docs, edges["a"]), np.searchsorted(docs, edges["b"]))
    return uf.roots()


def run_both(tmp_path, shards, slices, params, cross_slice=True):
    files, old, docs = write_both(tmp_path, shards, slices)
    names = sorted(set(slices))
    scopes = tuple(0 if cross_slice else names.index(n) for n in slices)
    spy = Spy()
    out = str(tmp_path / "edges.part")
    stats = st.semantic_edges(files, scopes, params, str(tmp_path / "work"), out, 3, spy)
    store = EmbeddingStore(old)
    scope = np.repeat(np.asarray(scopes, np.int64), [len(v) for v in shards])
    uf = UnionFind(len(store))
    expected = link_similar(store, scope, params, uf)
    return stats, expected, roots_of(read_all(out, EDGES), docs), uf.roots(), spy, store, files


@pytest.mark.parametrize("cross_slice", [True, False])
def test_small_clusters_match_the_one_process_pass(tmp_path, cross_slice):
    shards = topic_corpus(1, 7, [40, 1, 2, 55, 0, 13], topics=12, noise=0.2)
    slices = ["c4", "books", "c4", "books", "c4", "wikipedia", "c4"]
    params = DedupSemantic(threshold=0.85, docs_per_cluster=20, kmeans_sample=90, block_docs=8)
    stats, expected, roots, old_roots, spy, _, _ = run_both(tmp_path, shards, slices, params, cross_slice)
    assert stats == expected and stats["kmeans_clusters"] > 5 and stats["pairs"] > 30
    assert np.array_equal(roots, old_roots)
    assert len(spy.of(st.ClusterTask)) > 1 and not spy.of(st.BlockTask)
    # the blocks of the one-process assign, some across a shard boundary: not one task per block
    assigned = spy.of(st.AssignTask)
    assert len(assigned) < sum(map(len, shards)) / params.block_docs
    # each carries only the shards its documents are in
    for t in assigned:
        offsets = t.files.offsets
        assert offsets[0] <= t.lo and offsets[1] > t.lo and offsets[-2] < t.hi <= offsets[-1]
    assert max(len(t.files.counts) for t in assigned) == 3    # a block over the 1- and 2-row shards


def test_kmeans_and_assignment_are_the_one_process_ones(tmp_path):
    shards = topic_corpus(2, 4, [30, 17], topics=6, noise=0.3)
    params = DedupSemantic(docs_per_cluster=10, kmeans_sample=50, block_docs=7)
    files, old, _ = write_both(tmp_path, shards, ["c4"] * 4)
    store = EmbeddingStore(old)
    k = 10
    centroids = kmeans(store, k, params)
    assert np.array_equal(kmeans(files, k, params), centroids)
    url = str(tmp_path / "c.npy")
    train_centroids(files, k, params, str(tmp_path / "kmeans"), url, Spy())
    assert np.array_equal(np.load(url), centroids)
    tasks = st.assign_tasks(files, k, url, (0,) * 4, params.block_docs, str(tmp_path / "m"))
    for t in tasks:
        st.assign_task(t)
    labels = np.concatenate([read_all(t.output, st.member_records(24, "float16")) for t in tasks])
    labels = labels[np.argsort(labels["doc"], kind="stable")]
    assert np.array_equal(labels["cluster"], assign(store, centroids, params.block_docs))


def test_an_oversized_cluster_is_split_into_bounded_block_tasks(tmp_path, monkeypatch):
    # one tight topic: k-means puts most documents in one cluster far above the bound
    shards = topic_corpus(3, 5, [60, 45, 3], topics=1, noise=0.35)
    params = DedupSemantic(threshold=0.8, docs_per_cluster=12, kmeans_sample=100, block_docs=5,
                           kmeans_points_per_cluster=1)   # k-means on the base sample
    reads = []
    real = st.read_range

    def read_range(url, dtype, lo, hi):
        reads.append((url, hi - lo))
        return real(url, dtype, lo, hi)

    monkeypatch.setattr(st, "read_range", read_range)
    stats, expected, roots, old_roots, spy, _, _ = run_both(tmp_path, shards, ["c4"] * 5, params, False)
    assert stats == expected
    assert stats["largest_kmeans_cluster"] > st.BOUND_CLUSTERS * params.docs_per_cluster
    assert np.array_equal(roots, old_roots)
    blocks = spy.of(st.BlockTask)
    assert len(spy.of(st.SplitTask)) >= 1 and len(blocks) > len(spy.of(st.SplitTask))
    assert any(b.hi - b.lo == st.PAIR_BLOCKS for b in blocks)       # column blocks in several tasks
    assert max(n for url, n in reads if "clusters" in url) <= params.block_docs
    bound = st.BOUND_CLUSTERS * params.docs_per_cluster
    runs = [(t.lo, t.hi) for t in spy.of(st.ClusterTask)]
    sizes = np.bincount(np.concatenate([read_all(t.output, st.member_records(24, "float16"))["cluster"]
                                        for t in spy.of(st.AssignTask)]), minlength=stats["kmeans_clusters"])
    assert all(sizes[lo:hi].sum() <= bound for lo, hi in runs)


def test_cross_slice_false_splits_an_oversized_cluster_by_slice(tmp_path):
    shards = topic_corpus(4, 4, [50, 40], topics=1, noise=0.2)
    params = DedupSemantic(threshold=0.8, docs_per_cluster=8, kmeans_sample=60, block_docs=6)
    together = run_both(tmp_path / "a", shards, ["c4", "books", "c4", "books"], params, True)
    apart = run_both(tmp_path / "b", shards, ["c4", "books", "c4", "books"], params, False)
    for stats, expected, roots, old_roots, spy, _, _ in (together, apart):
        assert stats == expected and np.array_equal(roots, old_roots) and spy.of(st.BlockTask)
    assert apart[0]["pairs"] < together[0]["pairs"]
    n = sum(map(len, shards))
    assert len(set(apart[2].tolist())) > len(set(together[2].tolist())) and len(apart[2]) == n


def test_small_runs_stay_within_the_bound_and_skip_large_and_single_clusters():
    sizes = np.array([3, 4, 1, 9, 2, 2, 2, 1, 1, 0, 5])
    assert st._small_runs(sizes, 8) == [(0, 3), (4, 10), (10, 11)]
    assert st._small_runs(np.array([5, 5, 2]), 8) == [(0, 1), (1, 3)]
    assert st._small_runs(np.array([1, 0, 1]), 8) == []
    assert st._small_runs(np.array([], np.int64), 8) == []


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_documents_give_no_edges(tmp_path, n):
    files = write_both(tmp_path, [unit_rows(np.ones((n, 4)))], ["c4"])[0] if n else \
        st.EmbeddingFiles(str(tmp_path / "none"), (0,), 0, "float16")
    out = str(tmp_path / "e.part")
    stats = st.semantic_edges(files, (0,), DedupSemantic(), str(tmp_path / "w"), out, 2, Spy())
    assert stats == {"embedded": n, "kmeans_clusters": n, "largest_kmeans_cluster": n, "pairs": 0}
    assert len(read_all(out, EDGES)) == 0


def test_a_truncated_embedding_file_is_named(tmp_path):
    files, _, _ = write_both(tmp_path, topic_corpus(5, 2, [10], topics=2, noise=0.1), ["c4", "c4"])
    path = tmp_path / "emb" / "000001.rec"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"000001\.rec: records 0\.\.9"):
        files.read(0, 20)


def test_every_step_runs_on_an_fsspec_url(tmp_path):
    from redrobe.partfile import put_bytes

    shards = topic_corpus(6, 3, [40, 30], topics=1, noise=0.3)
    params = DedupSemantic(threshold=0.8, docs_per_cluster=8, kmeans_sample=60, block_docs=6,
                           kmeans_points_per_cluster=1)
    local, _, _, _, spy, _, files = run_both(tmp_path, shards, ["c4"] * 3, params)
    assert spy.of(st.BlockTask)
    root = "memory://semantic-test/emb"
    for s in range(len(shards)):
        put_bytes(f"{root}/{s:06d}.rec", (tmp_path / "emb" / f"{s:06d}.rec").read_bytes())
    remote = st.EmbeddingFiles(root, files.counts, files.dim, files.dtype)
    out = "memory://semantic-test/edges.part"
    stats = st.semantic_edges(remote, (0,) * 3, params, "memory://semantic-test/work", out, 3, Spy())
    assert stats == local
    assert np.array_equal(read_all(out, EDGES), read_all(str(tmp_path / "edges.part"), EDGES))


# -- k-means as a partitioned Lloyd loop ------------------------------------------------

def kmeans_before_windows(store, k, params):
    """k-means as it was before the loop was partitioned: the whole sample summed at once."""
    rng = np.random.default_rng(params.seed)
    sample = np.sort(rng.choice(len(store), size=min(len(store), params.kmeans_sample), replace=False))
    x = store.rows(sample)
    centroids = _kmeans_pp(x, k, rng)
    labels = np.full(len(x), -1, dtype=np.int64)
    for _ in range(params.kmeans_iters):
        new = nearest_centroid(x, centroids, params.block_docs)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centroids, dtype=np.float64)
        np.add.at(sums, labels, x)
        norms = np.linalg.norm(sums, axis=1)
        centroids[norms > 0] = (sums[norms > 0] / norms[norms > 0, None]).astype(np.float32)
    return centroids


def float32_files(tmp_path, shards):
    """The shards as float32 embedding files (not exactly summable in float64)."""
    rng = np.random.default_rng(9)
    root = tmp_path / "emb32"
    root.mkdir()
    for s, vecs in enumerate(shards):
        x = vecs.astype(np.float32) + rng.normal(scale=1e-3, size=vecs.shape).astype(np.float32)
        rec = np.empty(len(x), st.embedding_records(x.shape[1], "float32"))
        rec["row"], rec["vec"] = np.arange(len(x)), x / np.linalg.norm(x, axis=1, keepdims=True)
        (root / f"{s:06d}.rec").write_bytes(rec.tobytes())
    return st.EmbeddingFiles(str(root), tuple(len(v) for v in shards), shards[0].shape[1], "float32")


@pytest.mark.parametrize("points_per_cluster", [1, 39], ids=["kmeans++ seeds", "random seeds"])
def test_the_partitioned_lloyd_loop_gives_the_one_process_centroids(tmp_path, monkeypatch,
                                                                   points_per_cluster):
    shards = topic_corpus(11, 5, [70, 33, 8], topics=9, noise=0.4)
    # 214 documents, 11 clusters; 2 rows a block, 32 blocks a window: the sample of 150
    # (k-means++) or 214 rows (random seeds) in 3 or 4 windows; 3 clusters a range
    params = DedupSemantic(docs_per_cluster=20, kmeans_sample=150, block_docs=2,
                           kmeans_points_per_cluster=points_per_cluster)
    monkeypatch.setattr(kt, "CLUSTERS_PER_PART", 3)
    files, old, _ = write_both(tmp_path, shards, ["c4"] * 5)
    k = num_clusters(len(files), params)
    plan = kt.Plan(len(files), k, files.dim, params, str(tmp_path / "w"))
    assert k == 11 and plan.windows >= 3 and plan.parts == 4
    assert kt.seeds_by_kmeans_pp(plan.sample, params) == (points_per_cluster == 1)
    spy = Spy()
    iterations = train_centroids(files, k, params, plan.work, str(tmp_path / "c.npy"), spy)
    centroids = np.load(tmp_path / "c.npy")
    assert np.array_equal(centroids, kmeans(EmbeddingStore(old), k, params))
    assert 1 < iterations < params.kmeans_iters                 # converged: the loop stopped early
    assert len(spy.of(kt.StepTask)) == plan.windows * (iterations + 1)
    assert len(spy.of(kt.UpdateTask)) == plan.parts * iterations
    assert not (tmp_path / "w").exists()                        # the scratch goes with the loop
    if points_per_cluster == 1:   # the base sample: the same bits as before the loop was partitioned
        assert np.array_equal(centroids, kmeans_before_windows(EmbeddingStore(old), k, params))
    # float32 embeddings: the same windows and order of sums in both
    files32 = float32_files(tmp_path, shards)
    train_centroids(files32, k, params, str(tmp_path / "w32"), str(tmp_path / "c32.npy"), Spy())
    assert np.array_equal(np.load(tmp_path / "c32.npy"), kmeans(files32, k, params))


def test_the_lloyd_loop_gives_the_same_centroids_from_worker_processes(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    shards = topic_corpus(12, 4, [50, 21], topics=5, noise=0.4)
    params = DedupSemantic(docs_per_cluster=15, kmeans_sample=40, block_docs=1)
    files, old, _ = write_both(tmp_path, shards, ["c4"] * 4)
    k = num_clusters(len(files), params)
    with ProcessPoolExecutor(2) as pool:
        train_centroids(files, k, params, str(tmp_path / "w"), str(tmp_path / "c.npy"),
                        lambda fn, tasks: list(pool.map(fn, tasks)))
    assert np.array_equal(np.load(tmp_path / "c.npy"), kmeans(EmbeddingStore(old), k, params))


def test_k_grows_past_the_base_sample_with_the_sample_per_centroid():
    params = DedupSemantic()            # 2000 docs a cluster, 20000 rows, 39 rows a centroid
    assert num_clusters(10**9, params) == 500_000                # no longer capped at 20000
    assert sample_size(10**6, num_clusters(10**6, params), params) == 20_000
    assert sample_size(10**8, num_clusters(10**8, params), params) == 39 * 50_000
    assert sample_size(30, num_clusters(30, params), params) == 30
