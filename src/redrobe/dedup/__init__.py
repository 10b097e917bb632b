"""Deduplication: exact content hashes, MinHash-LSH near-duplicates, semantic (MiniLM).

Per shard first (so it maps over :mod:`redrobe.parallel` and is cached per shard):
:func:`redrobe.dedup.shards.sketch_shard` streams a shard and keeps only compact
per-document data (id, 128-bit digest of the normalized text, LSH band keys). Then
:func:`redrobe.dedup.plan.plan_partitioned` clusters the corpus as partitioned tasks
(keys shuffled by hash, buckets, exact Jaccard verification, semantic pairs from
:mod:`redrobe.dedup.semantic`, connected components in
:mod:`redrobe.dedup.components`; the first document of a cluster in (slice, shard,
row) order is kept), and :func:`redrobe.dedup.shards.write_shard` re-reads each shard
and writes kept and removed documents (``reason``, ``duplicate_of``).
:func:`redrobe.dedup.shards.plan_removals` is the same clustering in one process (the
reference the plan is tested against; the paper tables use it on their small corpora).

The stage that runs it is ``redrobe dedup`` (:mod:`redrobe.stages.dedup`).
"""

from redrobe.dedup.exact import EXACT_DUPLICATE
from redrobe.dedup.minhash import NEAR_DUPLICATE
from redrobe.dedup.semantic import SEMANTIC_DUPLICATE

#: every reason this package writes into the ``reason`` column of removed shards
REASONS = (EXACT_DUPLICATE, NEAR_DUPLICATE, SEMANTIC_DUPLICATE)

__all__ = ["EXACT_DUPLICATE", "NEAR_DUPLICATE", "SEMANTIC_DUPLICATE", "REASONS"]
