"""Great Expectations suites that gate the deduplicated corpus.

The suites run on compact per-document and per-shard summaries (id, slice, length;
shard columns) rather than on the texts, so memory grows with the number of
documents, never with their size. Three suites:

- ``documents``: ids unique and non-null, text length within [min_chars, max_chars]
  (so no empty text), every configured slice present, at least
  ``min_docs_per_slice`` documents in each;
- ``shards``: every shard has exactly the document schema (id, text, source, meta);
- ``removal_rates``: per stage and slice, the share of documents the stage removed
  stays within ``quality.max_removal_rate[stage]``.

    summary = run_suites(docs, shards, rates, params.quality, params.shared.slices)
    summary["success"]  # False -> the stage exits non-zero and the pipeline stops
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow.parquet as pq

from redrobe.config import Quality

SCHEMA = "id,meta,source,text"


def summarize_shards(shards: Iterable[Path], batch_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-document (id, source, chars) and per-shard (path, columns) summaries."""
    doc_parts: list[pd.DataFrame] = []
    shard_rows = []
    for path in shards:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        shard_rows.append({"shard": str(path), "columns": ",".join(sorted(names)),
                           "rows": pf.metadata.num_rows})
        wanted = [c for c in ("id", "source", "text") if c in names]
        for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
            frame = batch.to_pandas()
            doc_parts.append(pd.DataFrame({
                "id": frame.get("id"),
                "source": frame.get("source"),
                "chars": frame["text"].str.len() if "text" in frame else 0,
            }))
    docs = pd.concat(doc_parts, ignore_index=True) if doc_parts else \
        pd.DataFrame({"id": pd.Series(dtype=str), "source": pd.Series(dtype=str),
                      "chars": pd.Series(dtype="int64")})
    return docs, pd.DataFrame(shard_rows, columns=["shard", "columns", "rows"])


def removal_rates(stage_metrics: dict[str, dict[str, Any]], q: Quality) -> pd.DataFrame:
    """Rows (stage, slice, rate, max_rate) from the accounting of stage metrics files.

    A stage without a configured bound gets max_rate 1.0 (any rate passes).
    """
    rows = []
    for stage, metrics in sorted(stage_metrics.items()):
        bound = q.max_removal_rate.get(stage, 1.0)
        for name, counts in sorted(metrics["accounting"]["slices"].items()):
            rate = counts["removed"] / counts["in"] if counts["in"] else 0.0
            rows.append({"stage": stage, "slice": name, "rate": rate, "max_rate": bound})
    return pd.DataFrame(rows, columns=["stage", "slice", "rate", "max_rate"])


def _document_expectations(gx: Any, q: Quality, slices: list[str]) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectTableColumnsToMatchSet(column_set=["id", "source", "chars"]),
        e.ExpectColumnValuesToNotBeNull(column="id"),
        e.ExpectColumnValuesToBeUnique(column="id"),
        e.ExpectColumnValuesToBeBetween(column="chars", min_value=max(q.min_chars, 1),
                                        max_value=q.max_chars),
        e.ExpectColumnValuesToBeInSet(column="source", value_set=list(slices)),
        e.ExpectColumnDistinctValuesToContainSet(column="source", value_set=list(slices)),
    ]


def _shard_expectations(gx: Any) -> list[Any]:
    e = gx.expectations
    return [e.ExpectColumnValuesToBeInSet(column="columns", value_set=[SCHEMA])]


def _rate_expectations(gx: Any) -> list[Any]:
    e = gx.expectations
    return [e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="max_rate", column_B="rate",
                                                     or_equal=True)]


def run_suites(docs: pd.DataFrame, shards: pd.DataFrame, rates: pd.DataFrame,
               q: Quality, slices: list[str]) -> dict[str, Any]:
    """Validate the three frames; return a deterministic summary with ``success``."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # clean plain logs
    source = context.data_sources.add_pandas("redrobe")
    per_slice = docs.groupby("source").size().reindex(slices, fill_value=0)
    slice_counts = pd.DataFrame({"slice": per_slice.index, "docs": per_slice.values})
    plan = {
        "documents": (docs, _document_expectations(gx, q, slices)),
        "slice_counts": (slice_counts, [gx.expectations.ExpectColumnValuesToBeBetween(
            column="docs", min_value=q.min_docs_per_slice)]),
        "shards": (shards, _shard_expectations(gx)),
        "removal_rates": (rates, _rate_expectations(gx)),
    }
    suites = {}
    for name, (frame, expectations) in plan.items():
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        suites[name] = _summarize(definition.run(batch_parameters={"dataframe": frame}))
    return {"success": all(s["success"] for s in suites.values()), "suites": suites}


def _summarize(result: Any) -> dict[str, Any]:
    """Keep what a reader needs, drop run ids and timestamps (outputs stay byte-stable)."""
    raw = result.to_json_dict()
    checks = []
    for r in raw["results"]:
        config = r["expectation_config"]
        kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        found = {k: r["result"][k] for k in ("observed_value", "unexpected_count",
                                             "partial_unexpected_list") if k in r["result"]}
        checks.append({"expectation": config["type"], "kwargs": kwargs,
                       "success": bool(r["success"]), "result": found})
    return {"success": bool(raw["success"]), "checks": checks}


def failures(summary: dict[str, Any]) -> list[str]:
    """One line per failed expectation, for the error message."""
    lines = []
    for suite, s in summary["suites"].items():
        for c in s["checks"]:
            if not c["success"]:
                column = c["kwargs"].get("column", "")
                lines.append(f"{suite}: {c['expectation']}({column}) -> {c['result']}")
    return lines
