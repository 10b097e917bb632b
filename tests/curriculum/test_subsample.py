"""The tokenizer's capped training sample: exact size, uniform over slices."""

import pytest

from redrobe.curriculum.split import is_validation, split_point
from redrobe.curriculum.subsample import cap_cutoff, sample_key, within_cap

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
