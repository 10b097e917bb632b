"""A keyed permutation of ``[0, n)`` evaluated at any index in O(1) memory.

The shuffled baseline (:class:`redrobe.train.data.ShuffledBatches`) needs "position
``i`` of epoch ``e``'s order" for a few indices per micro-batch. Materializing the
order (numpy's ``permutation``) costs one int64 per window per epoch: GBs at 10^12
tokens. :class:`KeyedPermutation` is a Feistel network instead (Luby and Rackoff
1988): a bijection on the ``b``-bit integers, ``2^b`` the next power of two >= ``n``,
whose round functions are :func:`redrobe.mix64.fmix64` keyed by ``(seed, epoch,
round)``; cycle-walking (Black and Rogaway 2002, "Ciphers with arbitrary finite
domains") re-applies it to values that land in ``[n, 2^b)`` until they fall in
``[0, n)``, which restricts the bijection to ``[0, n)``. Since ``2^b < 2n`` a value
needs fewer than two passes on average. The state is the key: a handful of integers.

    perm = KeyedPermutation(n=1_000_003, seed=1234, epoch=0)
    perm(np.arange(8))          # the first 8 entries of the epoch's order, int64
    perm.at(17)                 # one entry

The order is the same on every platform and run (uint64 arithmetic only).
"""

from __future__ import annotations

import numpy as np

from redrobe.mix64 import fmix64, mix_columns

#: Feistel rounds; an even count, more than the 4 a random round function needs
#: (Luby-Rackoff), since the halves can be a few bits wide for small ``n``
ROUNDS = 8
_U64 = np.uint64


def _mask(bits: int) -> np.uint64:
    return _U64((1 << bits) - 1)


class KeyedPermutation:
    """A bijection on ``[0, n)`` chosen by ``(seed, epoch)``; see the module docstring."""

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = n
        self.bits = (n - 1).bit_length()          # 2^bits >= n > 2^(bits - 1)
        key = [np.full(ROUNDS, v % 2**64, dtype=np.uint64) for v in (seed, epoch)]
        self.keys = mix_columns(*key, np.arange(ROUNDS, dtype=np.uint64))

    def _rounds(self, x: np.ndarray) -> np.ndarray:
        """One pass of the Feistel network over the ``bits``-bit values ``x``.

        Each round splits x into its high part and its low ``low`` bits and returns
        ``low_part << high_bits | (high_part ^ F(low_part))``: invertible whatever the
        widths, so odd ``bits`` need no padding to an even width (unbalanced halves
        alternate between floor and ceil of bits / 2).
        """
        for r in range(ROUNDS):
            low = self.bits // 2 if r % 2 == 0 else self.bits - self.bits // 2
            high = self.bits - low
            lo, hi = x & _mask(low), x >> _U64(low)
            mixed = fmix64(lo ^ self.keys[r]) & _mask(high)
            x = (lo << _U64(high)) | (hi ^ mixed)
        return x

    def __call__(self, index: np.ndarray) -> np.ndarray:
        """Entries ``index`` (each in ``[0, n)``) of the order, as int64."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.n):
            raise IndexError(f"permutation index outside [0, {self.n})")
        x = self._rounds(index.astype(np.uint64))
        outside = np.flatnonzero(x >= _U64(self.n))
        while outside.size:   # cycle-walking: every cycle through [0, n) comes back into it
            x[outside] = self._rounds(x[outside])
            outside = outside[x[outside] >= _U64(self.n)]
        return x.astype(np.int64)

    def at(self, i: int) -> int:
        return int(self(np.array([i]))[0])
