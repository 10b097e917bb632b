"""MinHash signatures and LSH band keys for near-duplicate detection.

Recipe of RedPajama-V2 (REFERENCES §4): word 13-grams of the normalized words,
128 permutations, seed 42; the signature is cut into 9 bands of 13 rows, and two
documents whose signatures agree on every row of at least one band are a candidate
pair. With b bands of r rows the chance of that is 1 - (1 - J^r)^b for Jaccard
similarity J, which crosses 1/2 near J = 0.8 for 9 x 13.

    hasher = MinHasher.from_params(params.dedup.minhash)
    sig = hasher.signature(text)        # datasketch LeanMinHash, None when no words
    keys = hasher.band_keys(sig)        # (bands,) uint64, one bucket key per band

Signatures are datasketch ``MinHash`` objects with the permutation scheme pinned
(``affine32``), so they do not change if the library's default does. Shingles are
hashed in chunks of :data:`CHUNK`, so the (chunk x num_perm) matrix datasketch builds
stays the same size however long the document is.
"""

from __future__ import annotations

import hashlib
from itertools import islice
from typing import Iterator, Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash

from redrobe.config import MinHashParams
from redrobe.text.normalize import normalized_words

#: reason for a removed document that is a MinHash-LSH near duplicate of the kept one
NEAR_DUPLICATE = "near_duplicate"

#: datasketch permutation scheme, pinned (bijective 32-bit affine maps; 2.0 default)
SCHEME = "affine32"

#: shingles hashed per ``update_batch`` call: bounds memory to CHUNK x num_perm x 4 bytes
CHUNK = 2048


def shingles(words: Sequence[str], n: int) -> Iterator[bytes]:
    """Word n-grams joined by single spaces, UTF-8 encoded.

    A document shorter than ``n`` words is one shingle of its whole word sequence
    (RedPajama-V2 does the same), so it matches only a document with the same words.
    """
    if not words:
        return
    if len(words) < n:
        yield " ".join(words).encode("utf-8")
        return
    for i in range(len(words) - n + 1):
        yield " ".join(words[i:i + n]).encode("utf-8")


class MinHasher:
    """Computes signatures and band keys for one set of MinHash parameters."""

    def __init__(self, ngram: int = 13, num_perm: int = 128, seed: int = 42,
                 bands: int = 9, rows: int = 13) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands * rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.ngram, self.num_perm, self.seed = ngram, num_perm, seed
        self.bands, self.rows = bands, rows
        # Permutations depend only on (num_perm, seed): build them once, share them.
        self._permutations = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations

    @classmethod
    def from_params(cls, p: MinHashParams) -> "MinHasher":
        return cls(ngram=p.ngram, num_perm=p.num_perm, seed=p.seed, bands=p.bands, rows=p.rows)

    def signature_of_words(self, words: Sequence[str]) -> LeanMinHash | None:
        """MinHash of the word n-gram set; None when there are no words."""
        if not words:
            return None
        m = MinHash(num_perm=self.num_perm, seed=self.seed, scheme=SCHEME,
                    permutations=self._permutations)
        stream = shingles(words, self.ngram)
        while chunk := list(islice(stream, CHUNK)):
            m.update_batch(chunk)
        return LeanMinHash(m)

    def signature(self, text: str) -> LeanMinHash | None:
        """MinHash of the n-grams of the document's normalized words."""
        return self.signature_of_words(normalized_words(text))

    def band_keys(self, signature: LeanMinHash) -> np.ndarray:
        """(bands,) uint64: a 64-bit hash of each band's rows (equal band -> equal key)."""
        values = np.asarray(signature.hashvalues, dtype="<u4")
        keys = np.empty(self.bands, dtype=np.uint64)
        for b in range(self.bands):
            band = values[b * self.rows:(b + 1) * self.rows].tobytes()
            keys[b] = int.from_bytes(hashlib.blake2b(band, digest_size=8).digest(), "little")
        return keys
