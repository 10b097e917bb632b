"""lr_at: linear warmup to the peak, cosine decay to min_lr at the last step."""

import math

import pytest

from redrobe.train import lr_at

KW = dict(lr=1e-3, min_lr=1e-4, warmup_steps=10, total_steps=110)


def test_warmup_is_linear_up_to_the_peak():
    assert lr_at(1, **KW) == pytest.approx(1e-4)
    assert lr_at(5, **KW) == pytest.approx(5e-4)
    assert lr_at(10, **KW) == pytest.approx(1e-3)  # peak at the end of warmup


def test_cosine_midpoint_and_end():
    assert lr_at(60, **KW) == pytest.approx((1e-3 + 1e-4) / 2)
    assert lr_at(35, **KW) == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi / 4)) * 9e-4)
    assert lr_at(110, **KW) == pytest.approx(1e-4)
    assert lr_at(500, **KW) == pytest.approx(1e-4)  # stays at min_lr past the end


def test_decay_is_monotonic_after_warmup():
    lrs = [lr_at(s, **KW) for s in range(10, 111)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_no_warmup_starts_near_peak():
    assert lr_at(1, lr=1e-3, min_lr=0.0, warmup_steps=0, total_steps=100) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 100)) * 1e-3)
