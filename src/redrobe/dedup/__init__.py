"""Deduplication: exact content hashes and MinHash-LSH near-duplicates.

Two passes over a directory of shards, both per shard (so they map over
:mod:`redrobe.parallel`):

1. :func:`redrobe.dedup.shards.sketch_shard` streams a shard and keeps only compact
   per-document data (id, 128-bit digest of the normalized text, LSH band keys);
2. :func:`redrobe.dedup.shards.plan_removals` links documents that share a digest or a
   band key into clusters (union-find, deterministic: the first document in
   (slice, shard, row) order is kept), and
   :func:`redrobe.dedup.shards.write_shard` re-reads each shard and writes kept and
   removed documents (``reason``, ``duplicate_of``).

The stage that runs it is ``redrobe dedup`` (:mod:`redrobe.stages.dedup`).
"""

from redrobe.dedup.exact import EXACT_DUPLICATE
from redrobe.dedup.minhash import NEAR_DUPLICATE

#: every reason this package writes into the ``reason`` column of removed shards
REASONS = (EXACT_DUPLICATE, NEAR_DUPLICATE)

__all__ = ["EXACT_DUPLICATE", "NEAR_DUPLICATE", "REASONS"]
