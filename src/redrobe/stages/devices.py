"""Torch set-up shared by the training and evaluation stages (glue: reads /proc/cpuinfo).

    device, precision = torch_setup(params.pretrain.threads, params.pretrain.precision)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from redrobe.train import parse_cpu_flags, select_device


def torch_setup(threads: int, precision: str | None = None) -> tuple[str, str]:
    """Set torch's thread count (0: all cores) and pick device and precision.

    Precision follows the hardware (redrobe.train.select_device): bf16 only where it
    runs natively (CUDA with bf16, or a CPU whose /proc/cpuinfo flags have AVX512-BF16
    or AMX), fp32 otherwise. Returns ("cpu", "fp32") style pairs; with
    ``precision=None`` only the threads are set.
    """
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if precision is None:
        return "cpu", "fp32"
    cpuinfo = Path("/proc/cpuinfo")
    flags = parse_cpu_flags(cpuinfo.read_text()) if cpuinfo.exists() else frozenset()
    return select_device(precision, flags)
