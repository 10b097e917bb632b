"""MinHash signatures and LSH band keys for near-duplicate detection, in numpy.

Recipe of RedPajama-V2 (docs/references.md, "Deduplication parameters"): word 13-grams
of the normalized words, 128 permutations, seed 42; the signature is cut into 9 bands of 13 rows, and two
documents whose signatures agree on every row of at least one band are a candidate
pair. With b bands of r rows the chance of that is 1 - (1 - J^r)^b for Jaccard
similarity J, which crosses 1/2 near J = 0.8 for 9 x 13.

    hasher = MinHasher.from_params(params.dedup.minhash)
    sigs, ok = hasher.signatures(texts)   # (n, num_perm) uint32; ok[i] False: no words
    keys = hasher.band_keys(sigs)         # (n, bands) uint64, one bucket key per band
    hasher.shingle_set(text)              # sorted unique uint64 shingle hashes (verification)

How it is computed, vectorized over every shingle of a whole batch of documents
(no Python loop per shingle, no Python ``hash()``: every value is explicit uint64
arithmetic, identical on every platform and run):

1. each normalized word -> 64-bit hash: a polynomial over its UTF-8 bytes (prefix sums
   of ``byte * P**i`` mod 2**64 over the batch's bytes) mixed with the word length by
   the murmur3 finalizer;
2. each word n-gram -> 64-bit hash: ``sum_k word[i+k] * Q**k`` (order-sensitive),
   finalized again; a document shorter than n words is one shingle of all its words
   (as RedPajama-V2 does);
3. permutation p maps a shingle hash x to ``a_p * x + b_p mod 2**64`` (a_p odd: a
   bijection); the signature row is the top 32 bits of the minimum, which equals the
   minimum of the top 32 bits because the shift is monotone, so the shift is applied
   to 128 numbers instead of to the whole (perm x shingle) matrix. a_p, b_p come from
   BLAKE2b of (seed, p): stable across numpy versions and platforms.

The estimate of Jaccard similarity is the fraction of equal rows (:func:`estimate_jaccard`);
tests check it against exact Jaccard and against datasketch's MinHash on the same texts.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterator, Sequence

import numpy as np

from redrobe.config import MinHashParams
from redrobe.mix64 import fmix64
from redrobe.text.normalize import normalized_text

#: reason for a removed document that is a MinHash-LSH near duplicate of the kept one
NEAR_DUPLICATE = "near_duplicate"

#: normalized bytes hashed per vectorized call: bounds the byte-level arrays (and the
#: power tables, built once per hasher) to ~8 MiB each whatever the batch size
BLOB_BYTES = 1 << 20

#: shingles per (num_perm x CHUNK) uint64 block: bounds that matrix to 128 x 8192 x 8 B = 8 MiB
CHUNK = 8192

_U64 = np.uint64
# Odd multipliers of the byte and word polynomials (fmix64: redrobe.mix64).
_P = _U64(0x100000001B3)          # FNV-64 prime
_Q = _U64(0x9E3779B97F4A7C15)     # 2**64 / golden ratio (odd)
_LEN = _U64(0xC2B2AE3D27D4EB4F)


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """(n,) uint64: base**0 .. base**(n-1) mod 2**64 (cumprod wraps like C unsigned math)."""
    out = np.full(n, base, dtype=np.uint64)
    if n:
        out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


# ASCII fast path of normalized_text: delete string.punctuation bytes, map every byte that
# str.split() treats as whitespace to a space (runs are collapsed by word_hashes).
_ASCII_WS = bytes(32 if chr(c).isspace() else c for c in range(128)) + bytes(range(128, 256))
_ASCII_PUNCT = string.punctuation.encode("ascii")


def normalized_bytes(text: str) -> bytes:
    """UTF-8 of :func:`~redrobe.text.normalize.normalized_text` up to whitespace runs
    (same words in the same order): bytes ops for ASCII text, the exact view otherwise."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WS, _ASCII_PUNCT).lower()
    return normalized_text(text).encode("utf-8")


class _Powers:
    """Growing tables of P**i and P**-i mod 2**64, shared by the batches of one hasher."""

    def __init__(self) -> None:
        self.up = self.down = np.ones(0, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.up) < n:
            size = max(n, 2 * len(self.up), 1 << 16)
            self.up = _powers(_P, size)
            self.down = _powers(_U64(pow(int(_P), -1, 1 << 64)), size)
        return self.up, self.down


def word_hashes(blob: bytes, powers: _Powers | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hash of every word of ``blob`` (words separated by runs of spaces) and its start byte.

    Prefix sums over all bytes at once: with H[i] = sum_{j<i} byte_j * P**j, the word
    [s, e) hashes to (H[e] - H[s]) * P**-s = sum_j byte_j * P**(j-s), then mixed with
    its length.
    """
    data = np.frombuffer(blob, dtype=np.uint8)
    n = len(data)
    if not n:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    up, down = (powers or _Powers()).get(n)
    padded = np.zeros(n + 2, dtype=np.int8)   # 1 inside words, 0 on spaces and both ends
    np.not_equal(data, 32, out=padded[1:-1].view(bool))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(data * up[:n], out=prefix[1:])
    poly = (prefix[ends] - prefix[starts]) * down[starts]
    return fmix64(poly ^ ((ends - starts).astype(np.uint64) * _LEN)), starts


def shingle_hashes(words: np.ndarray, doc_sizes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram of every document, and the document of each.

    ``words`` are the word hashes of all documents back to back, ``doc_sizes`` the
    number of words of each. A document with 0 < words < n gives one shingle of all its
    words; one with no words gives none.
    """
    doc_sizes = np.asarray(doc_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(doc_sizes)[:-1]]).astype(np.int64)
    q = _powers(_Q, n)
    # Full windows: every position i with i + n <= len(words), kept where it fits its document.
    span = len(words) - n + 1
    hashes, owners = [], []
    if span > 0:
        acc = words[:span] * q[0]
        for k in range(1, n):
            acc = acc + words[k:k + span] * q[k]
        doc_of = np.repeat(np.arange(len(doc_sizes)), doc_sizes)
        ok = doc_of[:span] == doc_of[n - 1:n - 1 + span]
        hashes.append(acc[ok])
        owners.append(doc_of[:span][ok])
    short = np.flatnonzero((doc_sizes > 0) & (doc_sizes < n))
    if len(short):
        # One shingle per short document: sum over its words of word * Q**position.
        idx = np.concatenate([np.arange(s, s + k) for s, k in zip(starts[short], doc_sizes[short])])
        pos = idx - np.repeat(starts[short], doc_sizes[short])
        hashes.append(np.add.reduceat(words[idx] * q[pos], np.concatenate(
            [[0], np.cumsum(doc_sizes[short])[:-1]])).astype(np.uint64))
        owners.append(short)
    if not hashes:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    hashes_, owners_ = np.concatenate(hashes), np.concatenate(owners).astype(np.int64)
    if len(short):
        # callers reduce each document's run of shingles: keep them in document order
        order = np.argsort(owners_, kind="stable")
        hashes_, owners_ = hashes_[order], owners_[order]
    return fmix64(hashes_), owners_


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): num_perm odd uint32 multipliers and uint32 offsets, from BLAKE2b of (seed, p)."""
    raw = b"".join(hashlib.blake2b(f"redrobe-minhash:{seed}:{p}".encode(), digest_size=8).digest()
                   for p in range(num_perm))
    ab = np.frombuffer(raw, dtype="<u4").reshape(num_perm, 2).astype(np.uint32)
    return ab[:, 0] | np.uint32(1), ab[:, 1].copy()


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash estimate of Jaccard similarity: the fraction of equal signature rows."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash sets (e.g. :meth:`MinHasher.shingle_set`)."""
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def _groups(sizes: Sequence[int], limit: int) -> Iterator[tuple[int, int]]:
    """Consecutive index ranges whose sizes sum to at most ``limit`` (or one item alone)."""
    lo, total = 0, 0
    for i, size in enumerate(sizes):
        if i > lo and total + size > limit:
            yield lo, i
            lo, total = i, 0
        total += size + 1
    if lo < len(sizes):
        yield lo, len(sizes)


class MinHasher:
    """Computes signatures and band keys for one set of MinHash parameters."""

    def __init__(self, ngram: int = 13, num_perm: int = 128, seed: int = 42,
                 bands: int = 9, rows: int = 13) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands * rows = {bands * rows} exceeds num_perm = {num_perm}")
        self.ngram, self.num_perm, self.seed = ngram, num_perm, seed
        self.bands, self.rows = bands, rows
        self._a, self._b = permutations(num_perm, seed)
        self._powers = _Powers()

    @classmethod
    def from_params(cls, p: MinHashParams) -> MinHasher:
        return cls(ngram=p.ngram, num_perm=p.num_perm, seed=p.seed, bands=p.bands, rows=p.rows)

    def shingles_of(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Shingle hashes of all ``texts`` (normalized here) and the text index of each."""
        return self.shingles_of_normalized([normalized_bytes(t) for t in texts])

    def shingles_of_normalized(self, normalized: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`shingles_of` for texts already in :func:`normalized_bytes` form."""
        words, starts = word_hashes(b" ".join(normalized), self._powers)
        # the text of each word: texts are joined by one space, so text k starts at byte
        # sum(len) + k of the ones before it
        lengths = np.fromiter(map(len, normalized), dtype=np.int64, count=len(normalized))
        text_starts = np.cumsum(lengths + 1) - lengths - 1
        owner = np.searchsorted(text_starts, starts, side="right") - 1
        sizes = np.bincount(owner, minlength=len(normalized)).astype(np.int64)
        return shingle_hashes(words, sizes, self.ngram)

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, num_perm) uint32 signatures and (n,) bool: False where a text has no words
        (its row is then all 0xFFFFFFFF and must not be used)."""
        return self.signatures_of_normalized([normalized_bytes(t) for t in texts])

    def signatures_of_normalized(self, normalized: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`signatures` for texts already in :func:`normalized_bytes` form."""
        n = len(normalized)
        mins = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        has = np.zeros(n, dtype=bool)
        for lo, hi in _groups([len(t) for t in normalized], BLOB_BYTES):
            hashes, owner = self.shingles_of_normalized(normalized[lo:hi])
            self._min_hash(hashes.astype(np.uint32), owner, mins[lo:hi])  # low 32 bits: fully mixed
            has[lo + owner] = True
        return mins, has

    def _min_hash(self, x32: np.ndarray, owner: np.ndarray, mins: np.ndarray) -> None:
        """mins[d, p] = min over d's shingles x of a_p * x + b_p mod 2**32, in place."""
        for lo in range(0, len(x32), CHUNK):
            x, own = x32[lo:lo + CHUNK], owner[lo:lo + CHUNK]
            block = self._a[:, None] * x[None, :]        # (num_perm, chunk), wraps mod 2**32
            block += self._b[:, None]
            # owners are non-decreasing: reduce each document's run of columns at once
            heads = np.concatenate([[0], np.flatnonzero(own[1:] != own[:-1]) + 1])
            part = np.minimum.reduceat(block, heads, axis=1).T   # (docs in chunk, num_perm)
            docs = own[heads]
            mins[docs] = np.minimum(mins[docs], part)

    def signature(self, text: str) -> np.ndarray | None:
        """(num_perm,) uint32 signature of one text, or None when it has no words."""
        sigs, has = self.signatures([text])
        return sigs[0] if has[0] else None

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(n, bands) uint64 (or (bands,) for one signature): a 64-bit hash of each band's
        rows, so equal bands give equal keys."""
        sigs = np.asarray(signatures, dtype=np.uint32)
        one = sigs.ndim == 1
        sigs = sigs.reshape(-1, self.num_perm)[:, :self.bands * self.rows]
        rows = sigs.reshape(len(sigs), self.bands, self.rows).astype(np.uint64)
        keys = np.zeros(rows.shape[:2], dtype=np.uint64)
        for r in range(self.rows):
            keys = fmix64(keys * _Q + rows[:, :, r])
        return keys[0] if one else keys

    def shingle_set(self, text: str) -> np.ndarray:
        """Sorted unique uint64 hashes of the text's shingles (exact Jaccard verification)."""
        return np.unique(self.shingles_of([text])[0])
