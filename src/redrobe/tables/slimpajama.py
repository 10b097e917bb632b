"""Paper table "slimpajama": short-document filter and cross-slice byte dedup rates, and
token shares before and after, per slice (SlimPajama card; docs/references.md, "Paper tables").

    redrobe reproduce slimpajama --scale sample

How it runs (one variant, ``dedup``: deduplication is cross-slice, so it is one pass).

1. Every raw shard is streamed ``params.shared.batch_docs`` documents at a time
   (:func:`scan_shard`). A document is first put in a hash partition (sampling, below);
   documents of the kept partitions are NFC-normalized (``params.clean.normalization``;
   SlimPajama step 1 is NFC) and counted in UTF-8 bytes and in tokens of ``ctx.tokenizer``.
   The short-document filter is SlimPajama's step 2: a document with fewer than
   ``min_chars`` (200) characters once ASCII punctuation and all whitespace are removed
   is dropped. For each surviving document the shard keeps only its content digest and
   MinHash band keys (a :class:`redrobe.dedup.shards.ShardSketch`, with the other rows
   masked out), never its text, so memory grows with documents, not bytes.
2. The pipeline's own near-duplicate clustering, :func:`redrobe.dedup.shards.plan_removals`
   with the dedup stage's passes (exact content digest, then MinHash-LSH on lower-cased,
   punctuation-free word 13-grams, 16 x 8 bands as candidates, each candidate pair linked
   only when its exact 13-gram Jaccard is >= 0.8: settings ``minhash``), runs over all
   slices at once (``cross_slice``, as SlimPajama dedups "within and between corpora") into
   one :class:`redrobe.dedup.clusters.UnionFind` (connected components). One document per cluster is kept: the
   first in (slice, shard, row) order, deterministic. The byte dedup rate of a slice is
   the share of its bytes (after the short filter) in removed documents.
3. Token shares: a slice's tokens over all tokens, before (raw) and after (short filter +
   dedup); they sum to 100 over our slices.

Sampling (``partitions`` P, ``keep`` K): a document is in the sample when its partition,
a hash of its first MinHash value (a one-row band) modulo P, is below K. Two documents
with Jaccard similarity J have the same first MinHash value with probability J, so near
duplicates land in the same partition with probability >= J and exact copies always do:
duplicate clusters stay whole. A uniform sample of rate K/P keeps both documents of a
pair only with probability (K/P)^2, so it would drop most duplicates of the documents it
keeps and understate the dedup rate. At sample scale P = K = 1 (every document).

The claims (:func:`dedup_pattern_claim`, :func:`share_shift_claim`) are checked on our
numbers with the criteria stated in their text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from redrobe.config import Dedup, DedupSemantic, MinHashParams
from redrobe.dedup.exact import normalized_digest
from redrobe.dedup.minhash import MinHasher, normalized_bytes
from redrobe.dedup.shards import ShardSketch, default_passes, plan_removals, slice_of
from redrobe.documents import Document, base_slice, list_shards, partition_of, read_documents
from redrobe.mix64 import fmix64
from redrobe.tables.spec import (
    CORPUS,
    TOKENIZER,
    Claim,
    Context,
    Table,
    TableSpec,
    Variant,
    pct,
)
from redrobe.text.normalize import normalize_unicode
from redrobe.tokenizer import token_counts

#: SlimPajama card (docs/references.md, "Paper tables"), per slice: short-document filter rate
#: (% of documents), byte dedup rate (% of bytes), token share after and before (%)
PAPER = {
    "common_crawl": (0.02, 63.76, 52.2, 72.6),
    "c4": (4.70, 6.85, 26.7, 14.4),
    "github": (0.00, 46.16, 5.2, 4.9),
    "books": (0.00, 2.01, 4.2, 2.1),
    "arxiv": (0.62, 0.06, 4.6, 2.3),
    "wikipedia": (0.00, 2.24, 3.8, 2.0),
    "stackexchange": (0.32, 0.20, 3.3, 1.7),
}
#: the card's total row: filter rate 1.86 %, byte dedup rate 49.60 %, 627 B tokens after,
#: 1.21 T before
PAPER_TOTAL = {"filter": 1.86, "dedup": 49.60, "tokens_after": 627e9, "tokens_before": 1.21e12}
PROSE = ("common_crawl", "c4", "books", "arxiv", "wikipedia", "stackexchange")
WEB, CURATED = "common_crawl", ("books", "wikipedia")
#: "lose little": the card's curated slices lose 2.01 % and 2.24 % of their bytes; we
#: call at most 5 % little
LITTLE_PCT = 5.0
VARIANT = "dedup"
# SlimPajama strips ASCII punctuation (string.punctuation) and whitespace before counting
_PUNCTUATION = string.punctuation.encode("ascii")
TOTAL = "total"


@dataclass(frozen=True)
class Settings:
    """Short filter, MinHash near-dup detection and hash-partition sampling."""

    min_chars: int = 200           # SlimPajama step 2: < 200 chars w/o punctuation/space is short
    # the dedup stage's MinHash (params.dedup.minhash): 16 x 8 candidates, exact Jaccard >= 0.8
    minhash: MinHashParams = field(default_factory=MinHashParams)
    exact: bool = True             # exact-digest pass first, as the dedup stage runs it
    partitions: int = 1            # sampling: P hash partitions of the first MinHash value ...
    keep: int = 1                  # ... of which partitions 0..K-1 are kept (1/1: everything)

    def validate(self) -> list[str]:
        problems = []
        if self.min_chars < 0:
            problems.append("min_chars: must be >= 0")
        if self.partitions < 1:
            problems.append("partitions: must be >= 1")
        if not 1 <= self.keep <= max(self.partitions, 1):
            problems.append("keep: must be in [1, partitions]")
        if not self.minhash.enabled:
            problems.append("minhash.enabled: must be true (the table measures MinHash dedup)")
        return problems


# ----------------------------------------------------------------------------- measuring

def content_chars(text: str) -> int:
    """Characters left once ASCII punctuation and every whitespace character are removed
    (SlimPajama's length for the short-document filter)."""
    stripped = text.encode("utf-8", "surrogatepass").translate(None, _PUNCTUATION)
    return sum(map(len, stripped.decode("utf-8", "surrogatepass").split()))


def first_min_hasher(p: MinHashParams) -> MinHasher:
    """A one-permutation hasher whose only row is row 0 of ``MinHasher.from_params(p)``'s
    signatures (permutation p is derived from (seed, p) alone), for the partition key."""
    return MinHasher(ngram=p.ngram, num_perm=1, seed=p.seed, bands=1, rows=1)


def partitions_of(first: np.ndarray, has: np.ndarray, ids: Sequence[str], partitions: int) -> np.ndarray:
    """(n,) int64 partition of each document: mixed first MinHash value mod P; a document
    without words (no MinHash) falls back to a hash of its id."""
    keys = fmix64(first.astype(np.uint64))
    for i in np.flatnonzero(~has).tolist():
        keys[i] = int.from_bytes(hashlib.blake2b(ids[i].encode(), digest_size=8).digest(), "little")
    return (keys % np.uint64(partitions)).astype(np.int64)


@dataclass
class ShardScan:
    """What one shard contributes: its masked sketch and per-row counts (sampled rows)."""

    sketch: ShardSketch
    sampled: np.ndarray   # (n,) bool
    short: np.ndarray     # (n,) bool, among sampled
    bytes: np.ndarray     # (n,) int64 UTF-8 bytes of the normalized text; 0 when not sampled
    tokens: np.ndarray    # (n,) int64 tokens; 0 when not sampled


def scan_shard(path: Path, settings: Settings, normalization: str, tokenizer: Any,
               batch_docs: int, slice_name: str = "") -> ShardScan:
    """Stream one shard: sample, normalize, count bytes/tokens, short-filter, sketch
    (``slice_name``: its slice, by default its folder's name)."""
    hasher = MinHasher.from_params(settings.minhash)
    keyer = first_min_hasher(settings.minhash) if settings.partitions > 1 else None
    docs, chunks = read_documents(path, batch_docs), []
    ids: list[str] = []
    while batch := list(islice(docs, batch_docs)):
        ids.extend(d.id for d in batch)
        chunks.append(_scan_batch(batch, settings, normalization, tokenizer, hasher, keyer))
    chunks = chunks or [_scan_batch([], settings, normalization, tokenizer, hasher, keyer)]
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    sketch = ShardSketch(path=str(path), slice=slice_name or slice_of(path), ids=ids,
                         digests=cat["digests"],
                         has_digest=cat["has_digest"], band_keys=cat["keys"],
                         has_signature=cat["has_sig"])
    return ShardScan(sketch, cat["sampled"], cat["short"], cat["bytes"], cat["tokens"])


def _scan_batch(batch: list[Document], settings: Settings, normalization: str, tokenizer: Any,
                hasher: MinHasher, keyer: MinHasher | None) -> dict[str, np.ndarray]:
    n = len(batch)
    # MinHash reads the NFD view (normalized_text), so raw and NFC text give the same shingles
    normalized = [normalized_bytes(d.text) for d in batch]
    sampled = np.ones(n, dtype=bool)
    if keyer is not None:
        first, has = keyer.signatures_of_normalized(normalized)
        parts = partitions_of(first[:, 0], has, [d.id for d in batch], settings.partitions)
        sampled = parts < settings.keep
    idx = np.flatnonzero(sampled).tolist()
    texts = [normalize_unicode(batch[i].text, normalization) for i in idx]
    nbytes, tokens, short = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    nbytes[idx] = [len(t.encode("utf-8", "surrogatepass")) for t in texts]
    tokens[idx] = token_counts(tokenizer, texts) if texts else []
    short[idx] = [content_chars(t) < settings.min_chars for t in texts]
    # only sampled documents that pass the short filter take part in dedup
    live = np.flatnonzero(sampled & ~short).tolist()
    return {"sampled": sampled, "short": short, "bytes": nbytes, "tokens": tokens,
            **_sketch_rows(normalized, live, settings.minhash.bands, hasher)}


def _sketch_rows(normalized: list[bytes], live: list[int], bands: int,
                 hasher: MinHasher) -> dict[str, np.ndarray]:
    """Digest and band keys of the ``live`` rows; the other rows stay masked (False)."""
    n = len(normalized)
    digests, has_digest = np.zeros((n, 2), dtype=np.uint64), np.zeros(n, dtype=bool)
    for i in live:
        digest = normalized_digest(normalized[i])
        if digest is not None:
            digests[i] = np.frombuffer(digest, dtype="<u8")   # 128 bits: two uint64
            has_digest[i] = True
    keys, has_sig = np.zeros((n, bands), dtype=np.uint64), np.zeros(n, dtype=bool)
    if live:
        sigs, has = hasher.signatures_of_normalized([normalized[i] for i in live])
        keys[live] = np.where(has[:, None], hasher.band_keys(sigs), np.uint64(0))
        has_sig[live] = has
    return {"digests": digests, "has_digest": has_digest, "keys": keys, "has_sig": has_sig}


def dedup_params(settings: Settings) -> Dedup:
    """The dedup stage's config for this table: cross-slice, no semantic pass."""
    return Dedup(exact=settings.exact, cross_slice=True, minhash=settings.minhash,
                 semantic=DedupSemantic(enabled=False))


# ----------------------------------------------------------------------------- variants

def variants(ctx: Context) -> list[Variant]:
    params = {"settings": dataclasses.asdict(ctx.settings),
              "normalization": ctx.params.clean.normalization,
              "batch_docs": ctx.params.shared.batch_docs}
    return [Variant(VARIANT, params)]


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    settings: Settings = ctx.settings
    batch = variant.params["batch_docs"]
    assert ctx.corpus is not None  # needs=(CORPUS, ...)
    # a language partition's shards count under their slice: SlimPajama's slices
    scans = [scan_shard(p, settings, variant.params["normalization"], ctx.tokenizer, batch,
                        base_slice(partition_of(p, ctx.corpus)))
             for p in list_shards(ctx.corpus)]
    dedup = dedup_params(settings)
    plan = plan_removals([s.sketch for s in scans], dedup, default_passes(dedup, batch))
    return {"slices": slice_counts(scans, plan.removals),
            "clusters": plan.clusters,
            "sampling": {"partitions": settings.partitions, "keep": settings.keep,
                         "docs_seen": int(sum(len(s.sampled) for s in scans)),
                         "docs_sampled": int(sum(s.sampled.sum() for s in scans))}}


def slice_counts(scans: Sequence[ShardScan], removals: Sequence[dict[int, tuple[str, str, str]]],
                 ) -> dict[str, dict[str, int]]:
    """Per slice: documents, bytes and tokens in the sample, short, and removed as near
    duplicates (and how many of those bytes duplicate a document of another slice)."""
    slice_of_id = {i: s.sketch.slice for s in scans for i in s.sketch.ids}
    out: dict[str, dict[str, int]] = {}
    for scan, removed in zip(scans, removals):
        c = out.setdefault(scan.sketch.slice, dict.fromkeys(
            ("docs_seen", "docs", "bytes", "tokens", "short_docs", "short_bytes", "short_tokens",
             "dup_docs", "dup_bytes", "dup_tokens", "cross_slice_dup_bytes"), 0))
        s = scan.sampled
        c["docs_seen"] += len(s)
        c["docs"] += int(s.sum())
        c["bytes"] += int(scan.bytes[s].sum())
        c["tokens"] += int(scan.tokens[s].sum())
        c["short_docs"] += int(scan.short.sum())
        c["short_bytes"] += int(scan.bytes[scan.short].sum())
        c["short_tokens"] += int(scan.tokens[scan.short].sum())
        for row, (_, _, kept_id) in removed.items():
            c["dup_docs"] += 1
            c["dup_bytes"] += int(scan.bytes[row])
            c["dup_tokens"] += int(scan.tokens[row])
            if slice_of_id[kept_id] != scan.sketch.slice:
                c["cross_slice_dup_bytes"] += int(scan.bytes[row])
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- the table

COLUMNS = ["slice", "ours_docs", "ours_short_filter_docs_pct", "ours_short_filter_bytes_pct",
           "paper_short_filter_pct", "ours_byte_dedup_pct", "paper_byte_dedup_pct",
           "ours_share_before_pct", "paper_share_before_pct", "ours_share_after_pct",
           "paper_share_after_pct", "ours_tokens_before", "ours_tokens_after",
           "paper_tokens_before", "paper_tokens_after"]


def tokens_after(c: dict[str, int]) -> int:
    return c["tokens"] - c["short_tokens"] - c["dup_tokens"]


def rows_of(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """One row per slice (the card's slices first, ours without a card number after),
    then the total; shares are over our slices."""
    before = sum(c["tokens"] for c in counts.values())
    after = sum(tokens_after(c) for c in counts.values())
    rows = []
    for name in list(PAPER) + sorted(set(counts) - set(PAPER)):
        paper = PAPER.get(name, (None,) * 4)
        row = {"slice": name, "paper_short_filter_pct": paper[0], "paper_byte_dedup_pct": paper[1],
               "paper_share_after_pct": paper[2], "paper_share_before_pct": paper[3]}
        c = counts.get(name)
        if c is not None:
            row.update(ours(c, before, after))
        rows.append({k: row.get(k) for k in COLUMNS})
    total = {k: sum(c[k] for c in counts.values()) for k in next(iter(counts.values()), {})}
    row = {"slice": TOTAL, "paper_short_filter_pct": PAPER_TOTAL["filter"],
           "paper_byte_dedup_pct": PAPER_TOTAL["dedup"],
           "paper_share_before_pct": round(sum(p[3] for p in PAPER.values()), 2),
           "paper_share_after_pct": round(sum(p[2] for p in PAPER.values()), 2),
           "paper_tokens_before": PAPER_TOTAL["tokens_before"],
           "paper_tokens_after": PAPER_TOTAL["tokens_after"]}
    if counts:
        row.update(ours(total, before, after))
    rows.append({k: row.get(k) for k in COLUMNS})
    return rows


def ours(c: dict[str, int], before: int, after: int) -> dict[str, Any]:
    """Our columns of one slice (or of the total, whose shares are 100)."""
    return {"ours_docs": c["docs"],
            "ours_short_filter_docs_pct": pct(c["short_docs"], c["docs"]),
            "ours_short_filter_bytes_pct": pct(c["short_bytes"], c["bytes"]),
            # dedup runs on the short-filtered documents: a share of their bytes
            "ours_byte_dedup_pct": pct(c["dup_bytes"], c["bytes"] - c["short_bytes"]),
            "ours_share_before_pct": pct(c["tokens"], before),
            "ours_share_after_pct": pct(tokens_after(c), after),
            "ours_tokens_before": c["tokens"], "ours_tokens_after": tokens_after(c)}


def dedup_pattern_claim(rows: list[dict[str, Any]]) -> Claim:
    """Web data has the highest byte dedup rate of the prose slices; curated slices lose little."""
    text = (f"SlimPajama: web data ({WEB}) has the highest byte dedup rate of the prose slices "
            f"({', '.join(PROSE)}, those we have), while curated slices ({' and '.join(CURATED)}) "
            f"lose little. Criterion: ours {WEB} > every other prose slice, and each of "
            f"{', '.join(CURATED)} <= {LITTLE_PCT:g} % of bytes.")
    rate = {r["slice"]: r["ours_byte_dedup_pct"] for r in rows
            if r["slice"] in PROSE and r["ours_byte_dedup_pct"] is not None}
    missing = [s for s in (WEB, *CURATED) if s not in rate]
    if missing:
        return Claim(text, None, f"no dedup rate for {', '.join(missing)}")
    others = {s: v for s, v in rate.items() if s != WEB}
    highest = all(rate[WEB] > v for v in others.values())
    little = all(rate[s] <= LITTLE_PCT for s in CURATED)
    detail = (f"{WEB} {rate[WEB]:.2f} % vs " + ", ".join(f"{s} {v:.2f} %" for s, v in others.items())
              + f"; highest: {'yes' if highest else 'no'}; curated <= {LITTLE_PCT:g} %: "
              + ("yes" if little else "no"))
    return Claim(text, highest and little, detail)


def share_shift_claim(rows: list[dict[str, Any]]) -> Claim:
    """Dedup moves share from web data to curated slices (72.6 -> 52.2 %; books 2.1 -> 4.2 %)."""
    text = (f"SlimPajama: filtering and dedup shift the token mix away from web data toward "
            f"curated slices. Criterion: ours {WEB} share after < before, and "
            f"{' and '.join(CURATED)} share after > before.")
    by = {r["slice"]: r for r in rows if r["ours_share_before_pct"] is not None}
    missing = [s for s in (WEB, *CURATED) if s not in by]
    if missing:
        return Claim(text, None, f"no shares for {', '.join(missing)}")
    moves = {s: (by[s]["ours_share_before_pct"], by[s]["ours_share_after_pct"]) for s in (WEB, *CURATED)}
    holds = moves[WEB][1] < moves[WEB][0] and all(moves[s][1] > moves[s][0] for s in CURATED)
    detail = "; ".join(f"{s} {b:.2f} -> {a:.2f} %" for s, (b, a) in moves.items())
    return Claim(text, holds, detail)


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    result = results[VARIANT]
    rows = rows_of(result["slices"])
    slices = [r for r in rows if r["slice"] != TOTAL]
    return Table(name=SPEC.name, title=SPEC.title, columns=COLUMNS, rows=rows,
                 claims=[dedup_pattern_claim(slices), share_shift_claim(slices)],
                 notes=notes_of(result, ctx.settings, ctx.scale, slices))


def notes_of(result: dict[str, Any], s: Settings, scale: str, slices: list[dict[str, Any]]) -> list[str]:
    """Scale, sampling, the dedup setup and how the columns are defined."""
    sampling, clusters = result["sampling"], result["clusters"]
    m = s.minhash
    verify = (f"pairs verified at exact Jaccard >= {m.threshold:g}" if m.verify
              else "band matches linked unverified")
    cross = ", ".join(f"{name} {c['cross_slice_dup_bytes']}" for name, c in result["slices"].items()
                      if c["cross_slice_dup_bytes"]) or "none"
    notes = [
        (f"Scale {scale}: {sampling['docs_sampled']} of {sampling['docs_seen']} documents measured; "
         "the card measures 1.21 T tokens of RedPajama-1T."),
        (f"Sampling: hash partitions of each document's first MinHash value (a one-row band), "
         f"{sampling['keep']} of {sampling['partitions']} kept. Near duplicates with Jaccard J share "
         "a partition with probability >= J (exact copies always), so duplicate clusters stay "
         "whole; a uniform sample would understate the dedup rates, because it keeps a duplicate "
         "of a kept document only with the sampling rate's probability."),
        (f"Dedup: {'exact digest, then ' if s.exact else ''}MinHash-LSH on word {m.ngram}-grams, "
         f"{m.num_perm} permutations, {m.bands} x {m.rows} bands, {verify}, across slices: "
         f"{clusters.get('duplicate_clusters', 0)} duplicate clusters, "
         f"{clusters.get('cross_slice_clusters', 0)} spanning slices. A cluster keeps its first "
         "document in (slice, shard, row) order, so a cross-slice duplicate is charged to the "
         f"slice later in alphabetical order (bytes removed as duplicates of another slice: {cross})."),
        ("Shares are over our slices and sum to 100 (total row); tokens are counted with the "
         "table's BPE tokenizer. The short filter rate is a share of documents (bytes beside it); "
         "the byte dedup rate is a share of the bytes left after the short filter."),
    ]
    absent = [r["slice"] for r in slices if r["ours_docs"] is None]
    if absent:
        notes.append(f"Slices the corpus lacks ({', '.join(absent)}) show the card's numbers only.")
    return notes


SPEC = TableSpec(
    name="slimpajama",
    title="SlimPajama: short-document filter and byte dedup rates, token shares before/after, per slice",
    paper="Soboleva et al. 2023, SlimPajama: A 627B token cleaned and deduplicated version of "
          "RedPajama (dataset card, per-source table)",
    differences=[
        "Shingles are word 13-grams of the RedPajama-V2 normalized view (lower-cased, ASCII "
        "punctuation removed, NFD); SlimPajama's dedup/to_hash.py joins nltk.ngrams over the "
        "string, i.e. character 13-grams.",
        "Candidates come from LSH bands (default 16 x 8) and every candidate pair is checked by "
        "exact Jaccard >= 0.8 (the dedup stage's setup); SlimPajama queries a datasketch MinHashLSH "
        "built for threshold 0.8 and links its answers without verification.",
        "NFC normalization without ftfy's fixes (SlimPajama runs ftfy.fix_text with NFC).",
        "Tokens are counted with the corpus-trained BPE tokenizer, not SlimPajama's.",
        "Sample scale: a few hundred documents per slice of real text stand-ins; arXiv and "
        "StackExchange are missing, so shares are over our slices.",
    ],
    settings=Settings,
    variants=variants,
    run_variant=run_variant,
    build=build,
    needs=(CORPUS, TOKENIZER),
)

__all__ = ["SPEC", "Settings", "content_chars", "first_min_hasher", "partitions_of",
           "rows_of", "scan_shard"]
