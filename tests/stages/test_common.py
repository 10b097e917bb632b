"""The stage glue's shared helpers."""

from redrobe.stages.common import torch_threads


def test_torch_threads_follow_params_then_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert torch_threads(0) == 0                # all cores
    assert torch_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert torch_threads(0) == 1                # the environment's share of the cores
    assert torch_threads(3) == 3                # an explicit param wins
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert torch_threads(0) == 0
