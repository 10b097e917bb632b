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
    normalized = normalized_text(text)
    if not normalized.strip():
        return None
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=DIGEST_BYTES).digest()
