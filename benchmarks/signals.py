"""Throughput of the RedPajama-V2 quality signals (redrobe.text.rpv2), in one run.

    .venv/bin/python benchmarks/signals.py [--root data/interim/clean] [--reference-docs 150]

Reads every shard under ``--root`` (the clean stage's output; generated text when
there is none) and measures, in this process:

1. ``compute_signals`` + ``signals_to_json`` (what the clean stage does per document):
   documents/s and MB/s of UTF-8 text, and the size of the JSON against the text;
2. the parts: document signals, line signals, language id (2,000-character prefix);
3. the ratio against the plain reference of the test suite (RedPajama-V2's
   definitions computed the obvious way, tests/text/test_rpv2.py) on an evenly spaced
   subset of ``--reference-docs`` documents, after checking both give equal values.

Times are CPU seconds of this single-threaded process (stable on a shared machine).
Prints a table and writes benchmarks/results/signals.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "text"))

from test_rpv2 import _reference  # the plain reference of the tests

from redrobe.documents import list_shards, read_documents
from redrobe.text import langid, rpv2

_VOCABULARY = ("the of and a to in is was he for it with as his on be at by I this had "
               "Lorem ipsum JavaScript 1984 {x} # ... data model river report")


def load_texts(root: Path) -> tuple[list[str], str]:
    shards = list_shards(root) if root.exists() else []
    texts = [doc.text for shard in shards for doc in read_documents(shard, 256)]
    if texts:
        return texts, str(root.resolve().relative_to(REPO) if root.resolve().is_relative_to(REPO)
                          else root)
    rng = random.Random(0)   # no corpus: prose-like lines from a fixed vocabulary
    vocab = _VOCABULARY.split()

    def lines() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randrange(3, 25)))

    texts = [".\n".join(lines() for _ in range(rng.randrange(1, 120))) for _ in range(600)]
    return texts, "generated"


def timed(fn: Callable[[str], object], texts: list[str]) -> float:
    """CPU seconds of this process: the work is single-threaded, and CPU time stays
    meaningful on a machine shared with other jobs, where wall time does not."""
    start = time.process_time()
    for text in texts:
        fn(text)
    return time.process_time() - start


def rates(seconds: float, docs: int, megabytes: float) -> dict:
    return {"seconds": round(seconds, 3), "docs_per_s": round(docs / seconds, 1),
            "mb_per_s": round(megabytes / seconds, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=REPO / "data" / "interim" / "clean")
    ap.add_argument("--reference-docs", type=int, default=150)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "signals.json")
    args = ap.parse_args()

    texts, corpus = load_texts(args.root)
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    rpv2.compute_signals("Warm up: loads the language model and the character tables.")

    full = timed(lambda t: rpv2.signals_to_json(rpv2.compute_signals(t)), texts)
    json_bytes = sum(len(rpv2.signals_to_json(rpv2.compute_signals(t))) for t in texts[:200])
    parts = {
        "document_signals": timed(
            lambda t: rpv2._document_signals(t, " ".join(filter(None, rpv2.normalized_lines(
                t, rpv2.raw_lines(t))))), texts),
        "line_signals": timed(lambda t: rpv2._line_signals(
            t, lines := rpv2.raw_lines(t), rpv2.normalized_lines(t, lines)), texts),
        "language_id": timed(langid.identify, texts),
    }

    step = max(1, len(texts) // max(1, args.reference_docs))
    subset = texts[::step][:args.reference_docs]
    for text in subset:   # the ratio only means something if both agree
        got = rpv2.compute_signals(text)
        assert all(got[k] == v for k, v in _reference(text).items()), "reference mismatch"
    ours = timed(rpv2.compute_signals, subset)
    ours_no_lang = ours - timed(langid.identify, subset)
    reference = timed(_reference, subset)

    result = {
        "corpus": corpus,
        "documents": len(texts),
        "megabytes": round(megabytes, 3),
        "compute_signals_and_json": rates(full, len(texts), megabytes),
        "json_bytes_per_text_byte": round(
            json_bytes / sum(len(t.encode("utf-8", "surrogatepass")) for t in texts[:200]), 3),
        "parts": {name: rates(sec, len(texts), megabytes) for name, sec in parts.items()},
        "vs_plain_reference": {
            "documents": len(subset),
            "redrobe_s_without_langid": round(ours_no_lang, 3),
            "reference_s": round(reference, 3),
            "speedup": round(reference / ours_no_lang, 2),
        },
    }
    print(f"corpus {corpus}: {len(texts)} documents, {megabytes:.2f} MB")
    print(f"{'(CPU time)':26s}{'seconds':>10s}{'docs/s':>10s}{'MB/s':>9s}")
    for name, r in [("signals + JSON", result["compute_signals_and_json"]),
                    *result["parts"].items()]:
        print(f"{name:26s}{r['seconds']:10.2f}{r['docs_per_s']:10.1f}{r['mb_per_s']:9.3f}")
    ref = result["vs_plain_reference"]
    print(f"vs plain reference on {ref['documents']} documents (language id excluded): "
          f"{ref['reference_s']:.2f} s / {ref['redrobe_s_without_langid']:.2f} s = "
          f"{ref['speedup']:.2f}x")
    print(f"JSON bytes per text byte: {result['json_bytes_per_text_byte']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()


if __name__ == "__main__":
    main()
