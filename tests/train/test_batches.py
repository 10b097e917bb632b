"""Curriculum batches: step shares by tokens, easy -> hard order, contiguous seeded lanes."""

import numpy as np
import pytest

from redrobe.train import CurriculumBatches, curriculum_plan, eval_windows, lane_starts


def test_plan_shares_steps_by_tokens_in_bucket_order():
    plan = curriculum_plan([("b0", 1000), ("b1", 3000), ("b2", 6000)], steps=10, min_tokens=9)
    assert [(p.name, p.first_step, p.last_step) for p in plan] == [
        ("b0", 1, 1), ("b1", 2, 4), ("b2", 5, 10)]


def test_plan_rounds_by_largest_remainder_and_sums_to_steps():
    plan = curriculum_plan([("a", 100), ("b", 100), ("c", 100)], steps=10, min_tokens=9)
    assert [p.steps for p in plan] == [4, 3, 3]  # ties go to the easier bucket
    assert plan[-1].last_step == 10
    assert all(p.first_step == q.last_step + 1 for q, p in zip(plan, plan[1:]))


def test_plan_skips_buckets_smaller_than_a_window():
    plan = curriculum_plan([("tiny", 5), ("big", 500)], steps=4, min_tokens=9)
    assert [(p.name, p.bucket, p.steps) for p in plan] == [("big", 1, 4)]
    with pytest.raises(ValueError, match="no bucket"):
        curriculum_plan([("tiny", 5)], steps=4, min_tokens=9)


def test_lanes_are_spread_and_advance_by_one_window_less_one():
    starts0 = lane_starts(1000, window=9, lanes=4, position=0, offset=0)
    starts1 = lane_starts(1000, window=9, lanes=4, position=1, offset=0)
    assert starts0.tolist() == [0, 250, 500, 750]
    assert (starts1 - starts0).tolist() == [8, 8, 8, 8]
    assert lane_starts(1000, 9, 4, 0, offset=995).max() <= 1000 - 9  # wraps inside


def buckets():
    # bucket k holds values k*10_000 + position, so a window reveals where it came from
    return [np.arange(k * 10_000, k * 10_000 + n, dtype=np.uint32) for k, n in enumerate((400, 800))]


def test_batches_follow_the_curriculum_and_read_contiguously():
    arrays = buckets()
    plan = curriculum_plan([("b0", 400), ("b1", 800)], steps=6, min_tokens=9)
    batches = CurriculumBatches(arrays, plan, seq_len=8, batch_size=3, grad_accum=2, seed=7)
    first = batches(1, 0)
    assert first.shape == (3, 9) and first.dtype.is_floating_point is False
    assert (first < 10_000).all()                       # step 1: easy bucket
    assert (batches(6, 1) >= 10_000).all()              # last step: hard bucket
    assert (first[:, 1:] - first[:, :-1] == 1).all()    # windows are contiguous text
    nxt = batches(1, 1)                                  # next micro-batch continues each lane
    assert (nxt[:, 0] == first[:, -1]).all()
    assert (batches(2, 0)[:, 0] == nxt[:, -1]).all()    # ... and so does the next step


def test_batches_are_seeded():
    plan = curriculum_plan([("b0", 400), ("b1", 800)], steps=6, min_tokens=9)
    make = lambda seed: CurriculumBatches(buckets(), plan, 8, 3, 1, seed)  # noqa: E731
    assert (make(1)(2, 0) == make(1)(2, 0)).all()
    assert not (make(1)(2, 0) == make(2)(2, 0)).all()


def test_eval_windows_are_fixed_non_overlapping_and_capped():
    array = np.arange(100, dtype=np.uint16)
    batches = eval_windows(array, seq_len=9, batch_size=4, batches=5)
    rows = [row for b in batches for row in b.tolist()]
    assert len(rows) == 10                      # only 10 windows of 10 tokens fit
    starts = [r[0] for r in rows]
    assert starts == sorted(starts) and all(b - a >= 10 for a, b in zip(starts, starts[1:]))
    assert eval_windows(array[:5], seq_len=9, batch_size=4, batches=2) == []
    assert sum(len(b) for b in eval_windows(array, 9, batch_size=2, batches=2)) == 4
