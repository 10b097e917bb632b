"""Human audit of the pipeline's keep/remove decisions, gated on a Wilson interval.

A stratified random sample of kept and removed documents goes to a reviewer, who marks
each decision correct or incorrect; the label accuracy's Wilson 95 % score interval
must have its lower bound at or above ``quality.audit.target`` (0.997: the accuracy the
project requires of its decisions). Strata are stage × slice × decision, with removed
documents split by their ``reason`` (clean: each rule; dedup: exact_duplicate,
near_duplicate, ...); a language partition ``<slice>/<language>`` is a slice of its own.

Sampling is bottom-k by a keyed hash: a document's priority is
``blake2b(seed, stage, id)``, and each stratum keeps its k lowest priorities. That is
a uniform sample without replacement, independent of read order and shard layout,
and it holds only the sample in memory. Each stratum gets ``per_stratum_min``
documents (all of them if fewer), the rest of ``sample_size`` in proportion to its
size, so rare removal reasons are reviewed too.

    sources = [Source("clean", Status.KEPT, "data/interim/clean"),
               Source("clean", Status.REMOVED, "data/interim/removed/clean"), ...]
    sample, strata = export_sample(sources, params.quality.audit, seed=1234, batch_size=256)
    write_sample(out_dir, sample, strata, seed=1234)   # sample.csv, sample.html, strata.json
    ...  # the reviewer fills the `label` column: correct / incorrect (or 1 / 0)
    result = gate_result(read_labels("labels.csv", "sample.csv"), target=0.997)
    result["passed"], result["wilson_low"]
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import html
import io
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pyarrow.parquet as pq

from redrobe.config import QualityAudit
from redrobe.documents import Status, atomic_file, list_shards, partition_of, write_json
from redrobe.errors import InputError

SAMPLE_CSV, SAMPLE_HTML, STRATA_JSON, RESULT_JSON = ("sample.csv", "sample.html",
                                                      "strata.json", "result.json")
COLUMNS = ("id", "slice", "stage", "decision", "reason", "detail", "chars", "excerpt",
           "duplicate_excerpt", "label")
#: columns of removed shards that tell the reviewer why (rule set, kept duplicate)
DETAIL_COLUMNS = ("rule_set", "duplicate_of")
CORRECT = frozenset({"correct", "1", "yes", "true"})
INCORRECT = frozenset({"incorrect", "0", "no", "false"})

Stratum = tuple[str, str, str, str]  # (stage, slice or partition, decision, reason)


@dataclass(frozen=True)
class Source:
    """Shards (``<root>/<slice>/part-*.parquet``) holding one stage's kept or removed docs."""
    stage: str
    decision: Status  # KEPT or REMOVED (removed shards carry a ``reason`` column)
    root: str


@dataclass(frozen=True, order=True)
class Sampled:
    """One document chosen for review."""
    stratum: Stratum
    id: str
    chars: int
    excerpt: str
    detail: str
    duplicate_of: str = ""       # dedup: the kept document this one duplicates ...
    duplicate_excerpt: str = ""  # ... and the start of its text, for side-by-side review


# ------------------------------------------------------------------ interval


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927, JASA 22:209).

    centre = (p + z²/2n) / (1 + z²/n),  half = z / (1 + z²/n) · √(p(1-p)/n + z²/4n²)
    with p = successes/n and z the two-sided normal quantile (1.96 at 95 %). Unlike
    the normal (Wald) interval it stays inside [0, 1] and is not degenerate at p = 1.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = successes / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at p = 0 or 1 the bound is exactly 0 or 1; rounding would leave 1 - 2e-16
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    return low, 1.0 if successes == n else min(1.0, centre + half)


# ------------------------------------------------------------------ sampling


def _priority(seed: int, stage: str, doc_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}\0{stage}\0{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _reasons(path: Path, rows: int) -> Iterator[str]:
    if rows == 0:
        return
    pf = pq.ParquetFile(path)
    if "reason" not in pf.schema_arrow.names:
        raise InputError(f"{path}: removed shard has no `reason` column")
    for batch in pf.iter_batches(columns=["reason"]):
        for reason in batch.column(0).to_pylist():
            yield reason or ""


def count_strata(sources: Iterable[Source]) -> dict[Stratum, int]:
    """Documents per stratum: kept counts from Parquet footers, removed by reason."""
    counts: Counter[Stratum] = Counter()
    for src in sources:
        for path in list_shards(src.root):
            rows = pq.ParquetFile(path).metadata.num_rows
            if src.decision == Status.KEPT:
                counts[(src.stage, partition_of(path, src.root), Status.KEPT, "")] += rows
            else:
                for reason in _reasons(path, rows):
                    counts[(src.stage, partition_of(path, src.root), Status.REMOVED, reason)] += 1
    return {k: v for k, v in sorted(counts.items()) if v}


def allocate(sizes: dict[Stratum, int], sample_size: int, per_stratum_min: int) -> dict[Stratum, int]:
    """Documents to draw per stratum: the minimum for each, the rest by size (capped)."""
    total = sum(sizes.values())
    return {k: min(n, max(per_stratum_min, sample_size * n // total)) for k, n in sizes.items()}


def _draw(sources: Iterable[Source], quota: dict[Stratum, int], q: QualityAudit, seed: int,
          batch_size: int) -> list[Sampled]:
    heaps: dict[Stratum, list[tuple[int, str, Any]]] = {k: [] for k in quota}
    for src in sources:
        for path in list_shards(src.root):
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
            wanted = ["id", "text"] + [c for c in ("reason", *DETAIL_COLUMNS) if c in names]
            for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
                cols = {n: batch.column(n) for n in batch.schema.names}
                ids = cols["id"].to_pylist()
                reasons = cols["reason"].to_pylist() if src.decision == Status.REMOVED else [""] * len(ids)
                for i, doc_id in enumerate(ids):
                    key = (src.stage, partition_of(path, src.root), src.decision, reasons[i] or "")
                    heap = heaps.get(key)
                    if heap is None or quota[key] == 0:
                        continue
                    # max-heap of the k lowest priorities: the root is the one to evict
                    entry = (-_priority(seed, src.stage, doc_id), doc_id)
                    if len(heap) < quota[key]:
                        heapq.heappush(heap, _with_doc(entry, cols, i, key, q))
                    elif entry > heap[0][:2]:
                        heapq.heapreplace(heap, _with_doc(entry, cols, i, key, q))
    return sorted((s for heap in heaps.values() for _, _, s in heap),
                  key=lambda s: (s.stratum, s.id))


def _with_doc(entry: tuple[int, str], cols: dict[str, Any], i: int, key: Stratum,
              q: QualityAudit) -> tuple[int, str, Sampled]:
    """Materialize the text excerpt only for documents that enter the sample."""
    text = cols["text"][i].as_py() or ""
    detail = "; ".join(f"{c}: {cols[c][i].as_py()}" for c in DETAIL_COLUMNS
                       if c in cols and cols[c][i].as_py())
    dup = cols["duplicate_of"][i].as_py() if "duplicate_of" in cols else None
    return entry[0], entry[1], Sampled(key, entry[1], len(text), text[:q.excerpt_chars], detail,
                                       dup or "")


def _attach_duplicates(sample: list[Sampled], sources: Sequence[Source], q: QualityAudit,
                       batch_size: int) -> list[Sampled]:
    """Add the kept original's excerpt to each sampled duplicate (one pass over kept ids)."""
    wanted = {(s.stratum[0], s.duplicate_of) for s in sample if s.duplicate_of}
    found: dict[tuple[str, str], str] = {}
    for src in sources:
        if src.decision != Status.KEPT or not any(stage == src.stage for stage, _ in wanted):
            continue
        for path in list_shards(src.root):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size,
                                                           columns=["id", "text"]):
                for i, doc_id in enumerate(batch.column(0).to_pylist()):
                    if (src.stage, doc_id) in wanted:
                        found[(src.stage, doc_id)] = (batch.column(1)[i].as_py() or "")[:q.excerpt_chars]
    return [replace(s, duplicate_excerpt=found.get((s.stratum[0], s.duplicate_of), ""))
            if s.duplicate_of else s for s in sample]


def export_sample(sources: Sequence[Source], q: QualityAudit, seed: int,
                  batch_size: int) -> tuple[list[Sampled], list[dict[str, Any]]]:
    """The stratified sample (sorted) and one row per stratum (population, sampled)."""
    sizes = count_strata(sources)
    if not sizes:
        raise InputError("no documents to audit under " + ", ".join(s.root for s in sources))
    quota = allocate(sizes, q.sample_size, q.per_stratum_min)
    sample = _attach_duplicates(_draw(sources, quota, q, seed, batch_size), sources, q, batch_size)
    drawn = Counter(s.stratum for s in sample)
    strata = [{"stage": k[0], "slice": k[1], "decision": k[2], "reason": k[3],
               "population": n, "sampled": drawn[k]} for k, n in sizes.items()]
    return sample, strata


# ------------------------------------------------------------------ files


def _csv_rows(sample: Sequence[Sampled]) -> Iterator[list[Any]]:
    for s in sample:
        stage, slice_name, decision, reason = s.stratum
        yield [s.id, slice_name, stage, decision, reason, s.detail, s.chars, s.excerpt,
               s.duplicate_excerpt, ""]


def write_sample(out_dir: Path, sample: Sequence[Sampled], strata: list[dict[str, Any]],
                 seed: int) -> None:
    """sample.csv (label column empty), sample.html (read-only view), strata.json."""
    with atomic_file(Path(out_dir) / SAMPLE_CSV) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(_csv_rows(sample))
    with atomic_file(Path(out_dir) / SAMPLE_HTML) as fh:
        fh.write(render_html(sample, strata, seed))
    write_json(Path(out_dir) / STRATA_JSON, {"seed": seed, "documents": len(sample),
                                            "strata": strata})


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;
text-align:left}article{border:1px solid #ccc;border-radius:.4rem;margin:1rem 0;padding:.5rem 1rem}
.removed{border-left:.4rem solid #c33}.kept{border-left:.4rem solid #3a3}
pre{white-space:pre-wrap;word-wrap:break-word;background:#f6f6f6;padding:.5rem;max-height:30rem;
overflow:auto}code{font-size:.9em}"""


def _original(s: Sampled) -> str:
    if not s.duplicate_excerpt:
        return ""
    return (f"<p><small>kept original <code>{html.escape(s.duplicate_of)}</code>:</small></p>"
            f"<pre>{html.escape(s.duplicate_excerpt)}</pre>")


def render_html(sample: Sequence[Sampled], strata: list[dict[str, Any]], seed: int) -> str:
    """A self-contained page (inline CSS, no scripts); every text is HTML-escaped."""
    e = html.escape
    out = io.StringIO()
    out.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              f"<title>redrobe audit sample</title><style>{_CSS}</style></head><body>\n"
              f"<h1>redrobe audit sample</h1>\n<p>{len(sample)} documents, seed {seed}. "
              "For each document decide whether the pipeline's decision (kept, or removed "
              "for the reason shown) is right, and write <code>correct</code> or "
              "<code>incorrect</code> (or 1 / 0) in the <code>label</code> column of "
              f"<code>{SAMPLE_CSV}</code>; then run <code>redrobe audit import</code>.</p>\n"
              "<table><tr><th>stage</th><th>slice</th><th>decision</th><th>reason</th>"
              "<th>population</th><th>sampled</th></tr>\n")
    for s in strata:
        out.write("<tr>" + "".join(f"<td>{e(str(s[k]))}</td>" for k in
                                   ("stage", "slice", "decision", "reason", "population",
                                    "sampled")) + "</tr>\n")
    out.write("</table>\n")
    for n, d in enumerate(sample, 1):
        stage, slice_name, decision, reason = d.stratum
        why = f" — {e(reason)}" if reason else ""
        detail = f"<br><small>{e(d.detail)}</small>" if d.detail else ""
        cut = f" (first {len(d.excerpt):,} of {d.chars:,} characters)" if d.chars > len(d.excerpt) else ""
        out.write(f"<article class=\"{e(decision)}\"><h3>{n}. <code>{e(d.id)}</code></h3>"
                  f"<p>{e(stage)} · {e(slice_name)} · <b>{e(decision)}</b>{why}{cut}{detail}</p>"
                  f"<pre>{e(d.excerpt)}</pre>{_original(d)}</article>\n")
    out.write("</body></html>\n")
    return out.getvalue()


# ------------------------------------------------------------------ labels and gate


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet BOMs
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)} "
                                 f"(have: {', '.join(reader.fieldnames or [])})")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from exc


def _parse_label(raw: str | None, path: Path, row: int, doc_id: str) -> bool:
    value = (raw or "").strip().lower()
    if value in CORRECT:
        return True
    if value in INCORRECT:
        return False
    what = "is empty" if not value else f"{raw!r} is not a label"
    raise InputError(f"{path} row {row} (id {doc_id!r}): label {what}; "
                     "use correct/incorrect (or 1/0)")


def read_labels(labels: str | Path, sample: str | Path) -> list[tuple[Stratum, str, bool]]:
    """(stratum, id, correct) for every sampled document, checked against the sample.

    Rows are numbered from 1 after the header. Unknown or repeated (stage, id) pairs,
    bad or empty labels and sampled documents left out each raise InputError.
    """
    labels, sample = Path(labels), Path(sample)
    strata = {(r["stage"], r["id"]): (r["stage"], r["slice"], r["decision"], r["reason"])
              for r in _read_csv(sample, ("id", "slice", "stage", "decision", "reason"))}
    seen: dict[tuple[str, str], int] = {}
    out = []
    for row, r in enumerate(_read_csv(labels, ("id", "stage", "label")), 1):
        key = (r["stage"], r["id"])
        if key not in strata:
            raise InputError(f"{labels} row {row}: id {r['id']!r} (stage {r['stage']!r}) "
                             f"is not in the exported sample {sample}")
        if key in seen:
            raise InputError(f"{labels} row {row}: id {r['id']!r} (stage {r['stage']!r}) "
                             f"already labelled in row {seen[key]}")
        seen[key] = row
        out.append((strata[key], r["id"], _parse_label(r["label"], labels, row, r["id"])))
    left = [f"{s}:{i}" for s, i in strata if (s, i) not in seen]
    if left:
        raise InputError(f"{labels}: {len(left)} sampled document(s) have no row, "
                         f"e.g. {', '.join(sorted(left)[:3])}")
    if not out:
        raise InputError(f"{labels}: no labelled rows")
    return out


def gate_result(labelled: Sequence[tuple[Stratum, str, bool]], target: float,
                confidence: float = 0.95) -> dict[str, Any]:
    """Accuracy, its Wilson interval, pass/fail and a per-stratum breakdown (deterministic)."""
    n, correct = len(labelled), sum(ok for _, _, ok in labelled)
    low, high = wilson_interval(correct, n, confidence)
    groups: dict[Stratum, list[bool]] = {}
    for stratum, _, ok in labelled:
        groups.setdefault(stratum, []).append(ok)
    per_stratum = [{"stage": k[0], "slice": k[1], "decision": k[2], "reason": k[3],
                    "n": len(v), "correct": sum(v), "accuracy": sum(v) / len(v)}
                   for k, v in sorted(groups.items())]
    return {"n": n, "correct": correct, "accuracy": correct / n, "confidence": confidence,
            "wilson_low": low, "wilson_high": high, "target": target, "passed": low >= target,
            "incorrect": sorted(f"{s[0]}:{i}" for s, i, ok in labelled if not ok),
            "per_stratum": per_stratum}
