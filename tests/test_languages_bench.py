"""benchmarks/languages.py on small synthetic metrics, and the tables render_docs makes of it.

    pytest tests/test_languages_bench.py -q

No pipeline runs and no archive is read: the metrics files are written here and the
scripts per language are given (the script's ``language_scripts`` replaced).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from bench_scripts import load_script

bench = load_script("languages", "languages_bench")
render_docs = load_script("render_docs", "render_docs_for_languages")

SCRIPTS = {"en": "Latn", "ru": "Cyrl", "fr": "Latn"}


def _counts(docs_in: int, out: int, **reasons: int) -> dict:
    return {"in": docs_in, "out": out, "removed": sum(reasons.values()), "quarantined": 0,
            "removed_by_reason": reasons}


def _score(bpb: float, tokens: int) -> dict:
    return {"bits_per_byte": bpb, "perplexity": 2 ** bpb, "tokens": tokens,
            "bytes": 2 * tokens, "nll": bpb * 2 * tokens * math.log(2)}


METRICS = {
    "ingest": {"accounting": {"slices": {
        "books": _counts(5, 5),
        "wikipedia/en": _counts(10, 9, language_score_below_min=1),
        "wikipedia/ru": _counts(2, 2),
        "wikipedia/fr": _counts(3, 0, language_not_kept=3),
        "wikipedia/und": _counts(4, 0, wiki_redirect=4)}}},
    "clean": {"accounting": {"slices": {
        "books": _counts(5, 4, gopher_short_doc=1),
        "wikipedia/en": _counts(9, 7, c4_too_few_sentences=2),
        "wikipedia/ru": _counts(2, 1, gopher_short_doc=1)}},
        "removal_by_language": {"total": {
            "en": {"docs_in": 14, "docs_kept": 11, "docs_removed": 3, "docs_quarantined": 0,
                   "removed_fraction": 3 / 14,
                   "removed_by_reason": {"c4_too_few_sentences": 2, "gopher_short_doc": 1}},
            "ru": {"docs_in": 2, "docs_kept": 1, "docs_removed": 1, "docs_quarantined": 0,
                   "removed_fraction": 0.5, "removed_by_reason": {"gopher_short_doc": 1}}}}},
    "dedup": {"accounting": {"slices": {
        "books": _counts(4, 4),
        "wikipedia/en": _counts(7, 6, exact_duplicate=1),
        "wikipedia/ru": _counts(1, 1)}}},
    "bucket": {"slice_tokens": {"books": {"train": 900, "val": 90},
                                "wikipedia/en": {"train": 500, "val": 50},
                                "wikipedia/ru": {"train": 0, "val": 30}}},
    "eval": {"lora_slice": "books", "models": {
        "base": {"mean_bits_per_byte": 3.0, "slices": {
            "books": _score(2.0, 90), "wikipedia/en": _score(3.0, 50), "wikipedia/ru": _score(9.0, 30)}},
        "lora": {"mean_bits_per_byte": 3.5, "slices": {
            "books": _score(1.5, 90), "wikipedia/en": _score(3.5, 50), "wikipedia/ru": _score(8.5, 30)}}}},
}


@pytest.fixture
def results(tmp_path: Path, monkeypatch) -> dict:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for stage, data in METRICS.items():
        (metrics / f"{stage}.json").write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(bench, "language_scripts", lambda cache_dir: SCRIPTS)
    out = tmp_path / "languages.json"
    assert bench.main(["--metrics", str(metrics), "--out", str(out), "--no-render"]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_funnel_per_partition_with_others_and_total(results):
    assert results["routed_slices"] == ["wikipedia"]
    assert results["command"].endswith("--no-render") and "commit" in results
    f = results["funnel"]["wikipedia"]
    assert [r["partition"] for r in f["partitions"]] == ["wikipedia/en", "wikipedia/ru", "wikipedia/others"]
    en, ru, others = f["partitions"]
    assert (en["read"], en["ingest_kept"], en["clean_kept"], en["dedup_kept"]) == (10, 9, 7, 6)
    assert en["dedup_removed_by_reason"] == {"exact_duplicate": 1}
    assert (others["read"], others["ingest_kept"], others["clean_kept"]) == (7, 0, 0)
    assert others["ingest_removed_by_reason"] == {"language_not_kept": 3, "wiki_redirect": 4}
    assert f["others"] == ["und", "fr"]
    total = f["total"]
    assert (total["read"], total["ingest_kept"], total["clean_kept"], total["dedup_kept"]) == (19, 11, 8, 7)
    assert total["clean_removed_by_reason"] == {"c4_too_few_sentences": 2, "gopher_short_doc": 1}


def test_removal_and_evaluation_rows(results):
    removal = results["removal_by_language"]
    assert [r["language"] for r in removal] == ["en", "ru"]
    assert removal[0]["top_reasons"] == [["c4_too_few_sentences", 2], ["gopher_short_doc", 1]]
    ev = results["evaluation"]
    rows = ev["rows"]["wikipedia"]
    assert [(r["partition"], r["script"], r["train_tokens"], r["val_tokens"]) for r in rows] == \
        [("wikipedia/en", "Latn", 500, 50), ("wikipedia/ru", "Cyrl", 0, 30)]
    assert rows[1]["models"]["lora"]["bits_per_byte"] == 8.5
    pooled = (3.0 * 50 + 9.0 * 30) / 80             # the partitions' bits weighted by their bytes
    assert ev["pooled_bits_per_byte"]["base"]["wikipedia"] == pytest.approx(pooled)
    assert ev["mean_bits_per_byte"] == {"base": 3.0, "lora": 3.5} and ev["scored_slices"] == 2
    assert results["scripts"] == {"en": "Latn", "ru": "Cyrl"}    # partitions of the funnel only


def test_rendered_tables(results):
    text = render_docs.languages_page(results)
    assert "| `wikipedia/en` | Latn | 10 | 9 | language_score_below_min 1 | 7 | " \
           "c4_too_few_sentences 2 | 6 | exact_duplicate 1 |" in text
    assert "| `wikipedia/others` |  | 7 | 0 | wiki_redirect 4, language_not_kept 3 | 0 | — | 0 | — |" in text
    assert "| **`wikipedia`** |  | 19 | 11 |" in text
    assert "| `wikipedia/en` | Latn | 500 | 50 | 3.00 | 3.50 |" in text
    assert "| `wikipedia/ru` | Cyrl | 0 | 30 | 9.00 | 8.50 |" in text
    assert "| `en` | 14 | 11 | 3 | 0 | 21.4 % | c4_too_few_sentences 2, gopher_short_doc 1 |" in text
    words = " ".join(text.split())
    assert "2 partitions in 2 scripts (Latn: en; Cyrl: ru)" in words
    assert "Training tokens in `en` 500; the other 1 are held out whole" in words
    assert "(base): `ru`." in words and "worse than the base model on 1 of 2 partitions" in words
    assert "the mean over the 2 slices: base 3.00, LoRA 3.50" in words
    assert render_docs.FALLBACK_NOTE not in render_docs.section("languages", results)


def test_both_blocks_of_the_languages_page(results, tmp_path: Path):
    (tmp_path / "languages.json").write_text(json.dumps(results), encoding="utf-8")
    page = tmp_path / "languages.md"
    page.write_text(f"a\n{render_docs.LANGUAGES_RUN_BEGIN}\nold\n{render_docs.BLOCK_END}\nb\n",
                    encoding="utf-8")
    text = render_docs.languages_text(tmp_path, page)
    assert text.startswith("a\n") and text.endswith(f"{render_docs.BLOCK_END}\nb\n")
    assert "old" not in text and "| `wikipedia/ru` | Cyrl |" in text
    page.write_text(text, encoding="utf-8")
    assert render_docs.languages_text(tmp_path, page) == text          # idempotent
