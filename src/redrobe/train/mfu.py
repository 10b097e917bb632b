"""Model FLOPs utilisation (MFU): model FLOPs per token, and the machine's measured peak.

MFU (PaLM, Chowdhery et al. 2022, Appendix B) is the throughput a training step
achieves, counted in the FLOPs the *model* needs (forward + backward, no
recomputation from gradient checkpointing), divided by the peak FLOP/s of the
hardware. Per token of a decoder with N non-embedding parameters, L layers, hidden
size H (= heads x head dim) and sequence length T:

    flops/token = 6 N + 12 L H T

6N is the matmul work on the weights (2 forward + 4 backward per parameter); 12 L H T
is the attention score and value matmuls (QK^T and AV, forward and backward). N
excludes the input embedding, a lookup with no matmul; the pretrain stage counts an
untied lm_head, which is a matmul per token, as transformers'
``num_parameters(exclude_embeddings=True)`` does (Kaplan et al. 2020 §2.1 exclude it
too; :func:`redrobe.model.parameter_counts` reports it apart so either can be used).

The peak is measured, not taken from a datasheet: the best of several large square
matmuls on all threads (fp32 on a CPU, bf16 on CUDA), a few seconds per run:

    peak = measure_peak_flops("cpu")                         # FLOP/s
    per_token = flops_per_token(counts["non_embedding"] + counts["lm_head"], layers, hidden, seq_len)
    print(mfu(tokens_per_s, per_token, peak))                 # 0.0 .. 1.0

Shared with the training benchmark, so both divide by the same kind of peak.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

#: Matmul sizes for the CPU peak: 2048^3 is the reference size (docs/references.md,
#: "Benchmark anchors"), 1024^3 guards against a cache sweet spot. 3072^3 gave the same
#: FLOP/s as 2048^3 on the 2-core dev machine (33.8 vs 33.2 GFLOP/s) at 3x the time, so it
#: is left out.
CPU_SIZES = (1024, 2048)
#: Large enough to saturate the tensor cores of an A100/H100 in bf16.
CUDA_SIZES = (4096, 8192)


def flops_per_token(matmul_params: int, num_layers: int, hidden_size: int,
                    seq_len: int) -> float:
    """Training FLOPs per token: 6 N + 12 L H T (PaLM App. B), N = ``matmul_params``."""
    return 6.0 * matmul_params + 12.0 * num_layers * hidden_size * seq_len


def mfu(tokens_per_s: float, per_token: float, peak_flops: float) -> float:
    """Achieved model FLOP/s over the peak (0 when the peak is unknown)."""
    return tokens_per_s * per_token / peak_flops if peak_flops > 0 else 0.0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_flops(size: int, device: str, dtype: torch.dtype, repeats: int,
                 budget_s: float = float("inf")) -> float:
    """Best FLOP/s of up to ``repeats`` timed (size x size) @ (size x size) products; stops
    early once ``budget_s`` is spent (after at least one). The best discards a slow
    first call, so no separate warm-up is spent on large sizes."""
    gen = torch.Generator().manual_seed(size)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    _sync(device)
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        _sync(device)
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= budget_s:
            break
    return 2.0 * size ** 3 / best


def measure_peak_flops(device: str = "cpu", sizes: Sequence[int] | None = None,
                       repeats: int = 3, budget_s: float = 1.5) -> float:
    """The machine's matmul peak in FLOP/s: best over ``sizes`` and ``repeats``.

    Uses torch's current thread count (set it first: all cores for a fair peak).
    fp32 on a CPU (what the loop runs there), bf16 on CUDA (tensor cores). Each size
    stops repeating after ``budget_s`` seconds, so a slow machine costs a few seconds.
    """
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    sizes = sizes or (CUDA_SIZES if cuda else CPU_SIZES)
    with torch.no_grad():
        matmul_flops(256, device, dtype, 1)  # warm-up: thread pool start, kernel selection
        return max(matmul_flops(n, device, dtype, repeats, budget_s) for n in sizes)
