"""64-bit hash mixing in numpy, shared by MinHash and the partitioned shuffles.

``fmix64`` is murmur3's 64-bit finalizer: a bijection on uint64 that spreads every
input bit over the whole output, so consecutive or skewed keys land in evenly spread
partitions, and hashes built from it are the same on every platform and run:

    fmix64(np.arange(4, dtype=np.uint64))          # well mixed, deterministic
    mix_columns(kind, key_hi, key_lo)               # one uint64 per row of several columns
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_M1, _M2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
#: 2**64 / golden ratio (odd): the multiplier that chains columns
GOLDEN = _U64(0x9E3779B97F4A7C15)


def fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finalizer, vectorized (uint64 in, uint64 out)."""
    x = x ^ (x >> _U64(33))
    x = x * _M1
    x = x ^ (x >> _U64(33))
    x = x * _M2
    return x ^ (x >> _U64(33))


def mix_columns(*columns: np.ndarray) -> np.ndarray:
    """One well-mixed uint64 per row of equal-length uint64 columns (order matters)."""
    out = np.zeros(len(columns[0]), dtype=np.uint64)
    for col in columns:
        out = fmix64(out * GOLDEN + col.astype(np.uint64))
    return out
