"""Benchmark: our Gopher quality + Gopher repetition + C4 rule sets against datatrove's
GopherQualityFilter, GopherRepetitionFilter and C4QualityFilter on the same documents
(docs/references.md, "Rule sets: Gopher, C4, FineWeb" and "Benchmark anchors"): throughput
per core and per-document decision agreement.

    python benchmarks/clean_vs_datatrove.py --setup     # once: builds .venv-bench from PyPI
    python benchmarks/clean_vs_datatrove.py             # -> benchmarks/results/clean_vs_datatrove.json

Run it with the project venv active. datatrove lives in a separate virtualenv
(``.venv-bench``, pinned in benchmarks/requirements-datatrove.txt) because it pins
what the project does not want; this script writes the documents to a JSONL file,
runs itself again under that venv as ``--datatrove-worker`` and reads back one
decision and one CPU time per document and filter. Both sides run pinned to one core
with BLAS/OpenMP threads at 1 and are timed in process CPU time (``time.process_time``:
the machine is shared, so wall time would measure the neighbours too).

Each filter runs on every document on its own (so the agreement is per rule set), and
each side's chained throughput is what a pipeline quality → repetition → C4 spends:
per document, the filters up to and including the first that removes it. Ours also
pays the Unicode normalization the clean stage runs first (the inputs are already
NFC, as the clean stage hands them to its rules, so both sides see the same text).

Documents: the prose slices of the ingest output (``--input``, default data/raw; run
``dvc repro ingest`` or ``redrobe ingest ...`` first), at most ``--max-docs`` per slice
and ``--max-mb`` in all, in shard order.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# one core, one thread: set before numpy (ours) or spaCy/thinc (datatrove) load BLAS
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements-datatrove.txt"
RESULTS = Path(__file__).resolve().parent / "results" / "clean_vs_datatrove.json"
SLICES = ("common_crawl", "c4", "wikipedia", "books")
FILTERS = ("gopher_quality", "gopher_repetition", "c4")   # chain order, as params.clean

# Where the two implementations define a rule differently on purpose (our reasons and
# datatrove's); a disagreement whose removing side used one of these is "by design".
BY_DESIGN = {
    # datatrove's words are spaCy tokens (every punctuation mark a word of its own);
    # ours are whitespace tokens (src/redrobe/text/gopher.py docstring; docs/references.md)
    "gopher_short_doc": "word count: spaCy tokens vs whitespace words",
    "gopher_long_doc": "word count: spaCy tokens vs whitespace words",
    "gopher_below_avg_threshold":
        "mean word length: spaCy tokens vs whitespace words without edge punctuation",
    "gopher_above_avg_threshold":
        "mean word length: spaCy tokens vs whitespace words without edge punctuation",
    "gopher_too_many_hashes":
        "symbol/word ratio denominator: spaCy tokens (punctuation included) vs whitespace tokens",
    "gopher_too_many_ellipsis":
        "symbol/word ratio denominator: spaCy tokens (punctuation included) vs whitespace tokens",
    "gopher_below_alpha_threshold":
        "alpha-word share: punctuation tokens count as words in spaCy's split (verse fails)",
    "gopher_too_many_bullets":
        "bullet set: ours adds RedPajama-V2's bullet glyphs and the en dash to '•' and '-'",
    # repetition n-grams: RedPajama-V2 signals on normalized words over word characters
    # vs datatrove's spaCy tokens over the raw text length, repeats after the first
    **{f"gopher_top_{n}gram":
       "top n-gram: RedPajama-V2 normalized words / word chars vs spaCy tokens / text length"
       for n in (2, 3, 4)},
    **{f"gopher_dup_{n}gram": "duplicate n-grams: RedPajama-V2 (every occurrence, word chars) vs datatrove "
                              "(repeats after the first, non-overlapping, text length)"
       for n in range(5, 11)},
    # C4 sentences: RedPajama-V2's regex vs spaCy's sentencizer
    "c4_too_few_sentences": "sentence count: RedPajama-V2 regex vs spaCy sentencizer",
}
# datatrove's reason -> ours, where only the name differs
DATATROVE_REASONS = {
    "gopher_enough_stop_words": "gopher_too_few_stop_words",
    "dup_para_frac": "gopher_dup_para_frac", "dup_para_char_frac": "gopher_dup_para_char_frac",
    "dup_line_frac": "gopher_dup_line_frac", "dup_line_char_frac": "gopher_dup_line_char_frac",
    **{f"top_{n}_gram": f"gopher_top_{n}gram" for n in (2, 3, 4)},
    **{f"duplicated_{n}_n_grams": f"gopher_dup_{n}gram" for n in range(5, 11)},
    "lorem_ipsum": "c4_lorem_ipsum", "curly_bracket": "c4_curly_bracket",
    "too_few_sentences": "c4_too_few_sentences",
}


def pin_one_core() -> int:
    """Pin this process to one CPU (the first it may use) and return it."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


# ----------------------------------------------------------------------- datatrove side
def datatrove_worker(docs_path: Path, out_path: Path) -> None:
    """Runs under .venv-bench: every datatrove filter on every document, timed."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    core = pin_one_core()
    filters = {"gopher_quality": GopherQualityFilter(), "gopher_repetition": GopherRepetitionFilter(),
               "c4": C4QualityFilter()}
    warm = Document(text="The cat sat on the mat. " * 20, id="warm-up")
    for f in filters.values():   # loads spaCy once, outside the timing
        f.filter(Document(text=warm.text, id=warm.id))
    records = []
    with open(docs_path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            rec = {"id": row["id"]}
            for name, f in filters.items():
                doc = Document(text=row["text"], id=row["id"])
                start = time.process_time()
                result = f.filter(doc)
                seconds = time.process_time() - start
                keep, reason = (result, None) if isinstance(result, bool) else result
                rec[name] = {"keep": bool(keep), "reason": DATATROVE_REASONS.get(reason, reason),
                             "seconds": seconds}
                if name == "c4" and keep:
                    rec[name]["text"] = doc.text
            records.append(rec)
    out_path.write_text(json.dumps({"datatrove": _version("datatrove"), "spacy": _version("spacy"),
                                    "core": core, "docs": records}), encoding="utf-8")


def _version(name: str) -> str:
    from importlib.metadata import version
    return version(name)


# ----------------------------------------------------------------------------- our side
def load_documents(root: Path, max_docs: int, max_mb: float) -> list[dict]:
    """Prose documents from the ingest output, NFC-normalized as the clean stage does."""
    from redrobe.config import Params
    from redrobe.documents import list_shards, read_documents
    from redrobe.text.normalize import normalize_unicode

    form = Params().clean.normalization
    budget = max_mb * 1e6 / len(SLICES)     # bytes per slice, so every slice is present
    docs = []
    for name in SLICES:
        taken = size = 0
        for shard in list_shards(root, name):
            for doc in read_documents(shard):
                if taken >= max_docs or size >= budget:
                    break
                text = normalize_unicode(doc.text, form)
                docs.append({"id": doc.id, "slice": name, "text": text})
                taken, size = taken + 1, size + len(text.encode("utf-8"))
    if not docs:
        raise SystemExit(f"no documents under {root} for slices {SLICES}: run the ingest stage first")
    return docs


def run_ours(docs: list[dict]) -> dict:
    """Our rule sets, each on every document, timed like the datatrove side."""
    from redrobe.config import Params
    from redrobe.text.c4 import C4Rules
    from redrobe.text.gopher import GopherQualityRules, GopherRepetitionRules
    from redrobe.text.normalize import normalize_unicode

    clean = Params().clean
    # what Cleaner.for_slice builds for a slice with these rule sets (not imported from
    # rules.py so the benchmark runs the three rule sets on every slice)
    rules = {"gopher_quality": GopherQualityRules(clean.gopher_quality),
             "gopher_repetition": GopherRepetitionRules(clean.gopher_repetition),
             "c4": C4Rules(clean.c4)}
    for rule in rules.values():
        rule.check("The cat sat on the mat. " * 20)   # warm-up, as the datatrove side
    records = []
    for row in docs:
        start = time.process_time()
        text = normalize_unicode(row["text"], clean.normalization)
        rec = {"id": row["id"], "normalize_seconds": time.process_time() - start}
        for name, rule in rules.items():
            start = time.process_time()
            decision = rule.check(text)
            seconds = time.process_time() - start
            rec[name] = {"keep": decision.keep, "reason": decision.reason, "seconds": seconds}
            if name == "c4" and decision.keep:
                rec[name]["text"] = text if decision.text is None else decision.text
        records.append(rec)
    return {"docs": records}


# ---------------------------------------------------------------------------- comparing
def chain_seconds(rec: dict) -> float:
    """CPU seconds a quality → repetition → C4 chain spends on one document."""
    total = rec.get("normalize_seconds", 0.0)
    for name in FILTERS:
        total += rec[name]["seconds"]
        if not rec[name]["keep"]:
            break
    return total


def chain_reason(rec: dict) -> str | None:
    return next((rec[n]["reason"] or "removed" for n in FILTERS if not rec[n]["keep"]), None)


def throughput(docs: list[dict], records: list[dict]) -> dict:
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    out = {}
    for name in FILTERS:
        seconds = sum(r[name]["seconds"] for r in records)
        out[name] = {"seconds": round(seconds, 4), "docs_per_s": round(len(docs) / seconds, 2),
                     "mb_per_s": round(mb / seconds, 4)}
    seconds = sum(map(chain_seconds, records))
    out["chain"] = {"seconds": round(seconds, 4), "docs_per_s": round(len(docs) / seconds, 2),
                    "mb_per_s": round(mb / seconds, 4)}
    return out


def agreement(docs: list[dict], ours: list[dict], theirs: list[dict]) -> dict:
    """Per rule set and for the chain: identical keep/drop decisions, and why not."""
    out = {}
    for name in (*FILTERS, "chain"):
        same = by_design = 0
        causes: Counter = Counter()
        examples: dict[str, list[str]] = {}
        for doc, a, b in zip(docs, ours, theirs):
            if name == "chain":
                ra, rb = chain_reason(a), chain_reason(b)
                ka, kb = ra is None, rb is None
            else:
                ra, rb, ka, kb = a[name]["reason"], b[name]["reason"], a[name]["keep"], b[name]["keep"]
            if ka == kb:
                same += 1
                continue
            removing = ra if not ka else rb
            side = "ours" if not ka else "datatrove"
            cause = f"{side} removes: {removing}"
            causes[cause] += 1
            examples.setdefault(cause, [])
            if len(examples[cause]) < 3:
                examples[cause].append(f"{doc['slice']}:{doc['id']}")
            by_design += removing in BY_DESIGN
        n = len(docs)
        out[name] = {
            "docs": n, "identical": same, "agreement": round(same / n, 4),
            "agreement_excluding_by_design": round(same / (n - by_design), 4) if n > by_design else None,
            "disagreements_by_design": by_design, "disagreements_other": n - same - by_design,
            "disagreement_causes": dict(causes.most_common()),
            "examples": examples,
        }
    kept_both = [(a["c4"]["text"], b["c4"]["text"]) for a, b in zip(ours, theirs)
                 if a["c4"]["keep"] and b["c4"]["keep"]]
    out["c4"]["kept_text_identical"] = (sum(x == y for x, y in kept_both) / len(kept_both)
                                        if kept_both else None)
    return out


def per_slice(docs: list[dict], ours: list[dict], theirs: list[dict]) -> dict:
    out = {}
    for name in SLICES:
        idx = [i for i, d in enumerate(docs) if d["slice"] == name]
        if not idx:
            continue
        out[name] = {"docs": len(idx), "mb": round(sum(len(docs[i]["text"].encode()) for i in idx) / 1e6, 3),
                     "kept_ours": sum(chain_reason(ours[i]) is None for i in idx),
                     "kept_datatrove": sum(chain_reason(theirs[i]) is None for i in idx),
                     "chain_agreement": round(sum((chain_reason(ours[i]) is None)
                                                  == (chain_reason(theirs[i]) is None)
                                                  for i in idx) / len(idx), 4)}
    return out


# --------------------------------------------------------------------------------- main
def setup(venv: Path) -> None:
    """Create the benchmark virtualenv from PyPI (pinned requirements)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (venv / ".gitignore").write_text("*\n", encoding="utf-8")   # as Python >= 3.13's venv does
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
                   check=True)


def run_datatrove(venv: Path, docs: list[dict], workdir: Path) -> dict:
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} not found: run `python {Path(__file__).name} --setup` first")
    docs_path, out_path = workdir / "docs.jsonl", workdir / "datatrove.json"
    with open(docs_path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n" for d in docs)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([str(python), __file__, "--datatrove-worker", str(docs_path), str(out_path)],
                   check=True, env=env)
    return json.loads(out_path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=ROOT / "data" / "raw", help="ingest output (shards)")
    ap.add_argument("--max-docs", type=int, default=400, help="documents per slice at most")
    ap.add_argument("--max-mb", type=float, default=8.0, help="MB of text in all at most")
    ap.add_argument("--venv", type=Path, default=BENCH_VENV, help="the datatrove virtualenv")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--setup", action="store_true", help="create --venv from PyPI and exit")
    ap.add_argument("--datatrove-worker", nargs=2, type=Path, metavar=("DOCS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.datatrove_worker:
        datatrove_worker(*args.datatrove_worker)
        return 0
    if args.setup:
        setup(args.venv)
        return 0

    docs = load_documents(args.input, args.max_docs, args.max_mb)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        theirs = run_datatrove(args.venv, docs, Path(tmp))
        datatrove_wall = time.perf_counter() - started
    core = pin_one_core()
    started = time.perf_counter()
    ours = run_ours(docs)
    ours_wall = time.perf_counter() - started

    ours_tp, theirs_tp = throughput(docs, ours["docs"]), throughput(docs, theirs["docs"])
    ratio = {name: round(theirs_tp[name]["seconds"] / ours_tp[name]["seconds"], 2) for name in ours_tp}
    result = {
        "what": "redrobe clean rule sets vs datatrove filters, same documents, one core each (CPU time)",
        "datatrove_version": theirs["datatrove"], "spacy_version": theirs["spacy"],
        "documents": len(docs), "mb": round(sum(len(d["text"].encode()) for d in docs) / 1e6, 3),
        "cores": {"ours": core, "datatrove": theirs["core"]},
        "wall_seconds": {"ours": round(ours_wall, 2), "datatrove": round(datatrove_wall, 2)},
        "throughput": {"ours": ours_tp, "datatrove": theirs_tp},
        "speedup": ratio, "target_speedup": 10.0,
        "agreement": agreement(docs, ours["docs"], theirs["docs"]),
        "slices": per_slice(docs, ours["docs"], theirs["docs"]),
        "by_design": BY_DESIGN,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _print_summary(result)
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


def _print_summary(result: dict) -> None:
    print(f"{result['documents']} documents, {result['mb']} MB; datatrove {result['datatrove_version']}")
    print(f"{'':18} {'ours MB/s':>10} {'datatrove MB/s':>15} {'ours docs/s':>12} {'dt docs/s':>10} "
          f"{'speedup':>8}")
    for name in (*FILTERS, "chain"):
        a, b = result["throughput"]["ours"][name], result["throughput"]["datatrove"][name]
        print(f"{name:18} {a['mb_per_s']:>10.3f} {b['mb_per_s']:>15.3f} {a['docs_per_s']:>12.1f} "
              f"{b['docs_per_s']:>10.1f} {result['speedup'][name]:>7.1f}x")
    for name, agg in result["agreement"].items():
        print(f"agreement {name:18} {agg['agreement']:.4f}  excluding by-design rules "
              f"{agg['agreement_excluding_by_design']}  ({agg['disagreements_by_design']} by design, "
              f"{agg['disagreements_other']} other)")


if __name__ == "__main__":
    sys.exit(main())
