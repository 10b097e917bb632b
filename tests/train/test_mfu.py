"""MFU helpers: the PaLM FLOPs formula, the ratio, and a measured (tiny) matmul peak."""

import math

import pytest

from redrobe.train.mfu import flops_per_token, matmul_flops, measure_peak_flops, mfu


def test_flops_per_token_is_6n_plus_attention():
    # 1M non-embedding parameters, 2 layers, hidden 64, seq 128 (PaLM App. B)
    assert flops_per_token(1_000_000, 2, 64, 128) == 6_000_000 + 12 * 2 * 64 * 128


def test_mfu_ratio_and_unknown_peak():
    assert mfu(1000.0, 6e6, 1.2e10) == pytest.approx(0.5)
    assert mfu(1000.0, 6e6, 0.0) == 0.0


def test_measured_peak_is_a_positive_finite_rate():
    import torch

    assert matmul_flops(32, "cpu", torch.float32, repeats=1) > 0
    peak = measure_peak_flops("cpu", sizes=(64, 128), repeats=2)
    assert math.isfinite(peak) and peak > 0

