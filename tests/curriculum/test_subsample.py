"""The tokenizer's capped training sample: exact size, uniform over slices."""

import pytest

from redrobe.curriculum import subsample
from redrobe.curriculum.split import is_validation, split_point
from redrobe.curriculum.subsample import cap_cutoff, partitioned_cutoff, sample_key, within_cap
from redrobe.documents import Document, ShardWriter, read_documents, shard_path

SEED, FRACTION = 1234, 0.05


def training_keys(ids):
    return [sample_key(split_point(i, SEED), i) for i in ids if not is_validation(i, FRACTION, SEED)]


def test_everything_fits_under_the_cap():
    keys = training_keys([f"doc{i}" for i in range(10)])
    assert cap_cutoff(iter(keys), cap=len(keys)) is None
    assert all(within_cap(k, None) for k in keys)


def test_exactly_cap_documents_are_kept():
    keys = training_keys([f"doc{i}" for i in range(500)])
    cutoff = cap_cutoff(iter(keys), cap=123)
    assert sum(within_cap(k, cutoff) for k in keys) == 123
    assert cutoff == sorted(keys)[122]


def test_the_sample_is_spread_over_slices_not_the_first_ones():
    ids = {s: [f"{s}/{i}" for i in range(1000)] for s in ("books", "c4", "github")}
    keys = {s: training_keys(v) for s, v in ids.items()}
    cutoff = cap_cutoff((k for v in keys.values() for k in v), cap=300)
    kept = {s: sum(within_cap(k, cutoff) for k in v) for s, v in keys.items()}
    assert sum(kept.values()) == 300
    assert all(70 <= n <= 130 for n in kept.values()), kept


def test_cap_must_be_positive():
    with pytest.raises(ValueError):
        cap_cutoff(iter([]), 0)


def local_map(fn, tasks):
    return [fn(t) for t in tasks]


@pytest.mark.parametrize("coarse", [False, True])
def test_partitioned_cutoff_equals_the_one_process_cutoff(tmp_path, monkeypatch, coarse):
    if coarse:   # points on a grid of 8: most keys tie on the point and the id decides
        monkeypatch.setattr(subsample, "split_point", lambda i, seed: (split_point(i, seed) * 8 // 1) / 8)
    shards = []
    for index, n in enumerate([0, 30, 75, 4]):
        path = shard_path(tmp_path / "in", "books" if index < 2 else "c4", index)
        with ShardWriter(path, batch_size=8) as w:
            w.write_all(Document(id=f"d{index}-{i}", text="x", source="s") for i in range(n))
        shards.append(path)
    thresholds = {"books": 0.1, "c4": 0.3}
    keys = [sample_key(subsample.split_point(d.id, 5), d.id) for s in shards
            for d in read_documents(s) if not is_validation(d.id, thresholds[s.parent.name], 5)]
    for cap in (1, 7, 50, len(keys) - 1, len(keys), len(keys) + 3):
        expected = cap_cutoff(iter(keys), cap)
        found = partitioned_cutoff(shards, thresholds, 5, cap, tmp_path / f"w{cap}", local_map)
        assert found == expected
