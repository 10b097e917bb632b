"""Exact order statistics over sorted per-shard key files, and quantile edges from them."""

import numpy as np
import pytest

from redrobe.curriculum import select
from redrobe.curriculum.buckets import edge_ranks, edges_from_order_stats, quantile_edges
from redrobe.curriculum.select import from_keys, select_ranks, to_keys, write_keys


def local_map(fn, tasks):
    return [fn(t) for t in tasks]


def test_keys_sort_like_the_floats():
    values = np.array([-np.inf, -3.5, -1e-300, -0.0, 0.0, 1e-300, 2.0, 7.25, np.inf])
    keys = to_keys(values)
    assert (np.diff(keys.astype(object)) >= 0).all() and keys[3] == keys[4]
    assert from_keys(keys).tolist() == (values + 0.0).tolist()


@pytest.mark.parametrize("kind", ["spread", "ties", "negative"])
def test_selected_ranks_and_edges_equal_numpy_on_the_concatenation(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(select, "FILES_PER_TASK", 2)   # several count tasks per round
    rng = np.random.default_rng(3)
    shards = [{"spread": rng.gamma(2.0, size=n), "ties": rng.integers(0, 4, size=n) * 0.5,
               "negative": rng.normal(size=n) - 1.0}[kind] for n in (0, 1, 17, 240, 3)]
    files = [str(tmp_path / f"{i}.keys") for i in range(len(shards))]
    assert [write_keys(f, s) for f, s in zip(files, shards)] == [len(s) for s in shards]
    everything = np.sort(np.concatenate(shards))
    ranks = [0, 1, 100, len(everything) - 1]
    assert select_ranks(files, ranks, local_map) == everything[ranks].tolist()
    for num_buckets in (2, 4, 7):
        below, above, gamma = edge_ranks(len(everything), num_buckets)
        edges = edges_from_order_stats(select_ranks(files, below.tolist(), local_map),
                                       select_ranks(files, above.tolist(), local_map), gamma)
        assert [e.hex() for e in edges] == [e.hex() for e in quantile_edges(everything, num_buckets)]


def test_edges_from_order_stats_are_numpys_on_many_arrays():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        n, num_buckets = int(rng.integers(1, 120)), int(rng.integers(2, 40))
        x = np.sort(rng.gamma(2.0, size=n) if rng.random() < 0.5 else rng.integers(0, 3, size=n) / 3)
        below, above, gamma = edge_ranks(n, num_buckets)
        assert edges_from_order_stats(x[below], x[above], gamma) == quantile_edges(x, num_buckets)
