"""Render the Markdown report of a pipeline run from the stages' metrics files.

Pure functions over already-loaded metrics (dicts) and the training curve rows;
the `report` stage reads the files and writes the result:

    md = render_report(metrics, curve_png="pretrain_curve.png")

Sections: the data funnel per slice (in, removed by reason, duplicates, kept,
tokens), what each clean rule removed, removal per identified language (clean's
``removal_by_language``), tokenizer fertility per language (tokenize's ``fertility``),
tokens per curriculum bucket, the training curve, and the evaluation table.

The same metrics also give the long-format tables that ``dvc plots`` draws (bar
templates) and the few numbers ``dvc exp show`` should compare across experiments:

    rows = funnel_table(metrics)        # slice, stage, docs, label  (FUNNEL_COLUMNS)
    rows = eval_table(metrics)          # slice, model, bits_per_byte, perplexity, label
    write_csv(fh, FUNNEL_COLUMNS, rows)
    key_metrics(metrics)                # {"docs", "pretrain", "lora", "eval"}: for dvc exp show
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO


def _table(header: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _slices(metrics: dict[str, Any], stage: str) -> dict[str, Any]:
    return metrics.get(stage, {}).get("accounting", {}).get("slices", {})


def funnel_slices(metrics: dict[str, Any], stage: str) -> dict[str, Any]:
    """A stage's accounting per funnel row: the language partitions of a routed slice
    that ingest kept nothing of (languages it does not keep) summed into one row
    ``<slice>/others``, so dozens of rows of zeros do not bury the kept languages."""
    ingest = _slices(metrics, "ingest")
    rows: dict[str, Any] = {}
    for name, counts in _slices(metrics, stage).items():
        emptied = "/" in name and not ingest.get(name, {}).get("out", 0)
        key = f"{name.split('/')[0]}/{OTHER_LANGUAGES}" if emptied else name
        rows[key] = sum_counts(rows.get(key, {}), counts)
    return rows


#: the funnel row of a routed slice's languages that ingest kept nothing of
OTHER_LANGUAGES = "others"


def sum_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two accounting entries added up (numbers, and nested counts such as
    ``removed_by_reason``)."""
    total = dict(a)
    for key, value in b.items():
        if isinstance(value, dict):
            total[key] = sum_counts(total.get(key, {}), value)
        elif isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value
    return total


def _reasons(counts: dict[str, Any] | None) -> str:
    if not counts or not counts.get("removed_by_reason"):
        return "0"
    return "<br>".join(f"{r}: {n:,}" for r, n in counts["removed_by_reason"].items())


def funnel_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per slice: ingested, removed by clean (by reason), duplicates, kept, tokens."""
    ingest, clean, dedup = (funnel_slices(metrics, s) for s in ("ingest", "clean", "dedup"))
    tokens = metrics.get("bucket", {}).get("slice_tokens", {})
    rows = []
    for name in sorted(set(ingest) | set(clean) | set(dedup)):
        i, c, d = ingest.get(name, {}), clean.get(name, {}), dedup.get(name, {})
        t = tokens.get(name, {})
        rows.append([name, i.get("in", 0), _reasons(i), i.get("quarantined", 0),
                     c.get("in", 0), _reasons(c), d.get("removed", 0), d.get("out", 0),
                     t.get("train", 0), t.get("val", 0)])
    return rows


def rule_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """What each clean rule removed: one row per slice and reason, largest share of
    characters first; percentages are of the slice's clean input."""
    by_rule = metrics.get("clean", {}).get("removal_by_rule", {})
    return [[name, reason, r["docs"], 100 * r["doc_fraction"], r["chars"], 100 * r["char_fraction"]]
            for name, reasons in sorted(by_rule.items())
            for reason, r in sorted(reasons.items(), key=lambda kv: (-kv[1]["chars"], kv[0]))]


#: removal reasons a language row of the report names (the rest are summed as "other")
TOP_REASONS = 3


def top_reasons(counts: dict[str, int], top: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The ``top`` largest reasons with their counts (ties by name), the rest summed as
    ``("other", n)``."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rest = sum(n for _, n in ranked[top:])
    return ranked[:top] + ([("other", rest)] if rest else [])


def _top_reasons(counts: dict[str, int], top: int = TOP_REASONS) -> str:
    return "<br>".join(f"{reason}: {n:,}" for reason, n in top_reasons(counts, top)) or "—"


def ranked_languages(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(language, row) of clean's ``removal_by_language`` over all slices, most documents
    first (ties by code)."""
    total = metrics.get("clean", {}).get("removal_by_language", {}).get("total", {})
    return sorted(total.items(), key=lambda kv: (-kv[1].get("docs_in", 0), kv[0]))


def language_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per identified language (clean's ``removal_by_language`` over all slices),
    most documents first: in, kept, removed, quarantined, % removed, top removal reasons."""
    return [[language, r.get("docs_in", 0), r.get("docs_kept", 0), r.get("docs_removed", 0),
             r.get("docs_quarantined", 0), 100 * r.get("removed_fraction", 0.0),
             _top_reasons(r.get("removed_by_reason", {}))]
            for language, r in ranked_languages(metrics)]


def fertility_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per language of the tokenizer's validation documents (tokenize's
    ``fertility``), most words first: documents, words, tokens per word and per character."""
    fertility = metrics.get("tokenize", {}).get("fertility", {})
    ranked = sorted(fertility.items(), key=lambda kv: (-kv[1].get("words", 0), kv[0]))
    return [[language, f.get("docs", 0), f.get("words", 0), f.get("tokens", 0),
             _or_dash(f.get("tokens_per_word")), _or_dash(f.get("tokens_per_char"))]
            for language, f in ranked]


def _or_dash(value: Any) -> Any:
    return "—" if value is None else value


def bucket_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """One row per bucket: documents, tokens and its difficulty range (inner edges)."""
    bucket = metrics.get("bucket", {})
    edges = bucket.get("score_edges", [])
    rows = []
    for k, (name, tokens) in enumerate(sorted(bucket.get("bucket_tokens", {}).items())):
        low = f"{edges[k - 1]:.3f}" if k > 0 else "min"
        high = f"{edges[k]:.3f}" if k < len(edges) else "max"
        rows.append([name, bucket.get("bucket_docs", {}).get(name, 0), tokens, f"{low} – {high}"])
    return rows


def eval_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    models = metrics.get("eval", {}).get("models", {})
    base, lora = models.get("base", {}).get("slices", {}), models.get("lora", {}).get("slices", {})
    rows = []
    for name in sorted(set(base) | set(lora)):
        b, a = base.get(name, {}), lora.get(name, {})
        rows.append([name, b.get("perplexity", "—"), b.get("bits_per_byte", "—"),
                     a.get("perplexity", "—"), a.get("bits_per_byte", "—")])
    return rows


#: the funnel's steps: (name, stage metrics file, accounting count) - documents per slice
#: read by ingest, then kept by ingest, clean, dedup and bucket (documents with tokens)
FUNNEL_STEPS = (("read", "ingest", "in"), ("ingest", "ingest", "out"), ("clean", "clean", "out"),
                ("dedup", "dedup", "out"), ("bucket", "bucket", "out"))
FUNNEL_COLUMNS = ("slice", "stage", "docs", "label")
EVAL_COLUMNS = ("slice", "model", "bits_per_byte", "perplexity", "label")


def funnel_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Documents per slice after each funnel step, one row per (slice, step).

    ``label`` ("c4 · 3 clean") is the bar's axis label: it sorts by slice, then step.
    """
    per_stage = {stage: funnel_slices(metrics, stage) for _, stage, _ in FUNNEL_STEPS}
    slices = sorted(set().union(*per_stage.values()))
    rows = []
    for name in slices:
        for k, (step, stage, count) in enumerate(FUNNEL_STEPS, 1):
            docs = per_stage[stage].get(name, {}).get(count, 0)
            rows.append({"slice": name, "stage": step, "docs": docs, "label": f"{name} · {k} {step}"})
    return rows


def eval_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out bits per byte and perplexity, one row per (slice, model)."""
    rows = []
    models = metrics.get("eval", {}).get("models", {})
    for name in sorted({s for m in models.values() for s in m.get("slices", {})}):
        for model, entry in sorted(models.items()):
            score = entry.get("slices", {}).get(name)
            if score is not None:
                rows.append({"slice": name, "model": model,
                             "bits_per_byte": score.get("bits_per_byte"),
                             "perplexity": score.get("perplexity"), "label": f"{name} · {model}"})
    return rows


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers to compare runs by: documents kept per step, final losses, mean bits/byte."""
    def total(stage: str) -> dict[str, Any]:
        return metrics.get(stage, {}).get("accounting", {}).get("total", {})

    models = metrics.get("eval", {}).get("models", {})
    return {
        "docs": {step: total(stage).get(count, 0) for step, stage, count in FUNNEL_STEPS},
        "pretrain": {k: metrics.get("pretrain", {}).get(k)
                     for k in ("final_train_loss", "final_val_loss")},
        "lora": {k: metrics.get("lora", {}).get(k) for k in ("final_train_loss", "final_val_loss")},
        "eval": {model: {"mean_bits_per_byte": entry.get("mean_bits_per_byte")}
                 for model, entry in sorted(models.items())},
    }


def write_csv(fh: TextIO, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Rows as CSV with a header; floats keep 6 decimals, None is an empty cell."""
    def cell(value: Any) -> Any:
        if value is None:
            return ""
        return f"{value:.6f}" if isinstance(value, float) else value

    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(row[c]) for c in columns] for row in rows)


def read_curve(path: Path) -> list[dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(fh)]


def plot_curve(rows: list[dict[str, float]], out: Path, title: str) -> None:
    """Training loss (and validation loss where measured) against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train loss", lw=1)
    val = [r for r in rows if "val_loss" in r]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, metadata={"Software": None})  # no version stamp: stable bytes
    plt.close(fig)


def render_report(metrics: dict[str, Any], curve_png: str | None) -> str:
    pre, evaluation = metrics.get("pretrain", {}), metrics.get("eval", {})
    parts = [
        "# redrobe pipeline report",
        "## Data funnel per slice",
        "Documents per slice through ingest → clean → dedup (removals with their named "
        "reasons), and the tokens each slice contributes to training and validation.",
        _table(["slice", "ingested", "ingest removed", "quarantined", "clean in",
                "clean removed (by reason)", "duplicates", "kept", "train tokens",
                "val tokens"], funnel_rows(metrics)),
        "## What each rule removed (clean)",
        "Documents and characters each named rule removed, as a share of the slice's "
        "clean input (the first rule that fails a document names it).",
        _table(["slice", "rule", "documents", "% documents", "characters", "% characters"],
               rule_rows(metrics)),
        "## Removal per language (clean)",
        "Documents per identified language over all slices (`und`: none identified, e.g. "
        "code), what clean kept and removed, and the reasons that removed most of them.",
        _table(["language", "documents in", "kept", "removed", "quarantined", "% removed",
                "top removal reasons"], language_rows(metrics)),
        "## Tokenizer fertility per language",
        "Tokens per word (words as the language's rules count them) and per character on "
        "the tokenizer's validation documents; higher means the tokenizer splits the "
        "language into more pieces.",
        _table(["language", "documents", "words", "tokens", "tokens/word", "tokens/char"],
               fertility_rows(metrics)),
        "## Curriculum buckets (easy → hard)",
        _table(["bucket", "documents", "tokens", "difficulty range (bits/token)"],
               bucket_rows(metrics)),
        "## Pretraining",
        _table(["steps", "tokens seen", "final train loss", "final val loss", "tokens/s",
                "precision", "parameters"],
               [[pre.get("steps", "—"), pre.get("tokens_seen", "—"),
                 pre.get("final_train_loss", "—"), pre.get("final_val_loss", "—"),
                 pre.get("tokens_per_s", "—"), pre.get("precision", "—"),
                 pre.get("parameters", {}).get("total", "—")]]),
    ]
    if curve_png:
        parts.append(f"![training curve]({curve_png})")
    parts += [
        f"## Evaluation (held-out validation split; LoRA adapted on "
        f"`{evaluation.get('lora_slice', '?')}`)",
        _table(["slice", "base perplexity", "base bits/byte", "LoRA perplexity",
                "LoRA bits/byte"], eval_rows(metrics)),
        "Generation speed: " + ", ".join(
            f"{name} {m.get('generation_tokens_per_s', 0):.1f} tokens/s"
            for name, m in sorted(evaluation.get("models", {}).items())),
    ]
    return "\n\n".join(parts) + "\n"
