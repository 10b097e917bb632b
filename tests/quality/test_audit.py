"""Audit round-trip: stratified export, reviewer labels, Wilson interval and the gate."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest

from redrobe.cli import main as cli_main
from redrobe.config import QualityAudit
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.errors import InputError
from redrobe.quality import audit

SLICES = ["books", "c4"]
CLEAN_REASONS = ["gopher_min_words", "c4_javascript"]


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")


def _write(root, docs, extra=()):
    for source in SLICES:
        with ShardWriter(shard_path(root, source, 0), extra_columns=extra) as w:
            w.write_all(d for d in docs if d.source == source)


def _pipeline(tmp_path, kept=40, removed=6):
    """Clean keeps `kept` per slice and removes `removed` per reason; dedup removes 3 of them."""
    clean = [Document(f"{s}/k{i}", f"kept <b>text</b> {i} & more", s) for s in SLICES for i in range(kept)]
    gone = [Document(f"{s}/r{r}{i}", f"removed {r} {i}", s, {}, {"reason": r, "rule_set": "gopher"})
            for s in SLICES for r in CLEAN_REASONS for i in range(removed)]
    dups = [d.with_extra(reason="exact_duplicate", duplicate_of=f"{d.source}/k5") for d in clean[:3]]
    _write(tmp_path / "clean", clean)
    _write(tmp_path / "removed_clean", gone, ("reason", "rule_set"))
    _write(tmp_path / "dedup", clean[3:])
    _write(tmp_path / "removed_dedup", dups, ("reason", "duplicate_of"))


def _sources(tmp_path):
    return [audit.Source("clean", "kept", str(tmp_path / "clean")),
            audit.Source("clean", "removed", str(tmp_path / "removed_clean")),
            audit.Source("dedup", "kept", str(tmp_path / "dedup")),
            audit.Source("dedup", "removed", str(tmp_path / "removed_dedup"))]


def _params(tmp_path, sample_size=30, per_min=2, target=0.997):
    path = tmp_path / "params.yaml"
    path.write_text(f"shared:\n  slices: {SLICES}\nlora:\n  slice: books\nquality:\n  audit:\n"
                    f"    sample_size: {sample_size}\n    per_stratum_min: {per_min}\n"
                    f"    excerpt_chars: 12\n    target: {target}\n")
    return path


def _export_args(tmp_path, params, out="audit", seed=None):
    args = ["audit", "export", "--params", str(params), "--clean", str(tmp_path / "clean"),
            "--clean-removed", str(tmp_path / "removed_clean"), "--dedup", str(tmp_path / "dedup"),
            "--dedup-removed", str(tmp_path / "removed_dedup"), "--output", str(tmp_path / out)]
    return args + (["--seed", str(seed)] if seed is not None else [])


def _label(src, dst, wrong=0, value=("correct", "incorrect")):
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        row["label"] = value[1] if i < wrong else value[0]
    with open(dst, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


# ------------------------------------------------------------------ Wilson


def test_wilson_matches_hand_computed_values():
    # z = 1.959964, z^2 = 3.841459; 997/1000: centre = (0.997 + 0.0019207)/1.0038415 = 0.995098,
    # half = 1.959964/1.0038415 * sqrt(0.997*0.003/1000 + 3.841459/4e6) = 0.003881
    low, high = audit.wilson_interval(997, 1000)
    assert low == pytest.approx(0.991217, abs=1e-6)
    assert high == pytest.approx(0.998979, abs=1e-6)
    # all correct: low = n / (n + z^2) = 300 / 303.841459, high = 1
    assert audit.wilson_interval(300, 300) == (pytest.approx(0.987357, abs=1e-6), 1.0)
    assert audit.wilson_interval(0, 10)[0] == 0.0
    # the default sample size is the smallest that can pass 0.997 with no errors
    assert audit.wilson_interval(1277, 1277)[0] >= 0.997 > audit.wilson_interval(1276, 1276)[0]
    assert QualityAudit().sample_size >= 1277


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        audit.wilson_interval(5, 4)
    with pytest.raises(ValueError):
        audit.wilson_interval(0, 0)


# ------------------------------------------------------------------ export


def test_allocation_gives_every_stratum_its_minimum_then_proportional():
    sizes = {("clean", "c4", "kept", ""): 1000, ("clean", "c4", "removed", "r"): 3,
             ("dedup", "c4", "removed", "d"): 20}
    quota = audit.allocate(sizes, 100, 5)
    assert quota == {("clean", "c4", "kept", ""): 97, ("clean", "c4", "removed", "r"): 3,
                     ("dedup", "c4", "removed", "d"): 5}


def test_sample_covers_every_stratum_and_is_seeded(tmp_path):
    _pipeline(tmp_path)
    q = QualityAudit(sample_size=30, per_stratum_min=2, excerpt_chars=12)
    sample, strata = audit.export_sample(_sources(tmp_path), q, seed=7, batch_size=5)
    keys = {(s["stage"], s["slice"], s["decision"], s["reason"]) for s in strata}
    expected = ({("clean", sl, "kept", "") for sl in SLICES} | {("dedup", sl, "kept", "") for sl in SLICES}
                | {("clean", sl, "removed", r) for sl in SLICES for r in CLEAN_REASONS}
                | {("dedup", "books", "removed", "exact_duplicate")})
    assert keys == expected
    assert {s.stratum for s in sample} == expected  # every stratum drawn from
    assert all(s["sampled"] >= min(2, s["population"]) for s in strata)
    assert sum(s["population"] for s in strata) == 80 + 24 + 77 + 3
    again, _ = audit.export_sample(_sources(tmp_path), q, seed=7, batch_size=64)
    assert again == sample  # batch size / read order does not matter
    other, _ = audit.export_sample(_sources(tmp_path), q, seed=8, batch_size=5)
    assert {s.id for s in other} != {s.id for s in sample}
    dup = next(s for s in sample if s.stratum[3] == "exact_duplicate")
    assert dup.detail == "duplicate_of: books/k5" and len(dup.excerpt) <= 12
    assert dup.duplicate_of == "books/k5" and dup.duplicate_excerpt == "kept <b>text"  # its original


def test_export_writes_csv_html_and_is_byte_identical(tmp_path, capsys):
    _pipeline(tmp_path)
    params = _params(tmp_path)
    assert cli_main(_export_args(tmp_path, params)) == 0
    out = tmp_path / "audit"
    with open(out / "sample.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(audit.COLUMNS)
    assert all(r["label"] == "" for r in rows)
    assert {r["decision"] for r in rows} == {"kept", "removed"}
    page = (out / "sample.html").read_text()
    assert "kept <b>" not in page and "kept &lt;b&gt;text" in page  # escaped, cut at 12 chars
    assert "<script" not in page and "<style>" in page  # self-contained, no scripts
    assert all(r["id"] in page for r in rows)
    assert "kept original <code>books/k5</code>" in page
    assert {r["duplicate_excerpt"] for r in rows if r["reason"] == "exact_duplicate"} == {"kept <b>text"}
    strata = json.loads((out / "strata.json").read_text())
    assert strata["documents"] == len(rows) and strata["seed"] == 1234
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli_main(_export_args(tmp_path, params)) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ------------------------------------------------------------------ import and gate


def _exported(tmp_path, **kw):
    _pipeline(tmp_path)
    params = _params(tmp_path, **kw)
    assert cli_main(_export_args(tmp_path, params)) == 0
    return params, tmp_path / "audit" / "sample.csv"


def test_import_passes_when_the_lower_bound_reaches_the_target(tmp_path, capsys):
    params, sample = _exported(tmp_path, target=0.85)
    rows = _label(sample, tmp_path / "labels.csv", value=("1", "0"))
    args = ["audit", "import", str(tmp_path / "labels.csv"), "--sample", str(sample),
            "--params", str(params), "--output", str(tmp_path / "result.json")]
    assert cli_main(args) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    n = len(rows)
    assert result["n"] == n == result["correct"] and result["passed"] is True
    z2 = 1.959963984540054 ** 2
    assert result["wilson_low"] == pytest.approx(n / (n + z2))
    assert sum(s["n"] for s in result["per_stratum"]) == n
    first = (tmp_path / "result.json").read_bytes()
    assert cli_main(args) == 0
    assert (tmp_path / "result.json").read_bytes() == first  # deterministic result
    assert "label accuracy" in capsys.readouterr().out


def test_import_fails_the_gate_below_the_target(tmp_path, capsys):
    params, sample = _exported(tmp_path, target=0.997)
    _label(sample, tmp_path / "labels.csv", wrong=2)
    assert cli_main(["audit", "import", str(tmp_path / "labels.csv"), "--sample", str(sample),
                     "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert "audit gate failed" in err and "below target 0.997" in err
    result = json.loads((tmp_path / "result.json").read_text())  # beside the labels by default
    assert result["passed"] is False and len(result["incorrect"]) == 2
    assert result["accuracy"] == pytest.approx((result["n"] - 2) / result["n"])


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[1].update(label="maybe"), "row 2 (id"),
    (lambda rows: rows[0].update(label=""), "row 1 (id"),
    (lambda rows: rows[2].update(id="nope/1"), "row 3: id 'nope/1'"),
    (lambda rows: rows.append(dict(rows[0])), "already labelled in row 1"),
    (lambda rows: rows.pop(), "have no row"),
])
def test_bad_labels_name_the_file_and_row(tmp_path, capsys, edit, message):
    _, sample = _exported(tmp_path)
    rows = _label(sample, tmp_path / "labels.csv")
    edit(rows)
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(audit.COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(InputError, match="labels.csv") as info:
        audit.read_labels(tmp_path / "labels.csv", sample)
    assert message in str(info.value)
    assert cli_main(["audit", "import", str(tmp_path / "labels.csv"), "--sample", str(sample),
                     "--params", str(tmp_path / "params.yaml")]) == 1
    assert "labels.csv" in capsys.readouterr().err


def test_missing_label_column_is_an_input_error(tmp_path):
    _, sample = _exported(tmp_path)
    (tmp_path / "labels.csv").write_text("id,stage\nbooks/k1,clean\n")
    with pytest.raises(InputError, match="missing column"):
        audit.read_labels(tmp_path / "labels.csv", sample)


def test_round_trip_through_the_installed_command(tmp_path):
    _pipeline(tmp_path)
    params = _params(tmp_path, target=0.5)
    env = {**os.environ, "REDROBE_TRACKING": "off"}
    redrobe = os.path.join(os.path.dirname(sys.executable), "redrobe")
    done = subprocess.run([redrobe, *_export_args(tmp_path, params)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    sample = tmp_path / "audit" / "sample.csv"
    rows = _label(sample, sample, wrong=1)  # labelled in place: sample and labels are one file
    done = subprocess.run([redrobe, "audit", "import", str(sample), "--params", str(params)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "audit" / "result.json").read_text())
    assert result["correct"] == len(rows) - 1 and result["passed"] is True
    assert math.isclose(result["accuracy"], (len(rows) - 1) / len(rows))
    strict = tmp_path / "strict.yaml"
    strict.write_text(params.read_text().replace("target: 0.5", "target: 0.997"))
    done = subprocess.run([redrobe, "audit", "import", str(sample), "--params", str(strict)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "audit gate failed" in done.stderr
