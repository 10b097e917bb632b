"""What should MiniLM embed? Cosine >= 0.9 pairs on real code and planted prose duplicates.

    HF_HUB_OFFLINE=1 python benchmarks/semantic_choice.py [--shards data/interim/clean]
        [--stdlib 300] [--prose 200] [--threshold 0.9]

Evidence for the ``dedup.semantic`` defaults (which slices are embedded, and which view of
each document's text):

- code: on the real github shard (``<shards>/github``; when absent, ``redrobe ingest``
  writes the pinned sample into a temporary directory first) and on a seeded sample of
  the running interpreter's standard library, count the file pairs at cosine >= 0.9
  when MiniLM embeds the raw head of each file (``head``) and when it embeds the head
  after the leading comment/docstring/license blocks are stripped (``strip_header``),
  with the top pairs as examples; plus a planted check: a file and the same code under
  a different license header must still pair with ``strip_header``.
- prose: the real prose slices (``head``), and planted edited copies of real c4 /
  wikipedia documents (10 % of the words replaced, every 8th word dropped, sentences
  shuffled): how many of the planted pairs reach the threshold, and how many pairs of
  distinct original documents do (false positives).

Writes ``benchmarks/results/semantic_choice.json``. All pair counts are exact (a full
similarity matrix of a few hundred documents: this is a measurement, not the library).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from redrobe.dedup.semantic import Encoder, strip_header, text_view
from redrobe.documents import list_shards, read_documents, write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "semantic_choice.json"
MAX_WORDS = 256


def load_slice(root: Path, name: str) -> list[tuple[str, str]]:
    """(id, text) of every document of one slice under ``root``."""
    return [(d.id, d.text) for p in list_shards(root, name) for d in read_documents(p)]


def ensure_shards(shards: Path, tmp: Path) -> Path:
    """``shards`` if it holds a github slice, else a fresh `redrobe ingest` of the sample."""
    if list_shards(shards, "github"):
        return shards
    out = tmp / "raw"
    print(f"{shards}: no github shards; running `redrobe ingest` into {out}", flush=True)
    subprocess.run([sys.executable, "-m", "redrobe.cli", "ingest", "--params", str(ROOT / "params.yaml"),
                    "--cache-dir", str(ROOT / ".cache" / "dists"), "--output", str(out),
                    "--removed", str(tmp / "removed"), "--quarantine", str(tmp / "quarantine"),
                    "--metrics", str(tmp / "ingest.json")],
                   check=True, env={**os.environ, "REDROBE_TRACKING": "off"}, cwd=ROOT)
    return out


def stdlib_sample(n: int, seed: int) -> list[tuple[str, str]]:
    """A seeded sample of the interpreter's standard-library .py files (real code)."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.rglob("*.py")
                   if "site-packages" not in p.parts and "test" not in p.parts and p.stat().st_size > 200)
    pick = sorted(random.Random(seed).sample(files, min(n, len(files))))
    return [(str(p.relative_to(lib)), p.read_text(encoding="utf-8", errors="replace")) for p in pick]


def pairs_at(emb: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """All pairs i < j with cosine >= threshold, most similar first."""
    sims = emb @ emb.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return sorted(zip(i.tolist(), j.tolist(), sims[i, j].round(4).tolist()),
                  key=lambda t: (-t[2], t[0], t[1]))


def snippet(text: str, chars: int = 90) -> str:
    return re.sub(r"\s+", " ", text)[:chars]


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[k:k + n]) for k in range(max(1, len(words) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def compare_views(encoder: Encoder, docs: list[tuple[str, str]], threshold: float,
                  examples: int = 3, views: tuple[str, ...] = ("head", "strip_header")) -> dict[str, Any]:
    """Pairs >= threshold per view; examples show what the encoder saw."""
    out: dict[str, Any] = {"documents": len(docs), "possible_pairs": len(docs) * (len(docs) - 1) // 2}
    for view in views:
        texts = [text_view(t, view, MAX_WORDS) for _, t in docs]
        keep = [k for k, t in enumerate(texts) if t]
        emb = encoder.encode([texts[k] for k in keep])
        pairs = [(keep[a], keep[b], s) for a, b, s in pairs_at(emb, threshold)]
        # Is a pair a real near-duplicate? Judge by the whole texts (word 5-gram Jaccard),
        # which the encoder never sees past its 256 word pieces.
        sets = {k: shingles(docs[k][1]) for k in {k for a, b, _ in pairs for k in (a, b)}}
        jac = np.array([jaccard(sets[a], sets[b]) for a, b, _ in pairs])
        out[view] = {"pairs": len(pairs),
                     "pairs_full_text_jaccard_below_0.5": int((jac < 0.5).sum()),
                     "median_full_text_jaccard": round(float(np.median(jac)), 4) if len(jac) else None,
                     "documents_in_pairs": len({k for a, b, _ in pairs for k in (a, b)}),
                     "examples": [{"a": docs[a][0], "b": docs[b][0], "cosine": s,
                                   "a_view": snippet(texts[a]), "b_view": snippet(texts[b])}
                                  for a, b, s in pairs[:examples]]}
    return out


def planted_header_swap(encoder: Encoder, docs: list[tuple[str, str]], threshold: float) -> dict[str, Any]:
    """Same code body under another file's header: still a pair after strip_header?"""
    headed = [(i, t) for i, t in docs if len(strip_header(t)) < len(t) - 200 and strip_header(t).strip()]
    hits = {"head": 0, "strip_header": 0}
    n = len(headed) // 2
    for k in range(n):
        (_, a), (_, b) = headed[2 * k], headed[2 * k + 1]
        header_b = b[:len(b) - len(strip_header(b))]
        swapped = header_b + strip_header(a)          # a's code under b's license header
        for view in hits:
            e = encoder.encode([text_view(a, view, MAX_WORDS), text_view(swapped, view, MAX_WORDS)])
            hits[view] += int(float(e[0] @ e[1]) >= threshold)
    return {"planted_pairs": n, "found": hits}


def edit(text: str, kind: str, rng: random.Random) -> str:
    """A lightly edited copy: what a near-duplicate on the web looks like."""
    words = text.split()
    if kind == "replace_10pct":
        vocab = sorted(set(words))
        return " ".join(rng.choice(vocab) if rng.random() < 0.1 else w for w in words)
    if kind == "drop_every_8th":
        return " ".join(w for k, w in enumerate(words) if k % 8 != 7)
    sentences = re.split(r"(?<=[.!?])\s+", text)
    rng.shuffle(sentences)
    return " ".join(sentences)


def planted_prose(encoder: Encoder, docs: list[tuple[str, str]], threshold: float,
                  seed: int) -> dict[str, Any]:
    """Recall of planted edited copies and false positives among the originals."""
    rng = random.Random(seed)
    originals = encoder.encode([text_view(t, "head", MAX_WORDS) for _, t in docs])
    false_pairs = pairs_at(originals, threshold)
    out: dict[str, Any] = {"originals": len(docs), "pairs_among_originals": len(false_pairs),
                           "examples_among_originals": [
                               {"a": docs[a][0], "b": docs[b][0], "cosine": s, "a_view": snippet(docs[a][1]),
                                "b_view": snippet(docs[b][1])} for a, b, s in false_pairs[:3]]}
    for kind in ("replace_10pct", "drop_every_8th", "shuffle_sentences"):
        copies = encoder.encode([text_view(edit(t, kind, rng), "head", MAX_WORDS) for _, t in docs])
        cos = (originals * copies).sum(axis=1)
        out[kind] = {"found": int((cos >= threshold).sum()), "planted": len(docs),
                     "min_cosine": round(float(cos.min()), 4),
                     "median_cosine": round(float(np.median(cos)), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", default=str(ROOT / "data" / "interim" / "clean"))
    ap.add_argument("--stdlib", type=int, default=300, help="standard-library files to sample")
    ap.add_argument("--prose", type=int, default=200, help="c4/wikipedia documents to plant copies of")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--parts", default="code,prose",
                    help="what to measure; parts not run keep their results from the previous file")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    encoder = Encoder(batch_size=32)
    with tempfile.TemporaryDirectory() as tmp:
        shards = ensure_shards(Path(args.shards), Path(tmp))
        github = load_slice(shards, "github")
        prose_slices = {s: load_slice(shards, s) for s in ("books", "wikipedia", "c4", "common_crawl")}
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result: dict[str, Any] = {**previous, "threshold": args.threshold, "max_words": MAX_WORDS,
                              "shards": str(shards)}
    if "code" in parts:
        result["github"] = compare_views(encoder, github, args.threshold)
        result["github"]["header_swap"] = planted_header_swap(encoder, github, args.threshold)
        stdlib = stdlib_sample(args.stdlib, args.seed)
        result["stdlib"] = compare_views(encoder, stdlib, args.threshold)
        result["stdlib"]["header_swap"] = planted_header_swap(encoder, stdlib, args.threshold)
    if "prose" in parts:
        result.update(prose_results(encoder, prose_slices, args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, result)
    report(result, args.threshold)
    from render_docs import render  # regenerate docs/performance.md from the results
    render()


def prose_results(encoder: Encoder, prose_slices: dict[str, list[tuple[str, str]]],
                  args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    result["prose_real"] = {
        s: compare_views(encoder, d, args.threshold, views=("head",))["head"] | {"documents": len(d)}
        for s, d in prose_slices.items() if d}
    pool = sorted(prose_slices["c4"] + prose_slices["wikipedia"])
    picked = sorted(random.Random(args.seed).sample(pool, min(args.prose, len(pool))))
    result["prose_planted"] = planted_prose(encoder, picked, args.threshold, args.seed)
    return result


def report(result: dict[str, Any], threshold: float) -> None:
    for name in ("github", "stdlib"):
        r = result[name]
        views = "; ".join(f"{v} {r[v]['pairs']} ({r[v]['pairs_full_text_jaccard_below_0.5']} with full-text "
                          f"Jaccard < 0.5)" for v in ("head", "strip_header"))
        print(f"{name}: {r['documents']} files; pairs >= {threshold}: {views}; same code under another "
              f"header found: {r['header_swap']['found']} of {r['header_swap']['planted_pairs']}")
    for s, r in result["prose_real"].items():
        print(f"{s}: {r['documents']} docs, pairs >= {threshold} (head): {r['pairs']} "
              f"({r.get('pairs_full_text_jaccard_below_0.5', 'n/a')} with full-text Jaccard < 0.5)")
    p = result["prose_planted"]
    print(f"prose planted ({p['originals']} c4/wikipedia docs): "
          f"pairs among originals {p['pairs_among_originals']}; "
          + "; ".join(f"{k} found {p[k]['found']}/{p[k]['planted']} (min cos {p[k]['min_cosine']})"
                      for k in ("replace_10pct", "drop_every_8th", "shuffle_sentences")))
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
