"""benchmarks/semantic_scale.py: the pair-recall core on planted vectors (no model).

Brute force must find every planted pair in its tiles and keep scopes apart; the
comparison must count a planted pair whose documents sit in two k-means clusters as
missed (across clusters), so the recall can fail; and on stored vectors the real
partitioned pass's replayed pairs must be as many as it reports, none outside brute force.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_script

from redrobe.config import DedupSemantic
from redrobe.dedup.semantic_tasks import EmbeddingFiles, embedding_records, member_records

bench = load_script("semantic_scale")


def planted(n: int = 300, pairs: int = 20, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, set]:
    """``n`` float16 unit vectors, near-orthogonal except ``pairs`` planted near copies."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    truth = set()
    for a, b in rng.permutation(n)[:2 * pairs].reshape(pairs, 2).tolist():
        x[b] = x[a] + 0.05 * rng.standard_normal(dim)
        truth.add((min(a, b), max(a, b)))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16), truth


def naive(vecs: np.ndarray, scope: np.ndarray, threshold: float) -> set:
    sim = vecs.astype(np.float32) @ vecs.astype(np.float32).T
    i, j = np.nonzero(np.triu(sim >= threshold, k=1) & (scope[:, None] == scope[None, :]))
    return set(zip(i.tolist(), j.tolist()))


def test_brute_force_tiles_find_every_planted_pair_and_keep_scopes_apart() -> None:
    vecs, truth = planted()
    scope = np.zeros(len(vecs), np.int64)
    i, j = bench.brute_pairs(vecs, scope, 0.9, block=37)          # tiles that cut pairs apart
    found = set(zip(i.tolist(), j.tolist()))
    assert found == naive(vecs, scope, 0.9) and truth <= found
    scope[::2] = 1                                                 # half the pairs now cross scopes
    i, j = bench.brute_pairs(vecs, scope, 0.9, block=37)
    found = set(zip(i.tolist(), j.tolist()))
    assert found == naive(vecs, scope, 0.9) and found < truth


def members(vecs: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    r = np.empty(len(vecs), member_records(vecs.shape[1], str(vecs.dtype)))
    r["cluster"], r["doc"], r["scope"], r["vec"] = cluster, np.arange(len(vecs)), 0, vecs
    return r


def test_a_planted_pair_across_two_clusters_is_missed() -> None:
    vecs, truth = planted()
    a, b = sorted(truth)[0]
    cluster = np.zeros(len(vecs), np.int64)
    cluster[b] = 1                                                  # the pair straddles two clusters
    scope = np.zeros(len(vecs), np.int64)
    brute = bench.brute_pairs(vecs, scope, 0.9)
    found = bench.cluster_pairs(members(vecs, cluster), 0.9, block=64)
    component = np.arange(len(vecs))
    r = bench.compare(vecs, 0.9, brute, found, cluster, component)
    total = r["brute_force_pairs"]
    assert total >= len(truth) and r["missed"] >= 1 and r["pairs_found"] == total - r["missed"]
    assert r["missed_across_clusters"] == r["missed"] and r["missed_inside_a_cluster"] == 0
    assert r["pair_recall"] == pytest.approx((total - r["missed"]) / total)
    assert r["found_not_brute_force"] == 0 and r["component_recall"] == 0.0
    assert r["missed_cosine"]["min"] >= 0.9
    big = r["largest_brute_force_component"]
    assert big["pairs"] + big["pairs_outside"] == total and big["docs"] == 2   # planted pairs only
    assert bench.targets(100_000, r)["pair recall vs brute force"]["ok"] == (r["pair_recall"] >= 0.95)
    # everything in one cluster: nothing is missed
    single = np.zeros(len(vecs), np.int64)
    one = bench.cluster_pairs(members(vecs, single), 0.9, block=64)
    assert bench.compare(vecs, 0.9, brute, one, single, component)["pair_recall"] == 1.0


def test_recall_fails_when_most_pairs_cross_clusters() -> None:
    vecs, truth = planted()
    cluster = np.zeros(len(vecs), np.int64)
    for _, b in sorted(truth)[:10]:
        cluster[b] = 1 + b                                          # half the planted pairs split
    brute = bench.brute_pairs(vecs, np.zeros(len(vecs), np.int64), 0.9)
    found = bench.cluster_pairs(members(vecs, cluster), 0.9, block=64)
    r = bench.compare(vecs, 0.9, brute, found, cluster, np.arange(len(vecs)))
    assert r["missed_across_clusters"] >= 10 and r["pair_recall"] < 0.95
    assert not bench.targets(100_000, r)["pair recall vs brute force"]["ok"]
    assert not bench.targets(99_999, r)["documents in scope (subsample)"]["ok"]


def test_the_real_pass_on_stored_vectors_agrees_with_its_replay(tmp_path: Path) -> None:
    vecs, truth = planted(n=400, pairs=30)
    counts = (150, 250)
    root = tmp_path / "embeddings"
    root.mkdir()
    files = EmbeddingFiles(str(root), counts, vecs.shape[1], "float16")
    for s, (lo, hi) in enumerate([(0, 150), (150, 400)]):
        r = np.empty(hi - lo, embedding_records(vecs.shape[1], "float16"))
        r["row"], r["vec"] = np.arange(hi - lo), vecs[lo:hi]
        Path(files.url(s)).write_bytes(r.tobytes())
    params = dataclasses.replace(DedupSemantic(), docs_per_cluster=60, block_docs=32, kmeans_sample=400)
    out = bench.measure(files, (0, 0), params, tmp_path / "pass", lambda fn, tasks: [fn(t) for t in tasks],
                        brute_block=128)
    p, r = out["pass"], out["recall"]
    assert p["k"] == 7 and p["replay_matches"] and p["pairs_replayed"] == r["pairs_found"]
    assert r["brute_force_pairs"] >= len(truth) and r["found_not_brute_force"] == 0
    assert r["missed"] == r["missed_across_clusters"]               # nothing lost inside a cluster
    assert r["pairs_found"] + r["missed"] == r["brute_force_pairs"]
    assert r["component_recall"] >= r["pair_recall"]
