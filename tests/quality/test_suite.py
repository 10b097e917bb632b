"""Summaries the suites run on: compact rows, RedPajama-V2 signal spans, removal rates."""

import json
import math

import pytest

from redrobe.config import Quality
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.quality.suite import (
    BASE_TYPES,
    removal_rates,
    signal_value,
    stage_suites,
    summarize_shards,
)

SIGNALS = ["rps_doc_word_count", "rps_doc_frac_unique_words"]


@pytest.mark.parametrize("raw, expected", [
    ([[0, 42, 7]], 7.0),                 # a document-level span list, as RedPajama-V2 stores it
    ([[0, 42, 0.25]], 0.25),
    (0.5, 0.5),                          # a plain number
    ([], None), (None, None), ("x", None), (True, None), ([[0, 1, None]], None),
])
def test_signal_value(raw, expected):
    assert signal_value(raw) == expected


def test_summary_rows_hold_no_text_and_expand_signals(tmp_path):
    long_text = "word " * 10_000
    docs = [Document(f"c4/{i}", long_text if i == 0 else "é" * i, "c4", {},
                     {"quality_signals": json.dumps({"rps_doc_word_count": [[0, 5, i]],
                                                     "rps_doc_frac_unique_words": [[0, 5, 0.5]]})
                      if i != 2 else None})
            for i in range(4)]
    with ShardWriter(shard_path(tmp_path, "c4", 0), extra_columns=("quality_signals",)) as w:
        w.write_all(docs)
    frame, shards = summarize_shards([shard_path(tmp_path, "c4", 0)], 2, SIGNALS)
    assert list(frame.columns) == ["id", "source", "chars", *SIGNALS]
    assert frame["chars"].tolist() == [len(long_text), 1, 2, 3]  # code points, not bytes
    assert frame["rps_doc_word_count"].tolist()[:2] == [0.0, 1.0]
    assert math.isnan(frame["rps_doc_word_count"][2])  # no signals: NaN, skipped by range checks
    assert frame.memory_usage(deep=True).sum() < 2_000  # the 50 kB text is not held
    assert shards.iloc[0].to_dict() == {"shard": str(shard_path(tmp_path, "c4", 0)), "rows": 4,
                                        "missing": "", "unexpected": "", "base_types": BASE_TYPES}


def test_without_signal_column_no_signal_suite(tmp_path):
    with ShardWriter(shard_path(tmp_path, "c4", 0)) as w:
        w.write(Document("c4/0", "text", "c4"))
    frame, shards = summarize_shards([shard_path(tmp_path, "c4", 0)], 8, SIGNALS)
    assert list(frame.columns) == ["id", "source", "chars"]
    names = [name for name, _, _ in stage_suites("dedup", frame, shards, None, Quality(), ["c4"])]
    assert names == ["dedup.documents", "dedup.slice_counts", "dedup.shards"]


def test_removal_rates_from_stage_metrics():
    metrics = {"accounting": {"slices": {"c4": {"in": 10, "removed": 4}, "books": {"in": 0, "removed": 0}}}}
    rates = removal_rates(metrics, "dedup", Quality(max_removal_rate={"dedup": 0.3}))
    assert rates.to_dict(orient="records") == [
        {"slice": "books", "removed": 0, "in": 0, "rate": 0.0, "max_rate": 0.3},
        {"slice": "c4", "removed": 4, "in": 10, "rate": 0.4, "max_rate": 0.3}]
    assert removal_rates(metrics, "ingest", Quality())["max_rate"].tolist() == [1.0, 1.0]


def test_signal_ranges_are_validated_in_params():
    assert Quality(signal_ranges={"x": [1.0, 0.0]}).validate() == [
        "signal_ranges.x: must be [low, high] with low <= high"]
