"""The report stage on tmp dirs: report, plot CSVs for `dvc plots`, summary metrics, reruns.

    pytest tests/stages/test_report.py -q
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from redrobe.config import Params, as_dict
from redrobe.documents import write_json
from redrobe.stages import report

SLICES = ("books", "c4")


def _accounting(counts: dict[str, tuple[int, int]]) -> dict:
    slices = {name: {"in": i, "out": o, "removed": i - o, "quarantined": 0,
                     "removed_by_reason": {"some_reason": i - o} if i > o else {}}
              for name, (i, o) in counts.items()}
    total = {"in": sum(i for i, _ in counts.values()), "out": sum(o for _, o in counts.values())}
    return {"slices": slices, "total": total}


def write_metrics(directory: Path) -> None:
    funnel = {"ingest": {"books": (10, 9), "c4": (20, 18)}, "clean": {"books": (9, 8), "c4": (18, 12)},
              "dedup": {"books": (8, 8), "c4": (12, 11)}, "quality": {"books": (8, 8), "c4": (11, 11)},
              "tokenize": {"books": (8, 7), "c4": (11, 10)}, "bucket": {"books": (8, 8), "c4": (11, 10)}}
    for stage, counts in funnel.items():
        write_json(directory / f"{stage}.json", {"stage": stage, "accounting": _accounting(counts)})
    write_json(directory / "pretrain.json", {"steps": 2, "final_train_loss": 5.0, "final_val_loss": 5.5})
    write_json(directory / "lora.json", {"final_train_loss": 4.0, "final_val_loss": 4.25})
    models = {m: {"slices": {s: {"bits_per_byte": 2.0 - k / 10 - j / 100, "perplexity": 90.0 - k}
                             for j, s in enumerate(SLICES)},
                  "mean_bits_per_byte": 1.995 - k / 10, "generation_tokens_per_s": 10.0}
              for k, m in enumerate(("base", "lora"))}
    write_json(directory / "eval.json", {"models": models, "lora_slice": "books"})
    (directory / "pretrain_curve.csv").write_text(
        "step,loss,lr,tokens,tokens_per_s,val_loss\n1,6.0,0.001,64,10.0,\n2,5.0,0.001,128,10.0,5.5\n")


def run_report(tmp: Path, name: str) -> tuple[int, Path]:
    (tmp / "params.yaml").write_text(yaml.safe_dump(as_dict(Params())))
    out = tmp / name
    code = report.main(["--params", str(tmp / "params.yaml"), "--metrics-dir", str(tmp / "metrics"),
                        "--output", str(out / "reports"), "--funnel", str(out / "funnel.csv"),
                        "--eval-slices", str(out / "eval_slices.csv"),
                        "--metrics", str(out / "report.json")])
    return code, out


def test_report_writes_plot_tables_and_summary(tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    write_metrics(tmp_path / "metrics")
    code, out = run_report(tmp_path, "a")
    assert code == 0
    assert (out / "reports" / "report.md").read_text().startswith("# redrobe pipeline report")
    funnel = list(csv.DictReader((out / "funnel.csv").open(encoding="utf-8")))
    assert [(r["slice"], r["stage"], r["docs"]) for r in funnel if r["slice"] == "c4"] == [
        ("c4", "read", "20"), ("c4", "ingest", "18"), ("c4", "clean", "12"), ("c4", "dedup", "11"),
        ("c4", "bucket", "10")]
    evaluation = list(csv.DictReader((out / "eval_slices.csv").open(encoding="utf-8")))
    assert [(r["slice"], r["model"], r["bits_per_byte"]) for r in evaluation] == [
        ("books", "base", "2.000000"), ("books", "lora", "1.900000"),
        ("c4", "base", "1.990000"), ("c4", "lora", "1.890000")]
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["docs"] == {"read": 30, "ingest": 27, "clean": 20, "dedup": 19, "bucket": 18}
    assert summary["eval"]["lora"]["mean_bits_per_byte"] == pytest.approx(1.895)
    assert summary["pretrain"]["final_val_loss"] == 5.5
    assert summary["lora"]["final_val_loss"] == 4.25


def test_rerun_gives_identical_outputs_and_a_missing_file_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "metrics").mkdir()
    write_metrics(tmp_path / "metrics")
    (_, a), (_, b) = run_report(tmp_path, "a"), run_report(tmp_path, "b")
    for name in ("funnel.csv", "eval_slices.csv", "reports/report.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    (tmp_path / "metrics" / "eval.json").unlink()
    code, _ = run_report(tmp_path, "c")
    assert code == 1
    assert "eval.json" in capsys.readouterr().err
