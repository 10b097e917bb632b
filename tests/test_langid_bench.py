"""benchmarks/langid.py on a tiny subset of the check set, and its rendered sections.

    pytest tests/test_langid_bench.py -q

Reads the pinned multilingual archives from the repository's ``.cache/dists`` when a run
has put them there, else downloads them once into a temporary cache (PyPI). No timing is
asserted: only the shape and arithmetic of the results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_scripts import load_script

from redrobe.sources import multilingual

REPO = Path(__file__).resolve().parents[1]


bench = load_script("langid", "langid_bench")
render_docs = load_script("render_docs", "render_docs_for_langid")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    repo_cache = REPO / ".cache" / "dists"
    if all((repo_cache / pin.filename).exists() for pin in multilingual.PINS):
        return repo_cache
    return tmp_path_factory.mktemp("dists")


@pytest.fixture(scope="module")
def results(cache, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("langid") / "langid.json"
    argv = ["--backends", "py3langid", "fasttext", "--max-per-language", "1",
            "--cache-dir", str(cache), "--out", str(out), "--no-render"]
    assert bench.main(argv) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_results_cover_both_backends_on_one_item_per_language(results):
    labels = results["check_set"]["items_per_label"]
    assert len(labels) >= 12 and set(labels.values()) == {1}
    assert results["check_set"]["items"] == len(labels)
    assert set(results["backends"]) == {"py3langid", "fasttext"} and not results["skipped"]
    for entry in results["backends"].values():
        per = entry["per_label"]
        assert set(per) == set(labels)
        assert entry["accuracy"] == round(sum(p["correct"] for p in per.values()) / len(labels), 4)
        assert 0.5 <= entry["accuracy"] <= 1.0 and entry["model_languages"] >= 100
        assert entry["docs_per_s"] > 0
    groups = results["groups"]
    assert groups["all"]["labels"] == len(labels)
    assert set(groups["redpajama_1t"]["label_list"]) <= set(bench.REDPAJAMA_1T)


def test_missing_backend_is_skipped(monkeypatch):
    items = [multilingual.LabelledText("Der Ausschuss veröffentlicht seinen Bericht.", "de",
                                       "Latn", "x/1", 0)]
    monkeypatch.setattr(bench, "installed", lambda backend: backend != "cld3")
    measured, skipped = bench.run(items, ["py3langid", "cld3"])
    assert list(measured) == ["py3langid"] and "cld3-py not installed" in skipped["cld3"]
    assert measured["py3langid"]["per_label"]["de"] == {
        "items": 1, "correct": 1, "listed": True, "accuracy": 1.0}


def test_results_render_into_both_pages(results):
    page = render_docs.langid_page(results)
    summary = render_docs.langid(results)
    assert "py3langid" in summary and "fastText lid.176" in summary
    assert "### Per language" in page and "(recommended)" in page
    assert render_docs.FALLBACK_NOTE not in render_docs.section("langid", results)
