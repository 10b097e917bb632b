"""Great Expectations suites over the outputs of the data stages, and their Data Docs.

The suites run on compact summaries, never on the texts: one row per document (id,
slice, length in characters and a few numeric quality signals) and one row per shard
(its schema), so memory grows with the number of documents, not with their bytes.
Each stage output (``ingest`` → data/raw, ``clean`` → data/interim/clean, ``dedup``
→ data/interim/dedup) gets its own suites, named ``<stage>.<suite>``:

- ``documents``: ids non-null and unique, text length within [min_chars, max_chars]
  (so no empty text), every document in a configured slice and every slice present;
- ``slice_counts``: at least ``min_docs_per_slice`` documents in each slice;
- ``shards``: every shard has the document columns (id, text, source, meta) as
  strings and no columns beyond ``quality.extra_columns`` (``quality_signals``,
  ``language``: the columns clean adds);
- ``signals`` (when the shards carry a ``quality_signals`` JSON column, as the clean
  stage writes it in RedPajama-V2's span-list form): each signal named in
  ``quality.signal_ranges`` lies within its [low, high] (fractions within [0, 1]);
- ``removal_rates`` (clean, dedup): per slice (a routed slice's languages added up), the
  share of documents the stage removed (from its metrics JSON) is at most
  ``quality.max_removal_rate[stage]``.

    validator = Validator(docs_dir)            # docs_dir=None: no Data Docs
    docs, shards = summarize_shards(list_shards("data/raw"), 256, signal_names)
    result = validator.validate_all(stage_suites("ingest", docs, shards, None, q, slices))
    validator.build_docs()                     # docs_dir/index.html
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redrobe.config import Quality
from redrobe.documents import BASE_COLUMNS, base_slice

SIGNALS_COLUMN = "quality_signals"
BASE_TYPES = ",".join(f"{c}:string" for c in sorted(BASE_COLUMNS))
SITE_NAME = "redrobe"
#: (suite, frame, expectations) planned for one stage
Plan = list[tuple[str, pd.DataFrame, list[Any]]]
#: (expectation type, column) of one check in a suite
CheckKey = tuple[str, str]
#: corpus counts of one column-map check: (rows, rows not missing, rows unexpected)
Totals = tuple[int, int, int]


def signal_value(raw: Any) -> float | None:
    """A document-level signal as a number.

    RedPajama-V2 stores every signal as a list of spans ``[[start, end, value], ...]``;
    a document-level signal has one span covering the text. Plain numbers pass through.
    """
    if isinstance(raw, list):
        raw = raw[0][2] if raw and isinstance(raw[0], list) and len(raw[0]) == 3 else None
    if raw is None or isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)


def _shard_row(path: Path, names: list[str], types: dict[str, str], rows: int,
               allowed: Sequence[str]) -> dict[str, Any]:
    missing = [c for c in BASE_COLUMNS if c not in names]
    unexpected = [c for c in names if c not in BASE_COLUMNS and c not in allowed]
    base_types = ",".join(f"{c}:{types[c]}" for c in sorted(BASE_COLUMNS) if c in types)
    return {"shard": str(path), "rows": rows, "missing": ",".join(missing),
            "unexpected": ",".join(sorted(unexpected)), "base_types": base_types}


def _signal_columns(raw_json: list[str | None], signals: Sequence[str]) -> dict[str, list]:
    values: dict[str, list] = {s: [] for s in signals}
    for text in raw_json:
        parsed = json.loads(text) if text else {}
        for s in signals:
            values[s].append(signal_value(parsed.get(s)))
    return values


def shard_schema(path: Path | str, extra_columns: Sequence[str]) -> tuple[pq.ParquetFile, dict[str, Any]]:
    """The open shard and its row of the ``shards`` frame (schema, rows)."""
    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    types = {f.name: str(f.type) for f in schema}
    return pf, _shard_row(Path(path), schema.names, types, pf.metadata.num_rows, extra_columns)


def document_batches(pf: pq.ParquetFile, batch_size: int,
                     signals: Sequence[str]) -> Iterator[pd.DataFrame]:
    """Per-document rows (id, source, chars, *signals) of one shard, ``batch_size`` at a time.

    Signal columns come only when the shard has a ``quality_signals`` column (and
    ``signals`` names some); values are floats, NaN where a document has none.
    """
    names = pf.schema_arrow.names
    wanted = [c for c in ("id", "source", "text", SIGNALS_COLUMN) if c in names]
    for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
        cols = dict(zip(batch.schema.names, batch.columns))
        part = {
            "id": cols["id"].to_pylist() if "id" in cols else [None] * batch.num_rows,
            "source": cols["source"].to_pylist() if "source" in cols else [None] * batch.num_rows,
            # utf8_length counts code points in Arrow memory: no Python strings made
            "chars": (pc.utf8_length(cols["text"]).fill_null(0).to_pylist()
                      if "text" in cols else [0] * batch.num_rows),
        }
        if SIGNALS_COLUMN in cols and signals:
            part.update(_signal_columns(cols[SIGNALS_COLUMN].to_pylist(), signals))
        frame = pd.DataFrame(part)
        for s in signals if SIGNALS_COLUMN in cols else ():
            frame[s] = pd.to_numeric(frame[s], errors="coerce").astype("float64")
        yield frame


def summarize_shards(shards: Iterable[Path], batch_size: int, signals: Sequence[str] = (),
                     extra_columns: Sequence[str] = (SIGNALS_COLUMN,)
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-document (id, source, chars, *signals) and per-shard (schema) summaries.

    The one-process summary of the whole corpus: the oracle the partitioned checks
    (:mod:`redrobe.quality.partitioned`) are tested against.
    ``extra_columns``: columns a shard may have beside the document columns.

    Signal columns are present only when some shard has a ``quality_signals`` column;
    a document without a signal gets NaN (GE range checks skip missing values).
    """
    doc_parts: list[pd.DataFrame] = []
    shard_rows = []
    has_signals = False
    for path in shards:
        pf, row = shard_schema(path, extra_columns)
        shard_rows.append(row)
        has_signals |= SIGNALS_COLUMN in pf.schema_arrow.names and bool(signals)
        doc_parts.extend(document_batches(pf, batch_size, signals))
    docs = pd.concat(doc_parts, ignore_index=True) if doc_parts else pd.DataFrame(
        {"id": pd.Series(dtype=object), "source": pd.Series(dtype=object),
         "chars": pd.Series(dtype="int64")})
    if has_signals:
        for s in signals:
            docs[s] = pd.to_numeric(docs[s] if s in docs else pd.Series(dtype=float), errors="coerce")
    else:
        docs = docs[["id", "source", "chars"]]
    return docs, shards_frame(shard_rows)


def shards_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``shards`` suite's frame: one schema row per shard."""
    return pd.DataFrame(rows, columns=["shard", "rows", "missing", "unexpected", "base_types"])


def removal_rates(metrics: dict[str, Any], stage: str, q: Quality) -> pd.DataFrame:
    """Rows (slice, removed, in, rate, max_rate) from one stage's metrics accounting.

    A slice routed by language is one row, its language partitions added up: the gate
    is on a slice's rules, and a language of one or two documents that a rule removes
    whole says little about them (each language's share is in the stage's accounting and
    clean's ``removal_by_language``). A stage without a configured bound gets max_rate
    1.0 (any rate passes).
    """
    bound = q.max_removal_rate.get(stage, 1.0)
    totals: dict[str, list[int]] = {}
    for name, counts in sorted(metrics["accounting"]["slices"].items()):
        total = totals.setdefault(base_slice(name), [0, 0])
        total[0] += counts["removed"]
        total[1] += counts["in"]
    rows = []
    for name, (removed, docs_in) in sorted(totals.items()):
        rate = removed / docs_in if docs_in else 0.0
        rows.append({"slice": name, "removed": removed, "in": docs_in, "rate": rate,
                     "max_rate": bound})
    return pd.DataFrame(rows, columns=["slice", "removed", "in", "rate", "max_rate"])


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def stage_suites(stage: str, docs: pd.DataFrame, shards: pd.DataFrame,
                 rates: pd.DataFrame | None, q: Quality, slices: Sequence[str],
                 per_slice: Mapping[Any, int] | None = None) -> Plan:
    """The suites of one stage output, each with the frame it validates.

    ``per_slice``: documents per source value, when ``docs`` is not every document
    (a witness frame, :mod:`redrobe.quality.partitioned`); counted from ``docs`` if None.
    """
    import great_expectations as gx

    e = gx.expectations
    sizes = (docs.groupby("source").size() if per_slice is None
             else pd.Series(per_slice, dtype="int64")).reindex(list(slices), fill_value=0)
    counts = pd.DataFrame({"slice": sizes.index, "docs": sizes.values.astype("int64")})
    plan: Plan = [
        (f"{stage}.documents", docs, [
            e.ExpectColumnValuesToNotBeNull(column="id"),
            e.ExpectColumnValuesToBeUnique(column="id"),
            e.ExpectColumnValuesToBeBetween(column="chars", min_value=max(q.min_chars, 1),
                                            max_value=q.max_chars),
            e.ExpectColumnValuesToBeInSet(column="source", value_set=list(slices)),
            e.ExpectColumnDistinctValuesToContainSet(column="source", value_set=list(slices)),
        ]),
        (f"{stage}.slice_counts", counts, [
            e.ExpectColumnValuesToBeBetween(column="docs", min_value=q.min_docs_per_slice)]),
        (f"{stage}.shards", shards, [
            e.ExpectColumnValuesToBeInSet(column="missing", value_set=[""]),
            e.ExpectColumnValuesToBeInSet(column="unexpected", value_set=[""]),
            e.ExpectColumnValuesToBeInSet(column="base_types", value_set=[BASE_TYPES])]),
    ]
    signal_cols = [s for s in q.signal_ranges if s in docs.columns]
    if signal_cols:
        plan.append((f"{stage}.signals", docs, [
            e.ExpectColumnValuesToBeBetween(column=s, min_value=_finite(q.signal_ranges[s][0]),
                                            max_value=_finite(q.signal_ranges[s][1]))
            for s in signal_cols]))
    if rates is not None:
        plan.append((f"{stage}.removal_rates", rates, [
            e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="max_rate", column_B="rate",
                                                     or_equal=True)]))
    return plan


class Validator:
    """One ephemeral GE context: runs suites through checkpoints, builds Data Docs.

    ``docs_dir``: where the Data Docs site goes (``index.html`` at its root); None
    keeps results in memory only.
    """

    def __init__(self, docs_dir: Path | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self.context.add_data_docs_site(site_name=SITE_NAME, site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(Path(docs_dir).resolve())}})
        self.source = self.context.data_sources.add_pandas("redrobe")

    def validate(self, name: str, frame: pd.DataFrame, expectations: list[Any],
                 totals: Mapping[CheckKey, Totals] | None = None) -> dict[str, Any]:
        """Run one suite on ``frame`` through a checkpoint; return its compact summary.

        ``totals``: the corpus counts of the checks when ``frame`` is a witness; they
        replace GE's counts of the frame in the stored result (Data Docs) and summary.
        """
        gx = self._gx
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = self.source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(name=name, validation_definitions=[definition]))
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        ((key, run_result),) = result.run_results.items()
        if totals:
            for r in run_result.results:
                config = r.expectation_config
                found = totals.get((config.type, config.kwargs.get("column")))
                if found is not None:
                    set_totals(r.result, found)
            self.context.validation_results_store.set(key, run_result)
        return _summarize(run_result)

    def validate_all(self, plan: Plan, totals: Mapping[str, Mapping[CheckKey, Totals]] | None = None
                     ) -> dict[str, dict[str, Any]]:
        """Every suite of ``plan``; ``totals`` per suite name as for :meth:`validate`."""
        totals = totals or {}
        return {name: self.validate(name, frame, exps, totals.get(name))
                for name, frame, exps in plan}

    def build_docs(self) -> Path:
        """Render every validated suite and result into the Data Docs site; its index."""
        if self.docs_dir is None:
            raise ValueError("Validator was created without a docs_dir")
        self.context.build_data_docs(site_names=[SITE_NAME])
        return Path(self.docs_dir) / "index.html"


def set_totals(result: dict[str, Any], totals: Totals) -> None:
    """Set a column-map result's counts and percentages as GE computes them
    (``_format_map_output``) for a frame of ``element`` rows, ``nonnull`` not missing."""
    element, nonnull, unexpected = totals
    total = unexpected / element * 100 if element else None
    skip_missing = "missing_count" not in result
    nonmissing = total if skip_missing else (unexpected / nonnull * 100 if element and nonnull else None)
    result.update(element_count=element, unexpected_count=unexpected, unexpected_percent=nonmissing)
    if not skip_missing:
        result.update(missing_count=element - nonnull,
                      missing_percent=(element - nonnull) / element * 100 if element else None,
                      unexpected_percent_total=total, unexpected_percent_nonmissing=nonmissing)


def _summarize(result: Any) -> dict[str, Any]:
    """Keep what a reader needs, drop run ids and timestamps (outputs stay byte-stable)."""
    raw = result.to_json_dict()
    checks = []
    for r in raw["results"]:
        config = r["expectation_config"]
        kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        found = {k: r["result"][k] for k in ("observed_value", "unexpected_count",
                                             "partial_unexpected_list") if k in r["result"]}
        if r.get("exception_info", {}).get("raised_exception"):
            found["exception"] = r["exception_info"]["exception_message"]
        checks.append({"expectation": config["type"], "kwargs": kwargs,
                       "success": bool(r["success"]), "result": found})
    return {"success": bool(raw["success"]), "checks": checks}


def failures(summary: dict[str, Any]) -> list[str]:
    """One line per failed expectation, for the error message."""
    lines = []
    for suite, s in summary["suites"].items():
        for c in s["checks"]:
            if not c["success"]:
                column = c["kwargs"].get("column", c["kwargs"].get("column_B", ""))
                lines.append(f"{suite}: {c['expectation']}({column}) -> {c['result']}")
    return lines
