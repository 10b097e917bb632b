"""Deterministic train/validation split by a hash of the document id.

The split is a pure function of (id, fraction, seed), so it is made before training
and every stage (tokenize, bucket, lora, evaluate) agrees on it without passing
lists of ids around:

    is_validation("wikipedia/3f2a...", fraction=0.05, seed=1234)
"""

from __future__ import annotations

import hashlib


def split_point(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) derived from the id and the seed."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_validation(doc_id: str, fraction: float, seed: int) -> bool:
    """True when the document belongs to the held-out validation split."""
    return split_point(doc_id, seed) < fraction
