"""Sampling schedules: stepwise with replay, smooth competence pacing, shuffled baseline.

Bucket k holds the values k*10_000 + position, so every window reveals its bucket and
its position (its difficulty rank within the bucket).
"""

import numpy as np
import pytest

from redrobe.train.data import (
    CurriculumBatches,
    ShuffledBatches,
    SmoothBatches,
    bucket_windows,
    competence,
    curriculum_plan,
    make_batches,
)

SIZES = (400, 800, 1200)
SEQ, B = 8, 10


def arrays():
    return [np.arange(k * 10_000, k * 10_000 + n, dtype=np.uint32) for k, n in enumerate(SIZES)]


def make(schedule, steps=30, seed=3, replay=0.0, **kw):
    return make_batches(schedule, arrays(), ["b0", "b1", "b2"], steps=steps, seq_len=SEQ,
                        batch_size=B, grad_accum=2, seed=seed, replay=replay, **kw)


def bucket_of(batch):
    return (batch[:, 0] // 10_000).numpy()


@pytest.mark.parametrize("schedule", ["stepwise", "smooth", "shuffled"])
def test_every_schedule_gives_contiguous_windows_inside_one_bucket(schedule):
    batches = make(schedule, replay=0.3)
    for step in (1, 15, 30):
        for micro in (0, 1):
            batch = batches(step, micro)
            assert batch.shape == (B, SEQ + 1)
            assert (batch[:, 1:] - batch[:, :-1] == 1).all()   # never crosses a bucket end
            buckets, starts = batches.rows(step, micro)
            assert (bucket_of(batch) == buckets).all()
            assert ((batch[:, 0] % 10_000).numpy() == starts).all()


@pytest.mark.parametrize("schedule", ["stepwise", "smooth", "shuffled"])
def test_batches_are_pure_functions_of_step_and_micro(schedule):
    """Resuming at a step reads the same data: no hidden state, any call order."""
    a, b = make(schedule, replay=0.2), make(schedule, replay=0.2)
    forward = [a(s, m) for s in range(1, 31) for m in (0, 1)]
    backward = [b(s, m) for s in range(30, 0, -1) for m in (1, 0)][::-1]
    assert all((x == y).all() for x, y in zip(forward, backward))
    other = make(schedule, seed=4, replay=0.2)
    assert any(not (x == other(s, m)).all()
               for x, (s, m) in zip(forward, [(s, m) for s in range(1, 31) for m in (0, 1)]))


def test_replay_draws_the_configured_share_from_easier_buckets():
    steps = 60
    batches = make("stepwise", steps=steps, replay=0.25)
    plan = batches.plan
    replayed = total = 0
    for p in plan:
        for step in range(p.first_step, p.last_step + 1):
            for micro in (0, 1):
                buckets, _ = batches.rows(step, micro)
                assert (buckets <= p.bucket).all()              # never harder than the phase
                if p.bucket == 0:
                    assert (buckets == 0).all()                 # nothing easier to replay
                else:
                    replayed += int((buckets < p.bucket).sum())
                    total += B
    assert 0.2 < replayed / total < 0.3
    # without replay the stepwise batches are exactly the plain lanes of the phase
    plain = CurriculumBatches(arrays(), plan, SEQ, B, 2, seed=3)
    no_replay = make("stepwise", steps=steps, replay=0.0)
    assert all((plain(s, m) == no_replay(s, m)).all() for s in (1, 30, 60) for m in (0, 1))


def test_competence_follows_the_square_root_pacing():
    assert competence(0.0, 0.1, 0.8) == pytest.approx(0.1)
    assert competence(0.4, 0.1, 0.8) == pytest.approx(np.sqrt(0.4 * 0.99 / 0.8 + 0.01))
    assert competence(0.8, 0.1, 0.8) == pytest.approx(1.0) == competence(1.0, 0.1, 0.8)


def test_smooth_moves_from_easy_to_hard():
    steps = 40
    batches = make("smooth", steps=steps, competence_start=0.1, pacing_end=0.5)
    total = sum(SIZES)
    first = batches.rows(1, 0)
    # step 1: only the easiest 10 % of all tokens (inside bucket 0, 400 of 2400 tokens)
    assert (first[0] == 0).all() and (first[1] < 0.1 * total).all()
    mean_bucket = [np.mean([batches.rows(s, m)[0].mean() for m in (0, 1)]) for s in range(1, steps + 1)]
    assert mean_bucket[0] < mean_bucket[10] < np.mean(mean_bucket[-10:])
    late = np.concatenate([batches.rows(s, m)[0] for s in range(25, steps + 1) for m in (0, 1)])
    assert set(late.tolist()) == {0, 1, 2}                 # full competence: everything


def test_shuffled_reads_every_window_once_per_epoch():
    batches = make("shuffled")
    assert isinstance(batches, ShuffledBatches)
    n_windows = sum((n - (SEQ + 1)) // SEQ + 1 for n in SIZES)
    rows = []
    for i in range(0, n_windows + B, B):                    # one epoch and a bit, by micro index
        step, micro = i // (2 * B) + 1, (i // B) % 2
        rows += list(zip(*map(np.ndarray.tolist, batches.rows(step, micro))))
    epoch = rows[:n_windows]
    assert len(set(epoch)) == n_windows                     # a permutation: no repeats
    assert {b for b, _ in epoch} == {0, 1, 2}
    counts = bucket_windows(batches, steps=n_windows // (2 * B))
    assert counts.sum() == (n_windows // (2 * B)) * 2 * B
    shares = counts / counts.sum()
    assert shares == pytest.approx(np.array(SIZES) / sum(SIZES), abs=0.08)   # mixed by tokens


def test_buckets_too_small_for_a_window_are_never_drawn():
    small = [np.arange(5, dtype=np.uint32), np.arange(10_000, 10_400, dtype=np.uint32)]
    for batches in (SmoothBatches(small, 10, SEQ, 4, 1, seed=0, replay=0.5),
                    ShuffledBatches(small, SEQ, 4, 1, seed=0),
                    CurriculumBatches(small, curriculum_plan([("a", 5), ("b", 400)], 10, SEQ + 1),
                                      SEQ, 4, 1, seed=0, replay=0.5)):
        assert all((batches.rows(s, 0)[0] == 1).all() for s in range(1, 11))
    with pytest.raises(ValueError, match="no bucket"):
        make_batches("smooth", [np.arange(5)], ["a"], 10, SEQ, 4, 1, 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_batches("random", arrays(), ["a", "b", "c"], 10, SEQ, 4, 1, 0)
