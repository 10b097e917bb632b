"""The shuffled baseline's keyed permutation: a bijection on [0, n) evaluated per index."""

import numpy as np
import pytest
import torch

from redrobe.train.data import ShuffledBatches, rank_rows
from redrobe.train.shuffle import KeyedPermutation

SIZES = (1, 2, 3, 5, 7, 8, 9, 31, 100, 1000, 1025)


def order(n, seed=11, epoch=0):
    return KeyedPermutation(n, seed, epoch)(np.arange(n)).tolist()


@pytest.mark.parametrize("n", SIZES)
def test_every_index_is_hit_exactly_once(n):
    for seed, epoch in ((0, 0), (11, 3), (2**40, 7)):
        assert sorted(order(n, seed, epoch)) == list(range(n))


def test_order_depends_on_seed_and_epoch_and_nothing_else():
    n = 1000
    base = order(n)
    assert base == order(n) == KeyedPermutation(n, 11, 0)(np.arange(n)).tolist()   # deterministic
    others = [order(n, seed=12), order(n, epoch=1), order(n, seed=12, epoch=1)]
    assert all(o != base for o in others) and len({tuple(o) for o in others}) == 3
    assert base != list(range(n))
    # two-element domains: some keys swap, some do not
    assert {tuple(order(2, seed)) for seed in range(8)} == {(0, 1), (1, 0)}


def test_the_order_is_pinned():
    """The shuffled schedule's data follows from this order: change it only on purpose
    (and say so in docs/training.md), never as a side effect."""
    assert order(10, seed=1234, epoch=0) == [8, 7, 0, 3, 4, 2, 9, 5, 6, 1]


def test_any_index_set_in_any_order_matches_one_at_a_time():
    perm = KeyedPermutation(777, seed=5, epoch=2)
    picks = np.array([776, 0, 13, 13, 400, 1, 775])
    assert perm(picks).tolist() == [perm.at(int(i)) for i in picks]
    assert perm(np.zeros(0, dtype=np.int64)).shape == (0,)
    with pytest.raises(IndexError):
        perm(np.array([777]))
    with pytest.raises(IndexError):
        perm(np.array([-1]))
    with pytest.raises(ValueError):
        KeyedPermutation(0, 1, 0)


def test_state_is_a_few_integers_whatever_n():
    """O(1) memory: the key is the state; nothing is sized by the domain."""
    for n in (10, 10**6, 10**12):
        perm = KeyedPermutation(n, seed=3, epoch=1)
        arrays = [v for v in vars(perm).values() if isinstance(v, np.ndarray)]
        assert sum(a.nbytes for a in arrays) <= 128
        got = perm(np.unique(np.linspace(0, n - 1, 1000).astype(np.int64)))
        assert (got >= 0).all() and (got < n).all() and len(set(got.tolist())) == len(got)


def test_positions_are_spread_evenly_over_keys():
    """Across seeds, where an index lands is close to uniform (no visible bias)."""
    n, keys = 8, 2000
    counts = np.zeros((n, n))
    for seed in range(keys):
        counts[np.arange(n), order(n, seed)] += 1
    assert counts.min() > 0.7 * keys / n and counts.max() < 1.3 * keys / n


def shuffled(sizes, batch_size, seed=9, grad_accum=2, seq=4):
    arrays = [np.arange(k * 10_000, k * 10_000 + s, dtype=np.uint32) for k, s in enumerate(sizes)]
    return ShuffledBatches(arrays, seq, batch_size, grad_accum, seed)


@pytest.mark.parametrize("sizes", [(5,), (9,), (5, 0, 13), (40, 3, 77)])
def test_each_epoch_reads_every_window_once(sizes):
    batches = shuffled(sizes, batch_size=3)
    n = batches.windows
    rows = [r for i in range(0, 3 * n + 3, 3)
            for r in zip(*map(np.ndarray.tolist, batches.rows(i // 6 + 1, (i // 3) % 2)))]
    every = set(rows)
    assert len(every) == n
    assert all(set(rows[e * n:(e + 1) * n]) == every for e in range(3))   # each once per epoch


@pytest.mark.parametrize("world_size", [2, 3, 6])
def test_rank_rows_are_the_ranks_slice_of_the_full_batch(world_size):
    batches = shuffled((40, 3, 77), batch_size=6)
    for step in (1, 2, 5, 11):          # 11 steps x 12 rows: across an epoch boundary
        for micro in (0, 1):
            full = batches(step, micro)
            parts = [batches.for_rank(step, micro, r, world_size) for r in range(world_size)]
            for r, part in enumerate(parts):
                assert torch.equal(part, full[rank_rows(6, r, world_size)])
