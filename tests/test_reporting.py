"""The report renders the funnel, buckets, training and evaluation tables from metrics."""

import csv
import io

from redrobe.reporting import (
    EVAL_COLUMNS,
    FUNNEL_COLUMNS,
    bucket_rows,
    eval_rows,
    eval_table,
    fertility_rows,
    funnel_rows,
    funnel_table,
    key_metrics,
    language_rows,
    render_report,
    rule_rows,
    write_csv,
)

METRICS = {
    "ingest": {"accounting": {"slices": {"c4": {"in": 10, "out": 9, "removed": 1, "quarantined": 0,
                                                "removed_by_reason": {"empty_text": 1}}},
                      "total": {"in": 10, "out": 9}}},
    "clean": {"accounting": {"slices": {"c4": {"in": 9, "out": 7, "removed": 2, "quarantined": 0,
                                               "removed_by_reason": {"gopher_short_doc": 2}}},
                     "total": {"in": 9, "out": 7}},
              "removal_by_rule": {"c4": {
                  "c4_curly_bracket": {"docs": 1, "chars": 50, "doc_fraction": 0.1, "char_fraction": 0.05},
                  "gopher_short_doc": {"docs": 2, "chars": 100, "doc_fraction": 0.2, "char_fraction": 0.1}}}},
    "dedup": {"accounting": {"slices": {"c4": {"in": 7, "out": 6, "removed": 1, "quarantined": 0,
                                               "removed_by_reason": {"exact_duplicate": 1}}},
                     "total": {"in": 7, "out": 6}}},
    "bucket": {"accounting": {"slices": {"c4": {"in": 6, "out": 5, "removed": 1, "quarantined": 0}},
                              "total": {"in": 6, "out": 5}},
               "slice_tokens": {"c4": {"train": 500, "val": 40}},
               "bucket_tokens": {"bucket-00": 300, "bucket-01": 240},
               "bucket_docs": {"bucket-00": 3, "bucket-01": 3}, "score_edges": [9.5]},
    "pretrain": {"steps": 10, "tokens_seen": 1000, "final_train_loss": 5.0,
                 "final_val_loss": 5.5, "tokens_per_s": 100.0, "precision": "fp32",
                 "parameters": {"total": 1234}},
    "lora": {"final_train_loss": 4.0, "final_val_loss": 4.5},
    "eval": {"lora_slice": "c4", "models": {
        "base": {"slices": {"c4": {"perplexity": 100.0, "bits_per_byte": 2.0}},
                 "mean_bits_per_byte": 2.0, "generation_tokens_per_s": 50.0},
        "lora": {"slices": {"c4": {"perplexity": 80.0, "bits_per_byte": 1.9}},
                 "mean_bits_per_byte": 1.9, "generation_tokens_per_s": 49.0}}},
}


def test_rows():
    assert funnel_rows(METRICS) == [["c4", 10, "empty_text: 1", 0, 9, "gopher_short_doc: 2", 1, 6, 500, 40]]
    assert bucket_rows(METRICS) == [["bucket-00", 3, 300, "min – 9.500"],
                                    ["bucket-01", 3, 240, "9.500 – max"]]
    assert eval_rows(METRICS) == [["c4", 100.0, 2.0, 80.0, 1.9]]


def test_render_has_every_section():
    md = render_report(METRICS, "curve.png")
    for heading in ("## Data funnel per slice", "## Curriculum buckets", "## Pretraining",
                    "## Evaluation", "![training curve](curve.png)"):
        assert heading in md
    assert "| c4 | 10 | empty_text: 1 |" in md
    assert "base 50.0 tokens/s, lora 49.0 tokens/s" in md


def test_funnel_table_has_every_step_per_slice_in_label_order():
    rows = funnel_table(METRICS)
    assert [(r["stage"], r["docs"]) for r in rows] == [
        ("read", 10), ("ingest", 9), ("clean", 7), ("dedup", 6), ("bucket", 5)]
    labels = [r["label"] for r in rows]
    assert labels == sorted(labels) and labels[0] == "c4 · 1 read"


def test_eval_table_one_row_per_slice_and_model():
    assert eval_table(METRICS) == [
        {"slice": "c4", "model": "base", "bits_per_byte": 2.0, "perplexity": 100.0,
         "label": "c4 · base"},
        {"slice": "c4", "model": "lora", "bits_per_byte": 1.9, "perplexity": 80.0,
         "label": "c4 · lora"}]


def test_key_metrics_for_experiment_tables():
    assert key_metrics(METRICS) == {
        "docs": {"read": 10, "ingest": 9, "clean": 7, "dedup": 6, "bucket": 5},
        "pretrain": {"final_train_loss": 5.0, "final_val_loss": 5.5},
        "lora": {"final_train_loss": 4.0, "final_val_loss": 4.5},
        "eval": {"base": {"mean_bits_per_byte": 2.0}, "lora": {"mean_bits_per_byte": 1.9}}}


def test_write_csv_round_trips_with_fixed_float_format():
    fh = io.StringIO()
    write_csv(fh, EVAL_COLUMNS, eval_table(METRICS) + [
        {"slice": "x", "model": "base", "bits_per_byte": None, "perplexity": 1 / 3, "label": "x"}])
    rows = list(csv.DictReader(io.StringIO(fh.getvalue())))
    assert list(rows[0]) == list(EVAL_COLUMNS)
    assert rows[1]["bits_per_byte"] == "1.900000" and rows[1]["perplexity"] == "80.000000"
    assert rows[2]["bits_per_byte"] == "" and rows[2]["perplexity"] == "0.333333"
    fh = io.StringIO()
    write_csv(fh, FUNNEL_COLUMNS, funnel_table(METRICS))
    assert fh.getvalue().splitlines()[:2] == ["slice,stage,docs,label", "c4,read,10,c4 · 1 read"]


def test_rule_table_lists_each_reason_largest_first():
    assert rule_rows(METRICS) == [["c4", "gopher_short_doc", 2, 20.0, 100, 10.0],
                                  ["c4", "c4_curly_bracket", 1, 10.0, 50, 5.0]]
    md = render_report(METRICS, None)
    assert "## What each rule removed (clean)" in md
    assert "| c4 | gopher_short_doc | 2 | 20 | 100 | 10 |" in md
    assert rule_rows({"clean": {}}) == []


def _row(docs_in, kept, removed, quarantined=0, **reasons):
    return {"docs_in": docs_in, "docs_kept": kept, "docs_removed": removed,
            "docs_quarantined": quarantined, "removed_fraction": removed / docs_in,
            "removed_by_reason": reasons}


LANGUAGE_METRICS = {**METRICS, "clean": {**METRICS["clean"], "removal_by_language": {
    "slices": {},   # the table reads the totals over slices
    "total": {"de": _row(4, 1, 3, gopher_short_doc=1, c4_too_few_sentences=1, fineweb_line_punct_ratio=1),
              "en": _row(10, 6, 3, 1, gopher_short_doc=2, gopher_too_few_stop_words=1),
              "zh": _row(4, 0, 4, gopher_short_doc=1, c4_too_few_sentences=1,
                         fineweb_line_punct_ratio=1, gopher_dup_line_frac=1)}}},
    "tokenize": {"fertility": {
        "en": {"docs": 2, "words": 100, "chars": 500, "tokens": 130, "tokens_per_word": 1.3,
               "tokens_per_char": 0.26},
        "zh": {"docs": 1, "words": 40, "chars": 40, "tokens": 60, "tokens_per_word": 1.5,
               "tokens_per_char": 1.5},
        "und": {"docs": 1, "words": 0, "chars": 0, "tokens": 0, "tokens_per_word": None,
                "tokens_per_char": None}}}}


def test_language_table_most_documents_first_with_top_reasons():
    rows = language_rows(LANGUAGE_METRICS)
    assert [r[0] for r in rows] == ["en", "de", "zh"]     # docs_in 10, then 4 and 4 by name
    assert rows[0][:6] == ["en", 10, 6, 3, 1, 30.0]
    assert rows[0][6] == "gopher_short_doc: 2<br>gopher_too_few_stop_words: 1"
    # three reasons at most, largest first (ties by name), the rest summed
    assert rows[2][6] == ("c4_too_few_sentences: 1<br>fineweb_line_punct_ratio: 1<br>"
                          "gopher_dup_line_frac: 1<br>other: 1")
    assert language_rows(METRICS) == []                    # metrics before removal_by_language
    md = render_report(LANGUAGE_METRICS, None)
    assert "## Removal per language (clean)" in md
    assert "| en | 10 | 6 | 3 | 1 | 30 | gopher_short_doc: 2<br>gopher_too_few_stop_words: 1 |" in md
    assert "| zh | 4 | 0 | 4 | 0 | 100 |" in md


def test_fertility_table_most_words_first():
    rows = fertility_rows(LANGUAGE_METRICS)
    assert rows == [["en", 2, 100, 130, 1.3, 0.26], ["zh", 1, 40, 60, 1.5, 1.5],
                    ["und", 1, 0, 0, "—", "—"]]
    md = render_report(LANGUAGE_METRICS, None)
    assert "## Tokenizer fertility per language" in md and "| zh | 1 | 40 | 60 | 1.5 | 1.5 |" in md
    assert fertility_rows(METRICS) == []


def test_the_languages_ingest_kept_nothing_of_share_one_funnel_row():
    def counts(docs_in: int, out: int, reason: str = "") -> dict:
        return {"in": docs_in, "out": out, "removed": docs_in - out, "quarantined": 0,
                "removed_by_reason": {reason: docs_in - out} if reason else {}}

    metrics = {"ingest": {"accounting": {"slices": {
        "wikipedia/en": counts(5, 4, "redirect"), "wikipedia/de": counts(1, 1),
        "wikipedia/fr": counts(2, 0, "language_not_kept"),
        "wikipedia/it": counts(1, 0, "language_not_kept"), "c4": counts(3, 3)}}},
        "clean": {"accounting": {"slices": {"wikipedia/en": counts(4, 4),
                                            "wikipedia/de": counts(1, 0, "short"),
                                            "c4": counts(3, 2, "short")}}}}
    rows = {row[0]: row for row in funnel_rows(metrics)}
    assert sorted(rows) == ["c4", "wikipedia/de", "wikipedia/en", "wikipedia/others"]
    assert rows["wikipedia/others"][1:3] == [3, "language_not_kept: 3"]
    assert rows["wikipedia/de"][4:6] == [1, "short: 1"]      # a kept language that clean emptied stays
    table = [(r["slice"], r["stage"], r["docs"]) for r in funnel_table(metrics)]
    assert ("wikipedia/others", "read", 3) in table and ("wikipedia/others", "ingest", 0) in table
