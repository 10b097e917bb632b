"""The report renders the funnel, buckets, training and evaluation tables from metrics."""

from redrobe.reporting import bucket_rows, eval_rows, funnel_rows, render_report

METRICS = {
    "ingest": {"accounting": {"slices": {"c4": {"in": 10, "out": 9, "removed": 1, "quarantined": 0,
                                                "removed_by_reason": {"empty_text": 1}}}}},
    "clean": {"accounting": {"slices": {"c4": {"in": 9, "out": 7, "removed": 2, "quarantined": 0,
                                               "removed_by_reason": {"gopher_short_doc": 2}}}}},
    "dedup": {"accounting": {"slices": {"c4": {"in": 7, "out": 6, "removed": 1, "quarantined": 0,
                                               "removed_by_reason": {"exact_duplicate": 1}}}}},
    "bucket": {"slice_tokens": {"c4": {"train": 500, "val": 40}},
               "bucket_tokens": {"bucket-00": 300, "bucket-01": 240},
               "bucket_docs": {"bucket-00": 3, "bucket-01": 3}, "score_edges": [9.5]},
    "pretrain": {"steps": 10, "tokens_seen": 1000, "final_train_loss": 5.0,
                 "final_val_loss": 5.5, "tokens_per_s": 100.0, "precision": "fp32",
                 "parameters": {"total": 1234}},
    "eval": {"lora_slice": "c4", "models": {
        "base": {"slices": {"c4": {"perplexity": 100.0, "bits_per_byte": 2.0}},
                 "generation_tokens_per_s": 50.0},
        "lora": {"slices": {"c4": {"perplexity": 80.0, "bits_per_byte": 1.9}},
                 "generation_tokens_per_s": 49.0}}},
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
