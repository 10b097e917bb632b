"""Choose the training precision from the hardware's capabilities, and enter it.

"auto" picks bf16 autocast only where bf16 matmuls run natively: a CUDA device that
supports bf16, or a CPU whose flags include ``avx512_bf16`` or ``amx_bf16``. On a
CPU without them (AVX2 only) PyTorch emulates bf16 and a training step is about 30x
slower than fp32, so "auto" stays in fp32 there. An explicit precision always wins.

The caller detects the capabilities (the stage reads /proc/cpuinfo) and passes them
in, so the choice is a pure function:

    flags = parse_cpu_flags(Path("/proc/cpuinfo").read_text())
    precision = choose_precision("auto", cuda=False, cuda_bf16=False, cpu_flags=flags)
    device, precision = select_device("auto", flags)   # the same, CUDA detected by torch
    with autocast(precision, device):
        loss = model(x)...
"""

from __future__ import annotations

import contextlib
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


def autocast(precision: str, device_type: str) -> ContextManager[None]:
    """Mixed-precision autocast for bf16/fp16; a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=DTYPES[precision])
