"""Process settings for fast CPU training: keep freed memory in the heap (glibc malloc).

glibc hands blocks above its mmap threshold (dynamic, at most 32 MiB) back to the OS
when they are freed, and trims the top of the heap past its trim threshold. A training
step allocates the same activation and gradient sizes every step, so each step maps
them afresh and pays a page fault per 4 KiB page on first touch: about 30 ms per 64 MiB
tensor on the dev VM, a quarter of a step of the benchmark model
(``benchmarks/train_vs_trainer.py``). :func:`keep_freed_memory` raises both thresholds,
so freed blocks stay in the heap and the next step reuses them. It is what PyTorch's
CPU performance guide gets by preloading jemalloc or tcmalloc, done in-process with
``mallopt``. The price: the process keeps its peak heap (a GPU caching allocator does
the same).

    from redrobe.train.host import keep_freed_memory
    keep_freed_memory()   # True where glibc took the settings; False elsewhere (no-op)

The training loop calls it on CPU unless ``TrainConfig(keep_memory=False)``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1   # mallopt parameter numbers (glibc malloc.h)
M_MMAP_THRESHOLD = -3
KEEP = 2**31 - 1        # the largest value the int parameter takes: never mmap, never trim


@functools.cache
def keep_freed_memory() -> bool:
    """Stop glibc returning freed blocks to the OS (once per process); False where the C
    library is not glibc (musl, macOS), which is left as it is."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP))
