"""Semantic dedup throughput against the bare sentence-transformers encode of the same texts.

    HF_HUB_OFFLINE=1 python benchmarks/semantic.py [--shards data/interim/clean] [--docs 128]
        [--rounds 2] [--scale 20000]

The encoder is the limit (docs/references.md, "Benchmark anchors"), so the target is a
throughput >= 0.8 of the bare encode. In one process, with the model loaded once and warmed up:

- bare: ``SentenceTransformer.encode(texts, batch_size, normalize_embeddings=True)`` of
  the exact strings our pass embeds (each document's ``head`` view: what MiniLM reads);
- ours: :func:`redrobe.dedup.semantic.semantic_pass` over Parquet shards holding the
  same documents (read shards, text views, encode, write float16 .npy per shard,
  k-means, blockwise pairs, union-find, removals).

Rounds alternate bare / ours; the best round of each is compared (the machine is
shared, the best is the least disturbed). Documents: the prose slices of ``--shards``
(books, wikipedia, c4, common_crawl: real text, e.g. ``data/interim/clean`` after
``redrobe clean``), else the running interpreter's standard-library modules.

``--scale N`` also times the clustering and pair search alone on N stored embeddings
(real embeddings of the documents plus small noise, float16 on disk, k = N / 2000
clusters), showing that this part stays a small share as the corpus grows.

Writes ``benchmarks/results/semantic.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from redrobe.config import DedupSemantic
from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.semantic import (
    EmbeddingStore,
    Encoder,
    ShardEmbedding,
    link_similar,
    semantic_pass,
    text_view,
)
from redrobe.documents import Document, ShardWriter, list_shards, read_documents, shard_path, write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "semantic.json"
PROSE = ("books", "wikipedia", "c4", "common_crawl")


def load_docs(shards: Path, n: int) -> tuple[str, list[Document]]:
    """Up to ``n`` real documents, spread over the prose slices (round robin)."""
    per_slice = [[d for p in list_shards(shards, s) for d in read_documents(p)] for s in PROSE]
    picked: list[Document] = []
    while len(picked) < n and any(per_slice):
        for docs in per_slice:
            if docs and len(picked) < n:
                picked.append(docs.pop(0))
    if picked:
        return f"{shards} (prose slices)", picked
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.glob("*.py") if p.stat().st_size > 2000)[:n]
    return "python stdlib", [Document(id=p.name, text=p.read_text(encoding="utf-8", errors="replace"),
                                      source="c4") for p in files]


def write_corpus(docs: list[Document], root: Path, per_shard: int = 64) -> list[Path]:
    for k in range(0, len(docs), per_shard):
        with ShardWriter(shard_path(root, "c4", k // per_shard)) as w:
            for d in docs[k:k + per_shard]:
                w.write(Document(id=d.id, text=d.text, source="c4"))
    return list_shards(root)


def time_bare(encoder: Encoder, texts: list[str]) -> float:
    t = time.perf_counter()
    encoder.model.encode(texts, batch_size=encoder.batch_size, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - t


def time_ours(encoder: Encoder, shards: list[Path], params: DedupSemantic, tmp: Path,
              r: int) -> tuple[float, dict]:
    work = tmp / f"work{r}"
    work.mkdir()
    t = time.perf_counter()
    result = semantic_pass(shards, [{} for _ in shards], params, work, encoder=encoder)
    return time.perf_counter() - t, result.stats


def time_clustering(encoder: Encoder, texts: list[str], n: int, params: DedupSemantic,
                    tmp: Path) -> dict[str, Any]:
    """k-means + pairs on n stored embeddings derived from real ones (no encoding)."""
    base = encoder.encode(texts)
    rng = np.random.default_rng(0)
    shards = []
    per = 10_000
    for s, start in enumerate(range(0, n, per)):
        m = min(per, n - start)
        v = base[rng.integers(len(base), size=m)] + rng.normal(scale=0.05, size=(m, base.shape[1]))
        v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)
        path = tmp / f"scale{s}.npy"
        np.save(path, v)
        shards.append(ShardEmbedding(path="", slice="c4", embeddings=str(path),
                                     rows=np.arange(m, dtype=np.int64), ids=[str(i) for i in range(m)]))
    store = EmbeddingStore(shards)
    t = time.perf_counter()
    stats = link_similar(store, np.zeros(n, dtype=np.int64), params, UnionFind(n))
    return {"embeddings": n, "seconds": round(time.perf_counter() - t, 2), **stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", default=str(ROOT / "data" / "interim" / "clean"))
    ap.add_argument("--docs", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scale", type=int, default=20_000,
                    help="embeddings for the clustering timing (0: skip)")
    args = ap.parse_args()
    params = DedupSemantic(enabled=True)
    encoder = Encoder(batch_size=params.batch_size, threads=params.threads)
    source, docs = load_docs(Path(args.shards), args.docs)
    texts = [text_view(d.text, "head", params.max_words) for d in docs]
    encoder.encode(texts[:32])  # load and warm up the model outside the timings
    bare, ours, stats = [], [], {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        shards = write_corpus(docs, tmp / "shards")
        for r in range(args.rounds):
            bare.append(time_bare(encoder, texts))
            seconds, stats = time_ours(encoder, shards, params, tmp, r)
            ours.append(seconds)
            print(f"round {r + 1}: bare {len(texts) / bare[-1]:.1f} docs/s, "
                  f"ours {len(texts) / ours[-1]:.1f} docs/s", flush=True)
        scale = time_clustering(encoder, texts, args.scale, params, tmp) if args.scale else None
    import torch
    result = {
        "documents": len(docs), "source": source, "threads": torch.get_num_threads(),
        "batch_size": params.batch_size, "rounds": args.rounds,
        "bare_encode_docs_per_s": round(len(texts) / min(bare), 2),
        "semantic_dedup_docs_per_s": round(len(texts) / min(ours), 2),
        "ratio": round(min(bare) / min(ours), 3), "target": 0.8,
        "bare_seconds": [round(x, 2) for x in bare], "ours_seconds": [round(x, 2) for x in ours],
        "dedup_stats": stats, "clustering_only": scale,
        "python": sys.version.split()[0],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, result)
    print(f"{len(texts)} docs from {source}: bare encode {result['bare_encode_docs_per_s']} docs/s, "
          f"semantic dedup {result['semantic_dedup_docs_per_s']} docs/s -> ratio {result['ratio']} "
          f"(target >= 0.8)")
    if scale:
        print(f"clustering + pairs alone on {scale['embeddings']} embeddings: {scale['seconds']} s "
              f"({scale['kmeans_clusters']} k-means clusters, largest {scale['largest_kmeans_cluster']})")
    print(f"-> {RESULTS}")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()


if __name__ == "__main__":
    main()
