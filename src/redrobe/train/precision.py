"""Choose the training precision from the hardware's capabilities, and enter it.

"auto" picks bf16 autocast only where bf16 matmuls run natively: a CUDA device that
supports bf16, or a CPU whose flags include ``avx512_bf16`` or ``amx_bf16``. On a
CPU without them (AVX2 only) PyTorch emulates bf16 and a training step is about 30x
slower than fp32, so "auto" stays in fp32 there. An explicit precision always wins.

The choice is a pure function of the capabilities passed in; :func:`torch_setup` (used
by the training and evaluation stages and the paper tables' tiny models) detects them
(torch for CUDA, /proc/cpuinfo for the CPU) and sets torch's thread count:

    flags = parse_cpu_flags(Path("/proc/cpuinfo").read_text())
    precision = choose_precision("auto", cuda=False, cuda_bf16=False, cpu_flags=flags)
    device, precision = select_device("auto", flags)   # the same, CUDA detected by torch
    device, precision = torch_setup(threads=0, precision="auto")   # the same, flags read too
    with autocast(precision, device):
        loss = model(x)...
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import ContextManager, Iterable

import torch

#: CPU flags that mean native bf16 matmuls (AVX512-BF16 dot products, AMX tiles).
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The ``flags`` of the first processor in a /proc/cpuinfo text (empty if none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # "Features" on ARM
            return frozenset(value.split())
    return frozenset()


def choose_precision(requested: str, *, cuda: bool, cuda_bf16: bool,
                     cpu_flags: Iterable[str]) -> str:
    """``requested`` unless it is "auto"; then bf16 where native, else fp32."""
    if requested != "auto":
        return requested
    if cuda:
        return "bf16" if cuda_bf16 else "fp32"
    return "bf16" if CPU_BF16_FLAGS & set(cpu_flags) else "fp32"


def select_device(requested: str, cpu_flags: Iterable[str]) -> tuple[str, str]:
    """(device, precision): the CUDA device when torch sees one, else the CPU."""
    cuda = torch.cuda.is_available()
    precision = choose_precision(requested, cuda=cuda,
                                 cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
                                 cpu_flags=cpu_flags)
    return ("cuda" if cuda else "cpu"), precision


def torch_setup(threads: int, precision: str | None = None,
                cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, str]:
    """Set torch's thread count (0: all cores) and pick device and precision.

    Precision follows the hardware (:func:`select_device`): bf16 only where it runs
    natively (CUDA with bf16, or a CPU whose ``cpuinfo`` flags have AVX512-BF16 or AMX),
    fp32 otherwise. Returns ("cpu", "fp32") style pairs; with ``precision=None`` only the
    threads are set.
    """
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if precision is None:
        return "cpu", "fp32"
    cpuinfo = Path(cpuinfo)
    flags = parse_cpu_flags(cpuinfo.read_text()) if cpuinfo.exists() else frozenset()
    return select_device(precision, flags)


def autocast(precision: str, device_type: str) -> ContextManager[None]:
    """Mixed-precision autocast for bf16/fp16; a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=DTYPES[precision])
