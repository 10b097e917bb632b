"""The Great Expectations gate passes a good corpus and fails (exit 1) on a bad shard."""

import json

import pytest

from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.stages import quality

SLICES = ["books", "c4"]


def _params(tmp_path, extra=""):
    path = tmp_path / "params.yaml"
    path.write_text(f"shared:\n  slices: {SLICES}\nlora:\n  slice: books\n{extra}")
    return path


def _metrics(tmp_path, removed):
    for stage in ("clean", "dedup"):
        slices = {s: {"in": 10, "out": 10 - removed, "removed": removed, "quarantined": 0,
                      "removed_by_reason": {"r": removed} if removed else {}} for s in SLICES}
        (tmp_path / f"{stage}.json").write_text(json.dumps({"accounting": {"slices": slices}}))


def _corpus(root, docs):
    for source in SLICES:
        with ShardWriter(shard_path(root, source, 0)) as w:
            w.write_all(d for d in docs if d.source == source)


def _run(tmp_path, params):
    return quality.main([
        "--params", str(params), "--input", str(tmp_path / "dedup"),
        "--clean-metrics", str(tmp_path / "clean.json"), "--dedup-metrics", str(tmp_path / "dedup.json"),
        "--output", str(tmp_path / "out"), "--metrics", str(tmp_path / "quality.json")])


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")


def _good():
    return [Document(f"{s}/{i}", f"some text {i}", s, {}) for s in SLICES for i in range(3)]


def test_good_corpus_passes(tmp_path):
    _corpus(tmp_path / "dedup", _good())
    _metrics(tmp_path, removed=1)
    assert _run(tmp_path, _params(tmp_path)) == 0
    summary = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert summary["success"] is True
    metrics = json.loads((tmp_path / "quality.json").read_text())
    assert metrics["accounting"]["total"]["in"] == 6 == metrics["accounting"]["total"]["out"]


@pytest.mark.parametrize("bad, expected", [
    (Document("c4/0", "duplicate id", "c4", {}), "expect_column_values_to_be_unique"),
    (Document("c4/9", "", "c4", {}), "expect_column_values_to_be_between"),
    (Document("c4/8", "x", "arxiv", {}), "expect_column_values_to_be_in_set"),
])
def test_bad_shard_fails_the_gate(tmp_path, capsys, bad, expected):
    docs = _good() + [bad]
    _corpus(tmp_path / "dedup", [d for d in docs if d.source in SLICES])
    if bad.source not in SLICES:
        with ShardWriter(shard_path(tmp_path / "dedup", bad.source, 0)) as w:
            w.write(bad)
    _metrics(tmp_path, removed=1)
    assert _run(tmp_path, _params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "quality gate failed" in err
    assert expected in err
    assert not (tmp_path / "quality.json").exists()


def test_missing_slice_and_high_removal_rate_fail(tmp_path, capsys):
    _corpus(tmp_path / "dedup", [d for d in _good() if d.source == "c4"])
    _metrics(tmp_path, removed=10)
    assert _run(tmp_path, _params(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "expect_column_distinct_values_to_contain_set" in err
    assert "removal_rates" in err


def test_wrong_schema_fails(tmp_path, capsys):
    _corpus(tmp_path / "dedup", _good())
    with ShardWriter(shard_path(tmp_path / "dedup", "c4", 1), extra_columns=("oops",)) as w:
        w.write(Document("c4/x", "text", "c4", {}))
    _metrics(tmp_path, removed=0)
    assert _run(tmp_path, _params(tmp_path)) == 1
    assert "shards:" in capsys.readouterr().err
