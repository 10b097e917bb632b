"""Synthetic, realistic corpora with planted duplicates for the dedup scale ladder.

    python benchmarks/scale_corpus.py --docs 10000 --out /tmp/corpus --seed 0 [--raw DIR]
        [--shard-docs 1000] [--mean-words 300]

What it builds. The dedup stage has to be checked at 10^4..10^6 documents, far more than
the sample corpus holds, and a recall/precision check needs to know which documents are
duplicates of which. So this script writes a cleaned-shard corpus of any size
(``<out>/<slice>/part-NNNNN.parquet``, the layout dedup reads) in which every document is
made of real sentences, and in which the duplicates are planted on purpose and listed in
``<out>/truth.parquet``. The text is real (sentences cut out of redrobe's sample corpus,
ingested with the repository's params.yaml, or taken from ``--raw``), so word
statistics, shingle collisions and compression behave like the real data; only the
order of sentences is random. Each document takes a length from a log-normal around
``--mean-words`` and draws sentences from the pool, so two unrelated documents share
a sentence now and then (a low Jaccard, as in real crawls) but never most of their
13-grams.

Planted families (about 13 % of the documents, their members scattered over random
shards and so over slices), every pair recorded with its exact word 13-gram Jaccard
measured by ``MinHasher().shingle_set`` and ``exact_jaccard``:

- ``near``: a base document plus 1-4 variants: exact copies (J = 1), copies that differ
  only in case, ASCII punctuation and whitespace (J = 1 after normalization, different
  bytes), and edited copies whose Jaccard against the base is aimed at a value drawn
  from 0.5..1 by replacing, inserting or deleting words and inserting sentences at
  positions at least 13 words apart (each edit then changes a known number of
  shingles). All pairs of the family are recorded, variant-to-variant too;
- ``chain``: A, B = A edited, C = B edited elsewhere, with J(A,B) and J(B,C) >= 0.85
  and J(A,C) < 0.8: a pairwise threshold of 0.8 links A to C only through B;
- ``template``: one large family (0.7 % of the documents): one long boilerplate page
  with two one-word slots filled per document (a word and a serial number), so every
  pair differs in at most two words, J >= ``template_min_jaccard`` in the summary
  (about 0.87). Only the pairs with its first member are recorded.

How it stays fast and flat. Nothing holds the corpus: a seeded plan (family sizes and
the shuffled global positions of their members, a few integers per planted document)
is made up front; then shards are written one by one, each background document from
the shard's own generator and each planted one recomputed from its family's generator
(a member's text is a pure function of seed, family and member index, so families
need no stored text). The ground truth is a second pass over families in batches,
shingled together in one vectorized call. Same ``--docs`` and ``--seed`` (and pool)
give byte-identical shards and truth.

Measured on the 2-core development machine (pool: 25,835 sentences of the sample
corpus; mean 330 words per document): 10^4 documents in 1.4 s, 10^5 in 10 s (95 MB),
10^6 in 101 s (955 MB: 69 s of shards, about 14,500 documents/s, 32 s of truth), peak
RSS 225 / 254 / 248 MB: flat in the corpus size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import string
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SLICES = ("books", "wikipedia", "c4", "common_crawl", "github")
MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_WORDS = 120
NGRAM = 13
NEAR_SHARE, CHAIN_SHARE, TEMPLATE_SHARE = 0.10, 0.025, 0.007
TEMPLATE_WORDS = 420
CHAIN_EDIT_SHARE = 0.065     # shingles a chain step changes, as a share of the base's
TRUTH_SCHEMA = pa.schema([("family", pa.int64()), ("kind", pa.string()), ("variant", pa.string()),
                          ("id_a", pa.string()), ("id_b", pa.string()), ("jaccard", pa.float64())])
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|\n+")
_KIND_CODES = ("near", "chain", "template")


# -- the sentence pool ----------------------------------------------------------------
def split_sentences(text: str) -> Iterator[str]:
    """Sentences of ``text``: cut at line breaks and after . ! ? before a capital."""
    for piece in _SENTENCE_END.split(text):
        sentence = " ".join(piece.split())
        if MIN_SENTENCE_WORDS <= sentence.count(" ") + 1 <= MAX_SENTENCE_WORDS:
            yield sentence


def sentence_pool(texts: Iterator[str] | Sequence[str]) -> list[str]:
    """Unique sentences of ``texts``, first occurrence order (deterministic)."""
    return list(dict.fromkeys(s for text in texts for s in split_sentences(text)))


def pool_from_shards(raw: Path) -> list[str]:
    from redrobe.documents import list_shards, read_documents

    return sentence_pool(d.text or "" for shard in list_shards(raw) for d in read_documents(shard))


def ingested_raw(raw: Path | None, work: Path) -> Path:
    """``raw`` when given, else the sample corpus ingested into ``work`` (benchmarks/scaling.py)."""
    if raw is not None:
        return raw
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scaling import ensure_raw

    # the ``redrobe`` command next to this interpreter (a virtualenv that is not activated)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    return ensure_raw(work / "none", work)


class Pool:
    """Sentences with their word counts, and a vocabulary of pool words for edits."""

    def __init__(self, sentences: Sequence[str]) -> None:
        if not sentences:
            raise ValueError("empty sentence pool")
        self.sentences = list(sentences)
        self.words = np.array([s.count(" ") + 1 for s in self.sentences], dtype=np.int64)
        vocab = {w for s in self.sentences[:5000] for w in s.split() if w.isalpha()}
        self.vocab = sorted(vocab) or ["word"]

    def draw(self, rng: np.random.Generator, words: int, distinct: bool = False) -> list[str]:
        """Random sentences until at least ``words`` words (``distinct``: none twice, as
        long as the pool lasts)."""
        mean = float(self.words.mean())
        picked: list[int] = []
        total = 0
        if distinct:
            order = rng.permutation(len(self.sentences))
            cum = np.cumsum(self.words[order])
            return [self.sentences[i] for i in order[:int(np.searchsorted(cum, words)) + 1]]
        while total < words:
            idx = rng.integers(0, len(self.sentences), size=int((words - total) / mean) + 4)
            cum = total + np.cumsum(self.words[idx])
            stop = int(np.searchsorted(cum, words)) + 1
            picked.extend(idx[:stop].tolist())
            total = int(cum[min(stop, len(cum)) - 1])
        return [self.sentences[i] for i in picked]


def doc_length(rng: np.random.Generator, mean_words: int, floor: int = 20) -> int:
    """Log-normal word count with mean ``mean_words`` (heavy right tail, like the sample)."""
    sigma = 0.8
    value = rng.lognormal(math.log(mean_words) - sigma * sigma / 2, sigma)
    return int(min(max(value, floor), 20 * mean_words))


def render(rng: np.random.Generator, sentences: list[str]) -> str:
    """Sentences joined into paragraphs of 2-7 sentences."""
    breaks = rng.integers(2, 8, size=len(sentences) // 2 + 1)
    parts, start = [], 0
    for size in breaks:
        if start >= len(sentences):
            break
        parts.append(" ".join(sentences[start:start + size]))
        start += int(size)
    return "\n\n".join(parts)


# -- variants -------------------------------------------------------------------------
def edits_for(target: float, tokens: int) -> int:
    """Edits 13 tokens apart that bring the Jaccard with the original near ``target``:
    each kills ~13 shingles and makes ~13, so J = (S - 13k) / (S + 13k)."""
    shingles = max(tokens - NGRAM + 1, 1)
    k = round(shingles * (1 - target) / (NGRAM * (1 + target)))
    return int(min(max(k, 1), tokens // NGRAM - 2))


def shingles(text: str) -> set[int]:
    """The dedup stage's shingle set of ``text`` (word 13-grams of the normalized words)."""
    from redrobe.dedup.minhash import MinHasher

    return MinHasher(ngram=NGRAM).shingle_set(text)


def chain_edits(shingles: int) -> int:
    """Edits per chain step for a base of ``shingles`` distinct shingles (S): an edit
    changes 13, so k = 0.065 S / 13 puts J(A,B) = J(B,C) = (S - 13k) / (S + 13k) near 0.88
    and J(A,C) = (S - 26k) / (S + 26k) near 0.77, each about 0.03 from its threshold (0.85,
    0.8). A chain base is long (1500..2500 words) so that one edit more or less moves J by
    under 0.01, and of distinct sentences, so that no edited shingle is repeated elsewhere."""
    return max(1, round(shingles * CHAIN_EDIT_SHARE / NGRAM))


def edit_tokens(rng: np.random.Generator, pool: Pool, tokens: list[str], k: int,
                slots: np.ndarray | None = None, ops: str = "rid") -> list[str]:
    """``tokens`` with ``k`` word edits (r: replace, i: insert word, d: delete, s: insert
    sentence) in distinct 13-token slots, all at the same offset in their slot so that no
    shingle spans two edits (``slots`` restricts where; the first and last slot never)."""
    tokens = list(tokens)
    if slots is None:
        slots = np.arange(1, len(tokens) // NGRAM - 1)
    chosen = np.sort(rng.choice(slots, size=min(k, len(slots)), replace=False))[::-1]
    offset = int(rng.integers(0, NGRAM))
    for slot in chosen:   # right to left: earlier positions stay valid
        pos = min(int(slot) * NGRAM + offset, len(tokens) - 1)
        op = ops[int(rng.integers(0, len(ops)))]
        word = pool.vocab[int(rng.integers(0, len(pool.vocab)))]
        if op == "r":
            same = word.lower() == tokens[pos].strip(string.punctuation).lower()
            tokens[pos] = word + "s" if same else word
        elif op == "i":
            tokens.insert(pos, word)
        elif op == "d":
            del tokens[pos]
        else:
            tokens[pos:pos] = pool.sentences[int(rng.integers(0, len(pool.sentences)))].split(" ")
    return tokens


def reformat(rng: np.random.Generator, text: str) -> str:
    """Same words after normalization, other bytes: case, ASCII punctuation, whitespace."""
    out = []
    for token in text.split(" "):
        roll = rng.random()
        if token.isascii() and roll < 0.15:
            token = token.upper() if roll < 0.05 else token.lower()
        elif roll < 0.25:
            token = token.strip(string.punctuation) or token
        elif roll < 0.3:
            token += ","
        out.append(token)
    seps = np.where(rng.random(len(out)) < 0.1, "  ", " ")
    return "".join(t + s for t, s in zip(out, seps)).rstrip(" ") + " \n"


# -- families -------------------------------------------------------------------------
class Plan:
    """Which documents are planted: per family its kind and member positions (the global
    index of each member's document), drawn from one seeded generator."""

    def __init__(self, docs: int, seed: int, shard_docs: int) -> None:
        self.shard_docs = shard_docs
        rng = np.random.default_rng([seed, 0])
        template = max(3, int(docs * TEMPLATE_SHARE))
        chains = max(1, int(docs * CHAIN_SHARE / 3))
        near_sizes = []
        budget = int(docs * NEAR_SHARE)
        while budget >= 2:
            size = int(min(rng.integers(2, 6), budget))
            near_sizes.append(size)
            budget -= size
        sizes = np.array([template] + [3] * chains + near_sizes, dtype=np.int64)
        if sizes.sum() > docs:
            raise ValueError(f"{docs} documents are too few for the planted families")
        self.kind = np.array([2] + [1] * chains + [0] * len(near_sizes), dtype=np.int8)
        self.start = np.concatenate([[0], np.cumsum(sizes)])
        self.positions = rng.permutation(docs)[: int(sizes.sum())].astype(np.int64)
        owner = np.repeat(np.arange(len(sizes)), sizes)
        member = np.arange(len(owner)) - self.start[owner]
        order = np.argsort(self.positions)
        self.sorted_pos = self.positions[order]
        self.sorted_family, self.sorted_member = owner[order], member[order]

    def __len__(self) -> int:
        return len(self.kind)

    def slice_of(self, index: int) -> str:
        return shard_place(index // self.shard_docs)[0]

    def members(self, family: int) -> np.ndarray:
        return self.positions[self.start[family]:self.start[family + 1]]

    def in_range(self, lo: int, hi: int) -> dict[int, tuple[int, int]]:
        """{global index: (family, member)} for the planted documents in [lo, hi)."""
        a, b = np.searchsorted(self.sorted_pos, [lo, hi])
        return {int(p): (int(f), int(m)) for p, f, m in zip(
            self.sorted_pos[a:b], self.sorted_family[a:b], self.sorted_member[a:b])}


class Families:
    """Member texts, recomputed from (seed, family, member) whenever needed."""

    def __init__(self, pool: Pool, seed: int, mean_words: int) -> None:
        self.pool, self.seed, self.mean_words = pool, seed, mean_words

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def base_tokens(self, family: int, kind: int) -> list[str]:
        rng = self._rng(2, family)
        if kind == 2:
            words = TEMPLATE_WORDS
        elif kind == 1:
            return render(rng, self.pool.draw(rng, int(rng.integers(1500, 2500)), distinct=True)).split(" ")
        else:
            words = max(doc_length(rng, self.mean_words), 200)
        return render(rng, self.pool.draw(rng, words)).split(" ")

    def text(self, family: int, kind: int, member: int) -> tuple[str, str]:
        """(variant name, text) of one member."""
        tokens = self.base_tokens(family, kind)
        rng = self._rng(3, family, member)
        if kind == 2:
            return "template", self._template(tokens, member)
        if kind == 1:
            return "chain", self._chain(family, tokens, member)
        if member == 0:
            return "base", " ".join(tokens)
        roll = rng.random()
        if roll < 0.15:
            return "exact", " ".join(tokens)
        if roll < 0.3:
            return "format", reformat(rng, " ".join(tokens))
        target = float(rng.uniform(0.5, 1.0))
        ops = "ridrs" if rng.random() < 0.3 else "rid"
        return f"edit~{target:.2f}", " ".join(edit_tokens(rng, self.pool, tokens,
                                                          edits_for(target, len(tokens)), ops=ops))

    def _chain(self, family: int, tokens: list[str], member: int) -> str:
        """A (member 0), B = A edited in the first half, C = B edited in the second half."""
        k = chain_edits(len(shingles(" ".join(tokens))))
        half = len(tokens) // NGRAM // 2
        # a slot between the halves: an edit of each step in adjacent slots, at their own
        # offsets, could share shingles, and J(A,C) would then rise above (S - 26k) / (S + 26k)
        for step, slots in ((1, np.arange(1, half)), (2, np.arange(half + 1, 2 * half)))[:member]:
            tokens = edit_tokens(self._rng(3, family, step), self.pool, tokens, k, slots, ops="r")
        return " ".join(tokens)

    def template_slots(self) -> tuple[int, int]:
        """Token positions of the template's two slots, the same for every member."""
        rng = self._rng(5)
        return int(rng.integers(20, 120)), int(rng.integers(240, 380))

    def _template(self, tokens: list[str], member: int) -> str:
        first, second = self.template_slots()
        tokens = list(tokens)
        word_rng = self._rng(4, member)
        tokens[first] = self.pool.vocab[int(word_rng.integers(0, len(self.pool.vocab)))]
        tokens[second] = f"#{100000 + member}"
        return " ".join(tokens)


# -- shards ---------------------------------------------------------------------------
def shard_place(shard: int) -> tuple[str, int]:
    """(slice, part number) of the global shard index: slices take turns."""
    return SLICES[shard % len(SLICES)], shard // len(SLICES)


def doc_id(slice_name: str, seed: int, index: int) -> str:
    return f"{slice_name}/syn{seed}-{index:09d}"


def write_shard(out: Path, shard: int, lo: int, hi: int, plan: Plan, families: Families,
                mean_words: int) -> int:
    from redrobe.documents import Document, ShardWriter, shard_path

    slice_name, part = shard_place(shard)
    planted = plan.in_range(lo, hi)
    rng = families._rng(1, shard)
    path = shard_path(out, slice_name, part)
    with ShardWriter(path) as writer:
        for index in range(lo, hi):
            if index in planted:
                family, member = planted[index]
                _, text = families.text(family, int(plan.kind[family]), member)
            else:
                text = render(rng, families.pool.draw(rng, doc_length(rng, mean_words)))
            writer.write(Document(id=doc_id(slice_name, families.seed, index), text=text,
                                  source=slice_name, meta={"synthetic": True, "index": index}))
    return path.stat().st_size


def _family_pairs(plan: Plan, family: int) -> list[tuple[int, int]]:
    size = len(plan.members(family))
    if plan.kind[family] == 2:
        return [(0, m) for m in range(1, size)]
    return [(a, b) for a in range(size) for b in range(a + 1, size)]


def truth_rows(plan: Plan, families: Families, batch_docs: int = 512) -> Iterator[dict[str, list]]:
    """Truth columns, a batch of families (or of one family's members) at a time."""
    from redrobe.dedup.minhash import MinHasher, exact_jaccard

    hasher = MinHasher(ngram=NGRAM)
    batch: list[tuple[int, list[tuple[int, int]]]] = []
    members = 0
    for family in range(len(plan)):
        pairs = _family_pairs(plan, family)
        for i in range(0, len(pairs), batch_docs):
            batch.append((family, pairs[i:i + batch_docs]))
            members += len(pairs[i:i + batch_docs]) + 1
            if members >= batch_docs:
                yield _measure(plan, families, hasher, exact_jaccard, batch)
                batch, members = [], 0
    if batch:
        yield _measure(plan, families, hasher, exact_jaccard, batch)


def _measure(plan: Plan, families: Families, hasher: Any, jaccard: Any,
             batch: list[tuple[int, list[tuple[int, int]]]]) -> dict[str, list]:
    keys = sorted({(f, m) for f, pairs in batch for pair in pairs for m in pair})
    texts = {k: families.text(k[0], int(plan.kind[k[0]]), k[1]) for k in keys}
    hashes, owner = hasher.shingles_of([texts[k][1] for k in keys])
    bounds = np.searchsorted(owner, np.arange(len(keys) + 1))
    sets = {k: np.unique(hashes[bounds[i]:bounds[i + 1]]) for i, k in enumerate(keys)}
    cols: dict[str, list] = {name: [] for name in TRUTH_SCHEMA.names}
    for family, pairs in batch:
        kind = int(plan.kind[family])
        members = plan.members(family)
        for a, b in pairs:
            slice_a, slice_b = plan.slice_of(int(members[a])), plan.slice_of(int(members[b]))
            cols["family"].append(family)
            cols["kind"].append(_KIND_CODES[kind])
            cols["variant"].append(texts[(family, b)][0])
            cols["id_a"].append(doc_id(slice_a, families.seed, int(members[a])))
            cols["id_b"].append(doc_id(slice_b, families.seed, int(members[b])))
            cols["jaccard"].append(jaccard(sets[(family, a)], sets[(family, b)]))
    return cols


# -- the whole corpus -------------------------------------------------------------------
def generate(out: str | Path, docs: int, seed: int, pool: Sequence[str], shard_docs: int = 1000,
             mean_words: int = 300) -> dict[str, Any]:
    """Write the corpus and its truth under ``out``; return a summary (also ``corpus.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plan = Plan(docs, seed, shard_docs)
    families = Families(Pool(pool), seed, mean_words)
    shards = math.ceil(docs / shard_docs)
    size = sum(write_shard(out, s, s * shard_docs, min(docs, (s + 1) * shard_docs), plan,
                           families, mean_words) for s in range(shards))
    shards_s = time.perf_counter() - started
    pairs = {name: 0 for name in _KIND_CODES}
    with pq.ParquetWriter(out / "truth.parquet", TRUTH_SCHEMA, compression="zstd") as writer:
        for cols in truth_rows(plan, families):
            writer.write_table(pa.Table.from_pydict(cols, schema=TRUTH_SCHEMA))
            for kind in cols["kind"]:
                pairs[kind] += 1
    summary = {
        "docs": docs, "shards": shards, "slices": sorted({shard_place(s)[0] for s in range(shards)}),
        "seed": seed, "shard_docs": shard_docs, "mean_words": mean_words, "pool_sentences": len(pool),
        "families": {name: int((plan.kind == i).sum()) for i, name in enumerate(_KIND_CODES)},
        "planted_docs": int(len(plan.positions)), "planted_pairs": pairs,
        "template_docs": int(len(plan.members(0))),
        "template_min_jaccard": _template_floor(families),
        "bytes": size + (out / "truth.parquet").stat().st_size,
        "seconds": {"shards": round(shards_s, 2), "total": round(time.perf_counter() - started, 2)},
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _template_floor(families: Families) -> float:
    """Jaccard of two template members that differ in both slots: the family's minimum."""
    from redrobe.dedup.minhash import MinHasher, exact_jaccard

    hasher = MinHasher(ngram=NGRAM)
    a = families._template(families.base_tokens(0, 2), 0).split(" ")
    b = list(a)
    for slot in families.template_slots():
        b[slot] += "x"
    floor = exact_jaccard(hasher.shingle_set(" ".join(a)), hasher.shingle_set(" ".join(b)))
    return math.floor(floor * 10_000) / 10_000      # rounded down: it is a lower bound


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", type=Path, help="sample corpus shards (default: run ingest)")
    parser.add_argument("--shard-docs", type=int, default=1000)
    parser.add_argument("--mean-words", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-corpus-") as work:
        pool = pool_from_shards(ingested_raw(args.raw, Path(work)))
    summary = generate(args.out, args.docs, args.seed, pool, args.shard_docs, args.mean_words)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
