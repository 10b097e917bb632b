"""Benchmark: our numpy MinHash-LSH against datasketch, for speed and for accuracy.

    python benchmarks/minhash.py                 # -> benchmarks/results/minhash.json
    python benchmarks/minhash.py --max-docs 200  # quicker

1. Throughput (docs/references.md, "Benchmark anchors"): documents/s of signatures + LSH on the same real
   documents (the cleaned shards under ``--input``, default data/interim/clean; the
   ingest output data/raw when those are missing; generated prose when neither exists).
   datasketch side: ``MinHash(num_perm=128, seed=42).update_batch(13-gram shingles)``
   then ``MinHashLSH(threshold=0.8, num_perm=128)`` query + insert, per document.
   Our side: :meth:`MinHasher.signatures` over batches of ``--batch`` documents, band
   keys, and the sorted-key bucketing the dedup stage uses (equal_key_pairs per band).
   Both start from the raw text and both pay the RedPajama-V2 normalization. Timed in
   process CPU time on one thread (the machine is shared: wall time would measure the
   neighbours too), best of ``--repeat``.
2. Accuracy: a corpus with planted near-duplicates. Each of ``--families`` base
   documents gets copies with isolated words replaced so that the exact Jaccard of
   13-gram sets hits targets 0.5 .. 1.0; the true Jaccard of every pair in a family is
   computed exactly from Python string sets. A pair is found when it shares an LSH
   band bucket (ours: 9 x 13, RedPajama-V2's 0.8 setting; 14 x 9, its 0.7 setting; and
   16 x 8, redrobe's default, all 128 permutations; datasketch picks 9 x 13 for threshold
   0.8 too); a pair is clustered when it ends in
   one connected component (what the dedup stage removes on), also with verification
   (only candidate pairs of true J >= 0.8 linked, as ``dedup.minhash.verify`` does).
   Reported: recall per true-Jaccard bucket and at J >= 0.85 (target >= 0.95),
   precision of candidate pairs against J >= 0.8, and the S-curves for comparison.
   With 9 x 13 a single pair at J = 0.85 shares a band with probability only
   1 - (1 - 0.85^13)^9 = 0.69: pair recall at J >= 0.85 cannot reach 0.95 with the
   RedPajama-V2 banding; clusters (transitive links) and a wider banding + verify can.
   14 x 9 gives a single pair at J = 0.85 a chance of 0.975, 16 x 8 one of 0.994.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from datasketch import MinHash, MinHashLSH

from redrobe.config import MinHashParams
from redrobe.dedup.clusters import UnionFind, equal_key_groups, equal_key_pairs
from redrobe.dedup.minhash import MinHasher
from redrobe.documents import list_shards, read_documents
from redrobe.text.normalize import normalized_words

RESULTS = Path(__file__).parent / "results" / "minhash.json"
#: (bands, rows) compared: RedPajama-V2's 0.8 and 0.7 settings, and redrobe's default
BANDINGS = ((9, 13), (14, 9), (16, 8))
TARGETS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
BUCKETS = ((0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 0.95),
           (0.95, 1.0001))


def load_texts(roots: list[str], max_docs: int, min_words: int = 0) -> tuple[list[str], str]:
    """Up to ``max_docs`` texts (round-robin over slices) from the first root with shards."""
    for root in roots:
        shards = list_shards(root) if Path(root).is_dir() else []
        if not shards:
            continue
        per_slice: dict[str, list[str]] = {}
        for path in shards:
            bucket = per_slice.setdefault(path.parent.name, [])
            for doc in read_documents(path):
                if len(bucket) < max_docs and len(doc.text.split()) >= min_words:
                    bucket.append(doc.text)
        texts = [t for group in zip_longest_lists(list(per_slice.values())) for t in group]
        return texts[:max_docs], root
    rng = random.Random(0)
    vocab = [f"w{rng.randrange(10**6)}" for _ in range(5000)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(200, 3000)))
            for _ in range(max_docs)], "generated"


def zip_longest_lists(lists: list[list[str]]) -> list[list[str]]:
    longest = max((len(x) for x in lists), default=0)
    return [[x[i] for x in lists if i < len(x)] for i in range(longest)]


def shingle_strings(text: str, n: int = 13) -> list[bytes]:
    words = normalized_words(text)
    if len(words) < n:
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)]


def cpu_best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def run_datasketch(texts: list[str]) -> list[tuple[int, int]]:
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    pairs = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=128, seed=42)
        shingles = shingle_strings(text)
        if not shingles:
            continue
        m.update_batch(shingles)
        pairs.extend((j, i) for j in lsh.query(m))
        lsh.insert(i, m)
    return pairs


def run_ours(hasher: MinHasher, texts: list[str], batch: int) -> tuple[np.ndarray, np.ndarray]:
    keys, has = [], []
    for lo in range(0, len(texts), batch):
        sigs, ok = hasher.signatures(texts[lo:lo + batch])
        keys.append(hasher.band_keys(sigs))
        has.append(ok)
    band_keys, members = np.concatenate(keys), np.flatnonzero(np.concatenate(has))
    a, b = [], []
    for band in range(band_keys.shape[1]):
        x, y = equal_key_pairs([band_keys[members, band]], members)
        a.append(x)
        b.append(y)
    return np.concatenate(a), np.concatenate(b)


def throughput(texts: list[str], batch: int, repeat: int) -> dict:
    hasher = MinHasher.from_params(MinHashParams())
    mb = sum(len(t.encode()) for t in texts) / 1e6
    ours = cpu_best(lambda: run_ours(hasher, texts, batch), repeat)
    theirs = cpu_best(lambda: run_datasketch(texts), repeat)
    ds = MinHashLSH(threshold=0.8, num_perm=128)
    return {"documents": len(texts), "mb": round(mb, 3),
            "ours_docs_per_s": round(len(texts) / ours, 1),
            "datasketch_docs_per_s": round(len(texts) / theirs, 1),
            "ours_mb_per_s": round(mb / ours, 3), "datasketch_mb_per_s": round(mb / theirs, 3),
            "ratio": round(theirs / ours, 2), "ours_bands_rows": [9, 13],
            "datasketch_bands_rows": [ds.b, ds.r]}


# ----------------------------------------------------------------------------- accuracy

def plant(base: str, target: float, rng: random.Random) -> str:
    """``base`` with isolated words replaced so the 13-gram Jaccard is about ``target``.

    k replacements at least 13 words apart remove 13k shingles and add 13k new ones:
    J = (m - 13k) / (m + 13k) for m shingles, so k = m (1 - J) / (13 (1 + J)).
    """
    words = normalized_words(base)
    m = len(words) - 12
    k = round(m * (1 - target) / (13 * (1 + target)))
    slots = list(range(0, len(words), 13))
    for p in rng.sample(slots, min(k, len(slots))):
        words[p] = f"planted{rng.randrange(10**9)}"
    return " ".join(words)


def planted_corpus(bases: list[str], seed: int) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, family = [], []
    for f, base in enumerate(bases):
        for text in [base] + [plant(base, t, rng) for t in TARGETS]:
            texts.append(text)
            family.append(f)
    return texts, family


def candidate_pairs(hasher: MinHasher, texts: list[str]) -> set[tuple[int, int]]:
    """Every pair of documents that shares a band bucket (all pairs of each bucket)."""
    sigs, has = hasher.signatures(texts)
    keys, members = hasher.band_keys(sigs), np.flatnonzero(has)
    pairs = set()
    for band in range(keys.shape[1]):
        for group in equal_key_groups([keys[members, band]], members):
            g = group.tolist()
            pairs.update((g[x], g[y]) for x in range(len(g)) for y in range(x + 1, len(g)))
    return pairs


def components(pairs: set[tuple[int, int]], n: int) -> np.ndarray:
    uf = UnionFind(n)
    for a, b in sorted(pairs):
        uf.union(a, b)
    return uf.roots()


def accuracy(bases: list[str], seed: int) -> dict:
    texts, family = planted_corpus(bases, seed)
    sets = [set(shingle_strings(t)) for t in texts]
    truth = {}
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if family[i] == family[j]:
                truth[(i, j)] = len(sets[i] & sets[j]) / len(sets[i] | sets[j])

    def true_j(pair: tuple[int, int]) -> float:
        if pair in truth:
            return truth[pair]
        i, j = pair   # a cross-family candidate: computed, not assumed 0
        return len(sets[i] & sets[j]) / len(sets[i] | sets[j])

    def report(found: set[tuple[int, int]]) -> dict:
        # pair: the two share a bucket; cluster: they end in one connected component,
        # which is what the dedup stage acts on (plain, and with verification at 0.8)
        roots = components(found, len(texts))
        verified = components({p for p in found if true_j(p) >= 0.8}, len(texts))
        high = [p for p, j in truth.items() if j >= 0.85]
        good = [p for p in found if true_j(p) >= 0.8]
        by_bucket = {}
        for lo, hi in BUCKETS:
            pairs = [p for p, j in truth.items() if lo <= j < hi]
            by_bucket[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = {
                "pairs": len(pairs),
                "pair_recall": round(sum(p in found for p in pairs) / len(pairs), 4) if pairs else None,
                "cluster_recall": round(sum(roots[a] == roots[b] for a, b in pairs) / len(pairs), 4)
                if pairs else None}
        return {"pair_recall_at_j_ge_0.85": round(sum(p in found for p in high) / len(high), 4),
                "cluster_recall_at_j_ge_0.85": round(
                    sum(roots[a] == roots[b] for a, b in high) / len(high), 4),
                "verified_cluster_recall_at_j_ge_0.85": round(
                    sum(verified[a] == verified[b] for a, b in high) / len(high), 4),
                "pair_precision_vs_j_ge_0.8": round(len(good) / len(found), 4) if found else None,
                "pair_precision_with_verify": 1.0 if good else None,
                "candidate_pairs": len(found), "by_true_jaccard": by_bucket}

    ours = {f"{b}x{r}": report(candidate_pairs(MinHasher(bands=b, rows=r), texts))
            for b, r in BANDINGS}
    theirs = {(min(p), max(p)) for p in run_datasketch(texts)}
    curve = {f"{j:.2f}": {f"{b}x{r}": round(1 - (1 - j ** r) ** b, 4) for b, r in BANDINGS}
             for j in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95)}
    return {"families": len(bases), "documents": len(texts), "family_pairs": len(truth),
            "ours": ours, "datasketch_9x13": report(theirs), "s_curve": curve}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="data/interim/clean")
    ap.add_argument("--max-docs", type=int, default=500)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--families", type=int, default=120)
    ap.add_argument("--output", default=str(RESULTS))
    args = ap.parse_args(argv)

    texts, source = load_texts([args.input, "data/raw"], args.max_docs)
    speed = throughput(texts, args.batch, args.repeat)
    print(f"throughput on {speed['documents']} documents ({speed['mb']} MB, {source}): ours "
          f"{speed['ours_docs_per_s']} docs/s, datasketch {speed['datasketch_docs_per_s']} docs/s "
          f"-> {speed['ratio']}x (target >= 5x)")
    bases, base_source = load_texts([args.input, "data/raw"], args.families, min_words=300)
    acc = accuracy(bases, seed=0)
    sides = {**{f"ours {k}": v for k, v in acc["ours"].items()}, "datasketch 9x13": acc["datasketch_9x13"]}
    for side, r in sides.items():
        print(f"{side}: recall at J >= 0.85: pairs {r['pair_recall_at_j_ge_0.85']}, clusters "
              f"{r['cluster_recall_at_j_ge_0.85']}, clusters with verify "
              f"{r['verified_cluster_recall_at_j_ge_0.85']} (target >= 0.95); pair precision vs "
              f"J >= 0.8: {r['pair_precision_vs_j_ge_0.8']} ({r['candidate_pairs']} candidate pairs), "
              f"1.0 with verify")
    payload = {"command": "python benchmarks/minhash.py " + " ".join(argv or sys.argv[1:]),
               "throughput": {**speed, "source": source},
               "accuracy": {**acc, "source": base_source}}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"-> {args.output}")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
