"""Exact deduplication key: a 128-bit digest of a document's normalized text.

Two documents that differ only in case, punctuation or whitespace share the same
``normalized_text`` view (:mod:`redrobe.text.normalize`) and therefore the same digest:

    content_digest("Hello,   World!") == content_digest("hello world")   # True

A document whose normalized view is empty (only punctuation or whitespace) has
nothing to compare and gets no digest (``None``): it is never an exact duplicate.
"""

from __future__ import annotations

import hashlib

from redrobe.text.normalize import normalized_text

#: reason for a removed document whose normalized text equals the kept document's
EXACT_DUPLICATE = "exact_duplicate"

#: digest size; 128 bits keep accidental collisions out of reach at any corpus size
DIGEST_BYTES = 16


def content_digest(text: str) -> bytes | None:
    """BLAKE2b-128 of the normalized text, or None when the normalized text is empty."""
    return normalized_digest(normalized_text(text).encode("utf-8"))


def normalized_digest(normalized: bytes) -> bytes | None:
    """:func:`content_digest` from the UTF-8 normalized view, whose whitespace runs may
    be uncollapsed (as :func:`redrobe.dedup.minhash.normalized_bytes` gives it)."""
    canonical = b" ".join(normalized.split())
    if not canonical:
        return None
    return hashlib.blake2b(canonical, digest_size=DIGEST_BYTES).digest()
