"""The train/validation split: hash-based, with a per-slice floor of held-out docs."""

import pytest

from redrobe.curriculum.split import (
    SplitTask,
    is_validation,
    slice_threshold,
    split_partial,
    split_point,
    split_thresholds,
    thresholds_for,
)
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.errors import InputError


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


@pytest.mark.parametrize("min_docs", [0, 1, 3, 40])
def test_thresholds_from_shard_partials_equal_the_one_process_rule(tmp_path, min_docs):
    # tiny shards and a tiny fraction, so min_docs decides most slices
    sizes = {("a", 0): 5, ("a", 1): 0, ("a", 2): 30, ("b", 0): 1, ("c", 0): 200, ("c", 1): 7}
    ids: dict[str, list[str]] = {}
    shards = []
    for (name, index), n in sizes.items():
        path = shard_path(tmp_path, name, index)
        with ShardWriter(path, batch_size=4) as w:
            for i in range(n):
                w.write(Document(id=f"{name}/{index}/{i}", text="x", source=name))
        ids.setdefault(name, []).extend(f"{name}/{index}/{i}" for i in range(n))
        shards.append(path)
    for fraction in (0.0001, 0.05, 0.4):
        expected = thresholds_for(ids, fraction, 7, min_docs)
        assert split_thresholds(shards, fraction, 7, min_docs) == expected
    assert split_partial(SplitTask(str(shards[2]), 0.05, 7, min_docs)).smallest == \
        tuple(sorted(split_point(i, 7) for i in ids["a"][5:])[:min_docs])


def test_an_unreadable_shard_is_named(tmp_path):
    bad = tmp_path / "a" / "part-00000.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="part-00000.parquet"):
        split_thresholds([bad], 0.05, 7, 1)
