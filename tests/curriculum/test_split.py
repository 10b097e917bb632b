"""The train/validation split: hash-based, with a per-slice floor of held-out docs."""

from redrobe.curriculum.split import is_validation, slice_threshold, split_point, thresholds_for


def test_split_point_is_deterministic_and_seeded():
    assert split_point("c4/1", 1) == split_point("c4/1", 1)
    assert split_point("c4/1", 1) != split_point("c4/1", 2)
    assert 0.0 <= split_point("c4/1", 1) < 1.0


def test_fraction_is_kept_when_enough_docs_are_held_out():
    ids = [f"c4/{i}" for i in range(2000)]
    assert slice_threshold(ids, 0.05, 7, min_docs=1) == 0.05
    held = sum(is_validation(i, 0.05, 7) for i in ids)
    assert 60 < held < 140


def test_small_slice_gets_at_least_min_docs_and_keeps_a_training_doc():
    ids = [f"github/{i}" for i in range(5)]
    threshold = slice_threshold(ids, 0.0001, 7, min_docs=2)
    assert sum(is_validation(i, threshold, 7) for i in ids) == 2
    one = slice_threshold(["x/1"], 0.0001, 7, min_docs=3)
    assert not is_validation("x/1", one, 7)  # a single document stays in training
    pair = thresholds_for({"a": ["a/1", "a/2"]}, 0.0001, 7, min_docs=5)
    assert sum(is_validation(i, pair["a"], 7) for i in ("a/1", "a/2")) == 1


def test_min_docs_zero_is_the_plain_fraction():
    assert slice_threshold(["a/1", "a/2"], 0.0001, 7, min_docs=0) == 0.0001
