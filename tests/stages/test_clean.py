"""The clean stage end to end on tmp dirs: outputs, reasons, quarantine, accounting, reruns.

    pytest tests/stages/test_clean.py -q
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from text.test_languages import JA, SHORT, ZH
from text.test_rules import PROSE_LINES as PROSE  # tests/ is on sys.path (its conftest)

from redrobe.accounting import check_accounting
from redrobe.config import Params, as_dict
from redrobe.documents import Document, ShardWriter, read_documents, shard_path
from redrobe.expressions import QUALITY_SIGNALS
from redrobe.shardcache import MAGIC, ShardCache, pack_blobs, split_files
from redrobe.stages import clean
from redrobe.text import c4, gopher, rpv2
from redrobe.text.gopher import GopherQualityRules

JS_LINE = "Please enable JavaScript to view the comments."
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
REPEATED = "\n".join(["The same line of the old play, again and again."] * 6)

#: shard -> documents; c4 has two shards, books one, "misc" has no rule sets
RAW = {
    ("c4", 0): [Document("c4-keep", PROSE + "\n" + JS_LINE, "c4", {"url": "http://a"}),
                Document("c4-short", "Too short to keep.", "c4"),
                Document("c4-lorem", PROSE + "\n" + LOREM, "c4")],
    ("c4", 1): [Document("c4-keep2", PROSE.replace("river", "mountain"), "c4"),
                Document("c4-null", None, "c4"),   # type: ignore[arg-type]  # unreadable text
                Document("c4-explode", PROSE + "\nEXPLODE.", "c4")],
    ("books", 0): [Document("book-repeat", REPEATED, "books"),
                   Document("book-keep", PROSE, "books"),
                   Document("book-short", "A short verse, still a book.", "books")],
    ("misc", 0): [Document("misc-any", "x", "misc")],
}


def write_raw(root: Path) -> None:
    for (slice_name, index), docs in RAW.items():
        with ShardWriter(shard_path(root, slice_name, index), batch_size=2) as writer:
            writer.write_all(docs)


def write_params(path: Path, workers: int = 1, **clean_overrides) -> None:
    params = as_dict(Params())
    params["shared"].update(batch_docs=2, workers=workers)
    params["clean"].update(clean_overrides)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_clean(tmp: Path, name: str, workers: int = 1, cache: str = "", raw: str = "raw",
              **clean_overrides) -> tuple[int, dict, Path]:
    base = tmp / name
    write_params(tmp / f"params-{name}-{workers}.yaml", workers, **clean_overrides)
    argv = ["--params", str(tmp / f"params-{name}-{workers}.yaml"), "--input", str(tmp / raw),
            "--output", str(base / "clean"), "--removed", str(base / "removed"),
            "--quarantine", str(base / "quarantine"), "--metrics", str(base / "clean.json"),
            "--cache-dir", cache and str(tmp / cache)]
    code = clean.main(argv)
    metrics = json.loads((base / "clean.json").read_text()) if code == 0 else {}
    return code, metrics, base


def ids(path: Path) -> list[str]:
    return [d.id for d in read_documents(path)]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "clean.json"}


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_raw(tmp_path / "raw")
    return tmp_path


@pytest.fixture
def exploding_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Gopher quality rule set raise on one document (the quarantine path)."""
    original = GopherQualityRules.__call__

    def call(self, doc: Document):
        if "EXPLODE" in doc.text:
            raise RuntimeError("rule crashed on purpose")
        return original(self, doc)

    monkeypatch.setattr(GopherQualityRules, "__call__", call)


def test_clean_stage_outputs_reasons_and_accounting(tmp: Path, exploding_rule: None) -> None:
    code, metrics, out = run_clean(tmp, "run")
    assert code == 0
    assert check_accounting(metrics) == []
    acc = metrics["accounting"]["slices"]
    assert (acc["c4"]["in"], acc["c4"]["out"], acc["c4"]["removed"], acc["c4"]["quarantined"]) == (6, 2, 2, 2)
    assert acc["c4"]["removed_by_reason"] == {gopher.GOPHER_SHORT_DOC: 1, c4.C4_LOREM_IPSUM: 1}
    assert acc["books"]["removed_by_reason"] == {gopher.GOPHER_DUP_LINE_FRAC: 1}
    assert acc["misc"] == {**acc["misc"], "in": 1, "out": 1, "removed": 0}

    # one output shard per input shard, same names, in all three directories
    for directory in ("clean", "removed", "quarantine"):
        assert sorted(p.relative_to(out / directory).as_posix()
                      for p in (out / directory).rglob("*.parquet")) == [
            "books/part-00000.parquet", "c4/part-00000.parquet", "c4/part-00001.parquet",
            "misc/part-00000.parquet"]

    kept = list(read_documents(out / "clean/c4/part-00000.parquet"))
    assert [d.id for d in kept] == ["c4-keep"]
    assert kept[0].text == PROSE and kept[0].meta == {"url": "http://a"}     # C4 dropped the JS line
    # books: repetition only
    assert ids(out / "clean/books/part-00000.parquet") == ["book-keep", "book-short"]

    removed = pq.read_table(out / "removed/c4/part-00000.parquet").to_pylist()
    assert [(r["id"], r["reason"], r["rule_set"]) for r in removed] == [
        ("c4-short", gopher.GOPHER_SHORT_DOC, "gopher_quality"), ("c4-lorem", c4.C4_LOREM_IPSUM, "c4")]
    assert removed[1]["text"] == PROSE + "\n" + LOREM           # removed documents as read

    quarantined = pq.read_table(out / "quarantine/c4/part-00001.parquet").to_pylist()
    assert [(r["id"], r["error"].split(":")[0]) for r in quarantined] == [
        ("c4-null", "TypeError"), ("c4-explode", "RuntimeError")]
    assert pq.read_table(out / "quarantine/books/part-00000.parquet").num_rows == 0

    assert metrics["slices"]["c4"]["rule_sets"] == ["gopher_quality", "gopher_repetition", "c4"]
    assert metrics["slices"]["books"]["rule_sets"] == ["gopher_repetition"]
    assert metrics["slices_without_rules"] == ["misc"]
    assert metrics["slices"]["c4"]["chars_removed_by_reason"] == {
        gopher.GOPHER_SHORT_DOC: len("Too short to keep."), c4.C4_LOREM_IPSUM: len(PROSE + "\n" + LOREM)}
    assert metrics["rule_sets"]["c4"]["docs_edited"] == 1
    assert metrics["rule_sets"]["c4"]["chars_edited"] == len(JS_LINE) + 1
    assert metrics["rule_sets"]["gopher_quality"] == {"docs_checked": 4, "docs_removed": 1,
                                                       "chars_removed": len("Too short to keep."),
                                                       "docs_edited": 0, "chars_edited": 0}
    assert metrics["shards"] == 4


def test_rerun_is_byte_identical_and_workers_agree(tmp: Path) -> None:
    code1, metrics1, first = run_clean(tmp, "a")
    code2, metrics2, second = run_clean(tmp, "a")        # rerun over the previous outputs
    snapshot_second = tree_bytes(second)
    code3, metrics3, parallel = run_clean(tmp, "b", workers=2)
    assert code1 == code2 == code3 == 0
    assert snapshot_second and snapshot_second == tree_bytes(parallel)
    for m in (metrics1, metrics2, metrics3):
        m.pop("wall_seconds")
        m["params"] = None
    assert metrics1 == metrics2 == metrics3
    assert metrics1["removal_by_rule"] == metrics3["removal_by_rule"]
    assert metrics1["accounting"]["slices"]["c4"]["quarantined"] == 1      # only the null text
    assert not list(tmp.glob("a/.*tmp*")) and not list(tmp.glob("b/.*tmp*"))


def test_incremental_run_cleans_only_the_new_shard(tmp: Path) -> None:
    """A new raw shard is cleaned; the others come from the cache, byte-identical to scratch."""
    shutil.copytree(tmp / "raw", tmp / "grown")
    (tmp / "grown" / "c4" / "part-00001.parquet").unlink()
    _, first, _ = run_clean(tmp, "first", cache="cache", raw="grown")
    shutil.copy(tmp / "raw" / "c4" / "part-00001.parquet", tmp / "grown" / "c4")   # the new shard
    _, second, incremental = run_clean(tmp, "second", cache="cache", raw="grown")
    _, scratch_metrics, scratch = run_clean(tmp, "scratch", raw="grown")
    assert first["cache"] == {"shards_cleaned": 3, "shards_reused": 0}
    assert second["cache"] == {"shards_cleaned": 1, "shards_reused": 3}
    assert tree_bytes(incremental) == tree_bytes(scratch)
    for m in (second, scratch_metrics):
        m.pop("wall_seconds"), m.pop("cache")
    assert second == scratch_metrics
    _, changed, _ = run_clean(tmp, "changed", cache="cache", raw="grown", normalization="NFKC")
    assert changed["cache"]["shards_reused"] == 0                # params are part of the key


def test_signals_and_language_are_stored_for_kept_and_removed(tmp: Path) -> None:
    code, _, out = run_clean(tmp, "signals")
    assert code == 0
    kept = pq.read_table(out / "clean/c4/part-00000.parquet").to_pylist()
    removed = pq.read_table(out / "removed/c4/part-00000.parquet").to_pylist()
    for row in kept + removed:
        signals = rpv2.signals_from_json(row["quality_signals"])
        assert set(signals) == set(rpv2.SIGNAL_NAMES) == set(QUALITY_SIGNALS)
        assert row["language"] == "en"
    (keep,) = kept
    # computed on the normalized text the rules saw, before C4 dropped the JavaScript line
    assert rpv2.signals_from_json(keep["quality_signals"]) == rpv2.compute_signals(PROSE + "\n" + JS_LINE)
    short = next(r for r in removed if r["id"] == "c4-short")
    assert rpv2.doc_score(rpv2.signals_from_json(short["quality_signals"]), "rps_doc_word_count") == 4
    quarantine = pq.read_table(out / "quarantine/c4/part-00001.parquet")
    assert "quality_signals" not in quarantine.column_names


def test_store_signals_off_writes_no_signal_columns(tmp: Path) -> None:
    code, metrics, out = run_clean(tmp, "nosignals", store_signals=False)
    assert code == 0
    for directory in ("clean", "removed"):
        names = pq.read_schema(out / directory / "c4/part-00000.parquet").names
        assert "quality_signals" not in names and "language" not in names
    assert metrics["accounting"]["slices"]["c4"]["removed_by_reason"] == {
        gopher.GOPHER_SHORT_DOC: 1, c4.C4_LOREM_IPSUM: 1}


def test_presets_and_expressions_per_slice(tmp: Path) -> None:
    expressions = {**Params().clean.expressions, "tiny": "rps_doc_word_count < 5",
                   "unpunctuated": "mean(rps_lines_ending_with_terminal_punctution_mark) < 0.5"}
    rule_sets = {"c4": ["redpajama_v2_example", "fineweb"], "books": ["expr:unpunctuated", "gopher"],
                 "misc": ["expr:tiny"]}
    code, metrics, out = run_clean(tmp, "expr", rule_sets=rule_sets, expressions=expressions,
                                   store_signals=False)
    assert code == 0, "run failed"
    assert check_accounting(metrics) == []
    assert metrics["slices"]["c4"]["rule_sets"] == [
        "expr:rpv2_word_count", "expr:rpv2_mean_word_length", "expr:rpv2_symbol_word_ratio",
        "expr:rpv2_bullet_lines", "expr:rpv2_top_2gram", "fineweb"]
    acc = metrics["accounting"]["slices"]
    # c4-short has 4 words; c4-null is quarantined (no text); the rest pass the card's filter
    assert acc["c4"]["removed_by_reason"] == {"expr_rpv2_word_count": 1}
    assert acc["misc"]["removed_by_reason"] == {"expr_tiny": 1}
    # "A short verse, still a book." ends in punctuation; the 6 repeated lines too: gopher
    # repetition names book-repeat, gopher quality the short verse
    assert acc["books"]["removed_by_reason"] == {gopher.GOPHER_SHORT_DOC: 1, gopher.GOPHER_DUP_LINE_FRAC: 1}
    removed = pq.read_table(out / "removed/misc/part-00000.parquet").to_pylist()
    assert [(r["id"], r["reason"], r["rule_set"]) for r in removed] \
        == [("misc-any", "expr_tiny", "expr:tiny")]


def test_removal_by_rule_adds_up_to_the_ledger(tmp: Path) -> None:
    code, metrics, _ = run_clean(tmp, "byrule")
    assert code == 0
    by_rule, acc = metrics["removal_by_rule"], metrics["accounting"]["slices"]
    assert set(by_rule) == set(acc)
    for name, reasons in by_rule.items():
        assert {r: v["docs"] for r, v in reasons.items()} == acc[name]["removed_by_reason"]
        assert {r: v["chars"] for r, v in reasons.items()} == \
            metrics["slices"][name]["chars_removed_by_reason"]
        for v in reasons.values():
            assert v["doc_fraction"] == round(v["docs"] / acc[name]["in"], 8)
            assert v["char_fraction"] == round(v["chars"] / acc[name]["chars_in"], 8)
    assert by_rule["c4"][c4.C4_LOREM_IPSUM] == {
        "docs": 1, "chars": len(PROSE + "\n" + LOREM), "doc_fraction": round(1 / 6, 8),
        "char_fraction": round(len(PROSE + "\n" + LOREM) / acc["c4"]["chars_in"], 8)}
    assert by_rule["misc"] == {}


def test_removal_by_language_counts_each_language_and_adds_up(tmp: Path) -> None:
    with ShardWriter(shard_path(tmp / "multi", "c4", 0), batch_size=2) as writer:
        writer.write_all([Document("zh", ZH, "c4"), Document("ja", JA, "c4"),
                          Document("en", PROSE, "c4"), Document("en-short", SHORT, "c4"),
                          Document("zh-short", ZH[:30], "c4")])
    code, metrics, out = run_clean(tmp, "multi", raw="multi")
    assert code == 0
    by_language = metrics["removal_by_language"]
    assert by_language["slices"]["c4"] == by_language["total"]
    assert {lang: (row["docs_in"], row["docs_kept"], row["docs_removed"])
            for lang, row in by_language["total"].items()} == {"en": (2, 1, 1), "ja": (1, 1, 0),
                                                                "zh": (2, 1, 1)}
    assert by_language["total"]["zh"]["removed_by_reason"] == {gopher.GOPHER_SHORT_DOC: 1}
    assert ids(out / "clean/c4/part-00000.parquet") == ["zh", "ja", "en"]
    # with the rules as published every document without spaces is a short one
    code, english_only, _ = run_clean(tmp, "english", raw="multi", language_rules=False)
    assert english_only["accounting"]["slices"]["c4"]["removed_by_reason"] == {gopher.GOPHER_SHORT_DOC: 4}


def test_missing_input_is_one_clear_error(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp / "empty").mkdir()
    write_params(tmp / "p.yaml")
    code = clean.main(["--params", str(tmp / "p.yaml"), "--input", str(tmp / "empty"),
                       "--output", str(tmp / "o"), "--removed", str(tmp / "r"),
                       "--quarantine", str(tmp / "q"), "--metrics", str(tmp / "m.json")])
    assert code == 1
    assert "no shards found" in capsys.readouterr().err
    assert not (tmp / "o").exists() and not (tmp / "m.json").exists()


def test_corrupt_shard_names_the_file(tmp: Path, capsys: pytest.CaptureFixture) -> None:
    bad = shard_path(tmp / "raw", "c4", 2)
    bad.write_bytes(b"not a parquet file")
    code, _, out = run_clean(tmp, "bad")
    assert code == 1
    assert str(bad) in capsys.readouterr().err
    assert not (out / "clean").exists()


# ----------------------------------------------------------------------------- the cache, attacked

class RunsCode:
    """A pickle that runs a command when loaded: what a writer of the cache dir could plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickle ran"))


def _forge(entry: Path, payload: bytes) -> None:
    """Rewrite a cache entry around ``payload`` with a valid checksum."""
    ShardCache(entry.parent.parent, {}, "").store(entry.stem, payload)


def _contents(entry: Path) -> tuple[list[bytes], bytes]:
    """(the three files, the counts) an entry holds."""
    return split_files(entry.read_bytes()[len(MAGIC) + 32:], 3)


def _with_counts(entry: Path, change) -> None:
    blobs, tail = _contents(entry)
    counts = json.loads(tail)
    change(next(iter(counts["ledger"].values())))
    _forge(entry, pack_blobs(blobs, json.dumps(counts).encode()))


def _damage(kind: str, entry: Path, tmp: Path) -> None:
    raw = entry.read_bytes()
    if kind == "bad checksum":
        entry.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    elif kind == "truncated":
        entry.write_bytes(raw[:len(raw) // 2])
    elif kind == "malformed payload":
        _forge(entry, b'["not", "sizes"]\n' + raw[100:])
    elif kind == "wrong types":
        _with_counts(entry, lambda s: s.update(docs_out=str(s["docs_out"])))
    elif kind == "negative count":
        _with_counts(entry, lambda s: s.update(quarantined=-1, docs_in=s["docs_in"] - 1))
    elif kind == "rows disagree":
        _with_counts(entry, lambda s: s.update(docs_out=s["docs_out"] + 1, docs_in=s["docs_in"] + 1))
    elif kind == "symlink to a device":   # read whole, it would never end
        entry.unlink()
        entry.symlink_to("/dev/zero")
    elif kind == "pickle":
        blobs, _ = _contents(entry)
        _forge(entry, pack_blobs(blobs, pickle.dumps(RunsCode(tmp / "pickle-ran"))))


@pytest.mark.parametrize("kind", ["bad checksum", "truncated", "malformed payload", "wrong types",
                                  "negative count", "rows disagree", "symlink to a device",
                                  "pickle"])
def test_a_bad_cache_entry_is_a_miss_and_runs_nothing(tmp: Path, kind: str) -> None:
    _, _, scratch = run_clean(tmp, "scratch")
    code, first, _ = run_clean(tmp, "first", cache="cache")
    entries = sorted((tmp / "cache").rglob("*.bin"))
    assert code == 0 and len(entries) == 4 and first["cache"]["shards_cleaned"] == 4
    for entry in entries:   # the counts are JSON, not pickle
        assert json.loads(_contents(entry)[1])["ledger"]
    for entry in entries:
        _damage(kind, entry, tmp)
    code, damaged, out = run_clean(tmp, "damaged", cache="cache")
    assert code == 0 and damaged["cache"] == {"shards_cleaned": 4, "shards_reused": 0}
    assert tree_bytes(out) == tree_bytes(scratch)
    assert not (tmp / "pickle-ran").exists()
    code, again, out = run_clean(tmp, "again", cache="cache")    # the entries were rewritten
    assert again["cache"] == {"shards_cleaned": 0, "shards_reused": 4}
    assert tree_bytes(out) == tree_bytes(scratch)


def test_counts_round_trip_through_json(tmp: Path) -> None:
    ledger, stats = clean._clean_shard(clean.ShardTask(
        "c4", str(tmp / "raw/c4/part-00000.parquet"), str(tmp / "o/k.parquet"),
        str(tmp / "o/r.parquet"), str(tmp / "o/q.parquet"), Params().clean, 2))
    back_ledger, back_stats = clean.decode_counts(clean.encode_counts(ledger, stats))
    assert back_ledger.as_dict() == ledger.as_dict()
    assert back_stats.as_dict() == stats.as_dict()
    assert back_stats.removal_by_rule(ledger.as_dict()) == stats.removal_by_rule(ledger.as_dict())
    assert back_stats.removal_by_language(ledger.as_dict()) == stats.removal_by_language(ledger.as_dict())
