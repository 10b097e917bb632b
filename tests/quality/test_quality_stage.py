"""The quality stage validates ingest, clean and dedup outputs, writes Data Docs, gates."""

import json

import pytest

from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.stages import quality

SLICES = ["books", "c4"]
STAGES = {"ingest": "raw", "clean": "clean", "dedup": "dedup"}


def _params(tmp_path, extra=""):
    path = tmp_path / "params.yaml"
    path.write_text(f"shared:\n  slices: {SLICES}\nlora:\n  slice: books\n{extra}")
    return path


def _metrics(tmp_path, removed):
    for stage in ("clean", "dedup"):
        slices = {s: {"in": 10, "out": 10 - removed, "removed": removed, "quarantined": 0,
                      "removed_by_reason": {"r": removed} if removed else {}} for s in SLICES}
        (tmp_path / f"{stage}.json").write_text(json.dumps({"accounting": {"slices": slices}}))


def _signals(frac=0.5):
    # RedPajama-V2 form: a document-level signal is one span [start, end, value]
    return json.dumps({"rps_doc_word_count": [[0, 10, 3]], "rps_doc_frac_unique_words": [[0, 10, frac]],
                       "redrobe_lang_score": [[0, 10, 0.9]]})


def _write(root, docs, signals=False):
    for source in sorted({d.source for d in docs}):
        extra = ("quality_signals",) if signals else ()
        with ShardWriter(shard_path(root, source, 0), extra_columns=extra) as w:
            w.write_all(d for d in docs if d.source == source)


def _good(signals=False):
    extra = {"quality_signals": _signals()} if signals else {}
    return [Document(f"{s}/{i}", f"some text {i}", s, {}, dict(extra)) for s in SLICES for i in range(3)]


def _corpus(tmp_path, dedup=None, clean=None, raw=None):
    _write(tmp_path / "raw", raw or _good())
    _write(tmp_path / "clean", clean or _good(signals=True), signals=True)
    _write(tmp_path / "dedup", dedup or _good())


def _run(tmp_path, params):
    return quality.main([
        "--params", str(params), "--raw", str(tmp_path / "raw"), "--clean", str(tmp_path / "clean"),
        "--input", str(tmp_path / "dedup"),
        "--clean-metrics", str(tmp_path / "clean.json"), "--dedup-metrics", str(tmp_path / "dedup.json"),
        "--output", str(tmp_path / "out"), "--docs", str(tmp_path / "docs"),
        "--metrics", str(tmp_path / "quality.json")])


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")


def test_good_corpus_passes_with_suites_per_stage_and_data_docs(tmp_path):
    _corpus(tmp_path)
    _metrics(tmp_path, removed=1)
    assert _run(tmp_path, _params(tmp_path)) == 0
    gate = (tmp_path / "out" / "validation.json").read_bytes()
    summary = json.loads(gate)
    assert summary["success"] is True
    for stage in STAGES:
        assert {f"{stage}.documents", f"{stage}.slice_counts", f"{stage}.shards"} <= set(summary["suites"])
    assert "clean.signals" in summary["suites"] and "dedup.signals" not in summary["suites"]
    assert {"clean.removal_rates", "dedup.removal_rates"} <= set(summary["suites"])
    index = (tmp_path / "docs" / "index.html").read_text()
    for suite in summary["suites"]:
        assert suite in index
    metrics = json.loads((tmp_path / "quality.json").read_text())
    assert metrics["accounting"]["total"]["in"] == 6 == metrics["accounting"]["total"]["out"]
    assert _run(tmp_path, _params(tmp_path)) == 0
    assert (tmp_path / "out" / "validation.json").read_bytes() == gate  # byte-identical rerun


def _bad():
    return [Document("c4/0", "duplicate id", "c4", {}), Document("c4/9", "", "c4", {}),
            Document("c4/8", "x", "arxiv", {})]


def test_bad_ingest_output_fails_the_gate_naming_each_problem(tmp_path, capsys):
    _corpus(tmp_path, raw=_good() + _bad())
    _metrics(tmp_path, removed=1)
    assert _run(tmp_path, _params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "quality gate failed" in err
    for expected in (("ingest.documents: expect_column_values_to_be_unique(id) -> {'unexpected_count': 2, "
                      "'partial_unexpected_list': ['c4/0', 'c4/0']}"),
                     "ingest.documents: expect_column_values_to_be_between(chars)",
                     "ingest.documents: expect_column_values_to_be_in_set(source)"):
        assert expected in err
    assert "clean." not in err and "dedup." not in err
    assert not (tmp_path / "quality.json").exists()
    assert json.loads((tmp_path / "out" / "validation.json").read_text())["success"] is False
    assert (tmp_path / "docs" / "index.html").exists()  # the failing run is documented too


def test_bad_clean_signal_and_dedup_output_fail(tmp_path, capsys):
    clean = _good(signals=True)
    clean[0] = Document("books/0", "some text", "books", {}, {"quality_signals": _signals(frac=1.5)})
    _corpus(tmp_path, clean=clean, dedup=_good() + _bad()[:2])
    with ShardWriter(shard_path(tmp_path / "dedup", "c4", 1), extra_columns=("oops",)) as w:
        w.write(Document("c4/x", "text", "c4", {}))
    _metrics(tmp_path, removed=1)
    assert _run(tmp_path, _params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "clean.signals: expect_column_values_to_be_between(rps_doc_frac_unique_words)" in err
    assert "1.5" in err
    assert "dedup.documents: expect_column_values_to_be_unique(id)" in err
    assert "dedup.documents: expect_column_values_to_be_between(chars)" in err
    assert "dedup.shards: expect_column_values_to_be_in_set(unexpected)" in err and "oops" in err
    assert "ingest." not in err


def test_missing_slice_and_high_removal_rate_fail(tmp_path, capsys):
    _corpus(tmp_path, dedup=[d for d in _good() if d.source == "c4"])
    _metrics(tmp_path, removed=10)
    assert _run(tmp_path, _params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "dedup.documents: expect_column_distinct_values_to_contain_set" in err
    assert "dedup.slice_counts" in err
    assert "clean.removal_rates" in err and "dedup.removal_rates" in err


def test_removal_rate_bound_comes_from_params(tmp_path, capsys):
    _corpus(tmp_path)
    _metrics(tmp_path, removed=3)  # 30 % removed per slice
    params = _params(tmp_path, "quality:\n  max_removal_rate: {clean: 0.5, dedup: 0.2}\n")
    assert _run(tmp_path, params) == 1
    err = capsys.readouterr().err
    assert "dedup.removal_rates" in err and "clean.removal_rates" not in err


def test_missing_stage_output_is_an_input_error(tmp_path, capsys):
    _corpus(tmp_path)
    _metrics(tmp_path, removed=0)
    for path in (tmp_path / "raw").rglob("*.parquet"):
        path.unlink()
    assert _run(tmp_path, _params(tmp_path)) == 1
    assert "no ingest shards found" in capsys.readouterr().err
