"""Data-parallel ranks read only their own windows; the shuffled baseline maps a window
number to its bucket and start with O(buckets) numbers, and its order is a keyed
permutation evaluated at the batch's positions (no per-window array)."""

import numpy as np
import pytest
import torch

from redrobe.train.data import ShuffledBatches, make_batches, rank_rows
from redrobe.train.deepspeed import DistributedContext
from redrobe.train.shuffle import KeyedPermutation

SIZES = (400, 5, 800, 0, 1200)      # two buckets without a window
SEQ, B = 8, 12


class Recorded:
    """A token array that records every window read from it (bucket, start)."""

    def __init__(self, bucket: int, values: np.ndarray, reads: list) -> None:
        self.bucket, self.values, self.reads = bucket, values, reads

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, key: slice) -> np.ndarray:
        self.reads.append((self.bucket, key.start))
        return self.values[key]


def arrays(reads=None):
    plain = [np.arange(k * 10_000, k * 10_000 + n, dtype=np.uint32) for k, n in enumerate(SIZES)]
    return plain if reads is None else [Recorded(k, a, reads) for k, a in enumerate(plain)]


def make(schedule, data):
    return make_batches(schedule, data, [f"b{k}" for k in range(len(SIZES))], steps=40,
                        seq_len=SEQ, batch_size=B, grad_accum=2, seed=5, replay=0.25)


def test_shuffled_order_is_the_keyed_permutation_across_epochs():
    batches = make("shuffled", arrays())
    assert isinstance(batches, ShuffledBatches) and batches.first.size == len(SIZES) + 1
    window, n = SEQ + 1, batches.windows
    per = [(s - window) // (window - 1) + 1 if s >= window else 0 for s in SIZES]
    bucket_of = np.repeat(np.arange(len(SIZES)), per)
    start_of = np.concatenate([np.arange(k) * (window - 1) for k in per])
    for step in (1, 2, 17, 40):     # 40 steps x 24 rows: past the first epoch (~310 windows)
        for micro in (0, 1):
            first = ((step - 1) * 2 + micro) * B
            picks = [KeyedPermutation(n, 5, i // n).at(i % n) for i in range(first, first + B)]
            buckets, starts = batches.rows(step, micro)
            assert np.array_equal(buckets, bucket_of[picks]) and np.array_equal(starts, start_of[picks])


@pytest.mark.parametrize("schedule", ["stepwise", "smooth", "shuffled"])
def test_two_ranks_read_disjoint_windows_that_together_are_the_batch(schedule):
    full = make(schedule, arrays())
    reads = [[], []]
    ranks = [make(schedule, arrays(reads[r])) for r in range(2)]
    for step in (1, 9, 33):
        for micro in (0, 1):
            for r in reads:
                r.clear()
            parts = [DistributedContext(rank=r, world_size=2).shard(ranks[r])(step, micro)
                     for r in range(2)]
            assert [len(p) for p in parts] == [B // 2, B // 2]
            assert torch.equal(torch.cat(parts), full(step, micro))
            buckets, starts = full.rows(step, micro)
            rows = list(zip(buckets.tolist(), starts.tolist()))
            assert reads[0] == rows[: B // 2] and reads[1] == rows[B // 2:]   # nothing else read


def test_rank_rows_split_a_batch_evenly_or_refuse():
    assert [rank_rows(12, r, 3) for r in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    with pytest.raises(ValueError, match="not divisible"):
        make("stepwise", arrays()).for_rank(1, 0, rank=0, world_size=5)
