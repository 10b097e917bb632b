"""Languages of a finished pipeline run: the funnel of every routed slice per language
partition, removal per language (clean) and the evaluation rows per partition.

    .venv/bin/python benchmarks/languages.py       # data/metrics -> benchmarks/results/languages.json
    .venv/bin/python benchmarks/languages.py --metrics /tmp/run/metrics --out /tmp/languages.json --no-render

Not a measurement of its own: it reads the metrics a pipeline run wrote (``make run`` on
the default params, ``--metrics``: ingest.json, clean.json, dedup.json, bucket.json,
eval.json) and keeps the numbers docs/languages.md shows, so that page's tables are
generated (benchmarks/render_docs.py) instead of typed. Three parts:

- ``funnel``: per routed slice (a partition ``<slice>/<language>`` in ingest's
  accounting), one row per partition with documents read, kept by ingest, clean and
  dedup, and the removals by reason at each step; the partitions ingest kept nothing of
  are one ``<slice>/others`` row (:func:`redrobe.reporting.funnel_slices`, as in the
  report), and a total row per slice.
- ``removal_by_language``: clean's ``removal_by_language`` over all slices, the report's
  "Removal per language" table (:func:`redrobe.reporting.ranked_languages`, top reasons
  by :func:`redrobe.reporting.top_reasons`).
- ``evaluation``: per partition of a routed slice, its script, training and validation
  tokens (bucket's ``slice_tokens``) and bits per byte and perplexity of every model in
  eval.json; each routed slice's bits per byte pooled over its partitions
  (:func:`redrobe.evaluate.report.slice_bits_per_byte`) and every model's
  ``mean_bits_per_byte``.

A language's script is the one most of its multilingual documents' letters are in
(``meta["script"]`` of :func:`redrobe.sources.multilingual.documents`, weighted by their
characters; ``--cache-dir``: where the pinned archives are, downloaded once when
missing), English ``Latn``. Writes the JSON with the command and the commit, then
regenerates docs/performance.md and the generated blocks of docs/languages.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from redrobe.documents import base_slice, split_partition
from redrobe.evaluate.report import slice_bits_per_byte
from redrobe.reporting import (
    OTHER_LANGUAGES,
    eval_table,
    funnel_slices,
    ranked_languages,
    sum_counts,
    top_reasons,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "languages.json"
#: the metrics files read, by stage name
STAGES = ("ingest", "clean", "dedup", "bucket", "eval")
#: the funnel's steps: (stage, field prefix of the row)
FUNNEL_STAGES = ("ingest", "clean", "dedup")
#: scripts of languages the multilingual sample may lack
KNOWN_SCRIPTS = {"en": "Latn"}

Json = dict[str, Any]


# ---------------------------------------------------------------- inputs


def load_metrics(directory: Path) -> Json:
    """``{stage: metrics}`` for every stage of :data:`STAGES` (a missing file is an error)."""
    missing = [s for s in STAGES if not (directory / f"{s}.json").exists()]
    if missing:
        raise SystemExit(f"{directory}: no {', '.join(f'{s}.json' for s in missing)}: "
                         "run the pipeline first (make run)")
    return {s: json.loads((directory / f"{s}.json").read_text(encoding="utf-8")) for s in STAGES}


def language_scripts(cache_dir: Path) -> dict[str, str]:
    """Language code -> the script most of its multilingual text is in, English Latn."""
    from redrobe.sources import multilingual
    from redrobe.text.languages import normalize_code

    archives = multilingual.open_archives(multilingual.fetch_pins(cache_dir))
    letters: dict[str, Counter[str]] = defaultdict(Counter)
    for doc in multilingual.documents(archives):
        if "error" not in doc.extra:
            letters[normalize_code(doc.meta["language_label"])][doc.meta["script"]] += len(doc.text)
    return {**KNOWN_SCRIPTS, **{code: c.most_common(1)[0][0] for code, c in sorted(letters.items())}}


def git_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


# ---------------------------------------------------------------- funnel


def routed_slices(metrics: Json) -> list[str]:
    """Slices ingest routed by language: those with ``<slice>/<language>`` partitions."""
    names = metrics.get("ingest", {}).get("accounting", {}).get("slices", {})
    return sorted({base_slice(n) for n in names if split_partition(n)[1] is not None})


def partition_order(name: str) -> tuple[int, str]:
    """Languages by code, then ``und`` (nothing identified), then ``others``."""
    language = split_partition(name)[1] or ""
    return ({"und": 1, OTHER_LANGUAGES: 2}.get(language, 0), name)


def funnel_row(name: str, counts: dict[str, Json]) -> Json:
    """One funnel row from each stage's accounting entry (``{stage: counts}``)."""
    row: Json = {"partition": name, "read": counts["ingest"].get("in", 0)}
    for stage in FUNNEL_STAGES:
        c = counts[stage]
        row[f"{stage}_kept"] = c.get("out", 0)
        row[f"{stage}_removed"] = c.get("removed", 0)
        row[f"{stage}_quarantined"] = c.get("quarantined", 0)
        row[f"{stage}_removed_by_reason"] = dict(sorted(c.get("removed_by_reason", {}).items()))
    return row


def others_of(metrics: Json, slice_name: str) -> list[str]:
    """The languages of ``slice_name`` that ingest kept nothing of: its ``others`` row."""
    names = metrics.get("ingest", {}).get("accounting", {}).get("slices", {})
    return sorted((lang for n, c in names.items()
                   if (lang := split_partition(n)[1]) and base_slice(n) == slice_name
                   and not c.get("out", 0)), key=lambda lang: (lang != "und", lang))


def funnel(metrics: Json, slice_name: str) -> Json:
    """The partitions of one routed slice through ingest, clean and dedup, and their total."""
    per_stage = {s: {n: c for n, c in funnel_slices(metrics, s).items()
                     if base_slice(n) == slice_name and n != slice_name}
                 for s in FUNNEL_STAGES}
    names = sorted(set().union(*per_stage.values()), key=partition_order)
    rows = [funnel_row(n, {s: per_stage[s].get(n, {}) for s in FUNNEL_STAGES}) for n in names]
    total: dict[str, Json] = {s: {} for s in FUNNEL_STAGES}
    for stage, parts in per_stage.items():
        for counts in parts.values():
            total[stage] = sum_counts(total[stage], counts)
    return {"partitions": rows, "total": funnel_row(slice_name, total),
            "others": others_of(metrics, slice_name)}


# ---------------------------------------------------------------- removal per language


def removal_rows(metrics: Json) -> list[Json]:
    """Clean's removal per language over all slices, most documents first."""
    return [{"language": language, "docs_in": r.get("docs_in", 0), "docs_kept": r.get("docs_kept", 0),
             "docs_removed": r.get("docs_removed", 0),
             "docs_quarantined": r.get("docs_quarantined", 0),
             "removed_fraction": r.get("removed_fraction", 0.0),
             "top_reasons": [list(t) for t in top_reasons(r.get("removed_by_reason", {}))]}
            for language, r in ranked_languages(metrics)]


# ---------------------------------------------------------------- evaluation


def eval_rows(metrics: Json, slice_name: str, scripts: dict[str, str]) -> list[Json]:
    """One row per evaluated partition of ``slice_name``: script, tokens, every model's
    scores; lowest base bits per byte first."""
    tokens = metrics.get("bucket", {}).get("slice_tokens", {})
    rows: dict[str, Json] = {}
    for score in eval_table(metrics):
        name = score["slice"]
        if base_slice(name) != slice_name or name == slice_name:
            continue
        language = split_partition(name)[1] or ""
        row = rows.setdefault(name, {
            "partition": name, "language": language, "script": scripts.get(language),
            "train_tokens": tokens.get(name, {}).get("train", 0),
            "val_tokens": tokens.get(name, {}).get("val", 0), "models": {}})
        row["models"][score["model"]] = {"bits_per_byte": score["bits_per_byte"],
                                         "perplexity": score["perplexity"]}
    return sorted(rows.values(), key=_by_base_bits)


def _by_base_bits(row: Json) -> tuple[bool, float, str]:
    bpb = row["models"].get("base", {}).get("bits_per_byte")
    return (bpb is None, bpb or 0.0, row["partition"])


def evaluation(metrics: Json, slices: list[str], scripts: dict[str, str]) -> Json:
    """Rows per partition, each routed slice pooled, and each model's mean over slices."""
    models = metrics.get("eval", {}).get("models", {})
    pooled = {m: {s: slice_bits_per_byte(e.get("slices", {})).get(s) for s in slices}
              for m, e in sorted(models.items())}
    return {"rows": {s: eval_rows(metrics, s, scripts) for s in slices},
            "pooled_bits_per_byte": pooled,
            "mean_bits_per_byte": {m: e.get("mean_bits_per_byte") for m, e in sorted(models.items())},
            "scored_slices": len({base_slice(n) for e in models.values() for n in e.get("slices", {})}),
            "lora_slice": metrics.get("eval", {}).get("lora_slice")}


# ---------------------------------------------------------------- results


def build(metrics: Json, scripts: dict[str, str]) -> Json:
    """The results document (without command and commit)."""
    slices = routed_slices(metrics)
    funnels = {s: funnel(metrics, s) for s in slices}
    languages = {split_partition(r["partition"])[1] for f in funnels.values() for r in f["partitions"]}
    return {"routed_slices": slices, "funnel": funnels,
            "removal_by_language": removal_rows(metrics),
            "evaluation": evaluation(metrics, slices, scripts),
            "scripts": {lang: scripts[lang] for lang in sorted(scripts) if lang in languages}}


def command(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join([".venv/bin/python", "benchmarks/languages.py", *args])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", type=Path, default=ROOT / "data" / "metrics")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "dists")
    ap.add_argument("--pipeline", default="make run",
                    help="the command that ran the pipeline whose metrics these are")
    ap.add_argument("--commit", default=None,
                    help="the commit the pipeline ran at (default: HEAD when this script runs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-render", action="store_true", help="do not regenerate the docs")
    args = ap.parse_args(argv)

    result = build(load_metrics(args.metrics), language_scripts(args.cache_dir))
    result.update(command=command(argv), pipeline=args.pipeline,
                  commit=args.commit or git_commit(),
                  cpus=os.cpu_count())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render_docs import render, write_results

    write_results(args.out, result)
    if not args.no_render:
        render()  # docs/performance.md and docs/languages.md
    return 0


if __name__ == "__main__":
    sys.exit(main())
