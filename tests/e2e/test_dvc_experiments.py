"""End to end: DVC experiments, plots and a local remote on the tiny profile.

In a copy of the session's tiny pipeline (tests/pipeline_repo.py), whose `dvc repro` is
the baseline, committed here; `dvc exp run -S
evaluate.gen_tokens=4` then reruns evaluate and report only, and `dvc exp show`
lists it with the changed param and the key metrics; `dvc plots show` renders the
four plots of dvc.yaml and `dvc plots diff` overlays the two runs; `dvc push` fills a
local directory remote from which `dvc pull` restores a deleted model. Stage
progress lines appear in the logs. The experiment runs with tracking off.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from pipeline_repo import STAGES, TINY, clone, repo_env

pytestmark = pytest.mark.e2e

EXPERIMENT, GEN_TOKENS = "gen4", 4
PLOT_TITLES = ("Pretraining loss", "LoRA adaptation loss", "Documents per slice after each step",
               "Held-out bits per byte per slice")


def _run(root: Path, *args: str) -> str:
    env = repo_env(root) | {"REDROBE_TRACKING": "off"}
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def _dvc(root: Path, *args: str) -> str:
    return _run(root, sys.executable, "-m", "dvc", *args)


def _git(root: Path, *args: str) -> str:
    return _run(root, "git", *args)


class Run(NamedTuple):
    root: Path
    branch: str          # the baseline's branch (git's default name varies)
    baseline: str        # `dvc repro` output
    experiment: str      # `dvc exp run` output


@pytest.fixture(scope="module")
def repo(tiny_pipeline, tmp_path_factory) -> Run:
    root = clone(tiny_pipeline.root, tmp_path_factory.mktemp("exp") / "repo")
    _git(root, "config", "user.name", "redrobe-test")
    _git(root, "config", "user.email", "test@redrobe.invalid")
    baseline = tiny_pipeline.log
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "baseline run")
    experiment = _dvc(root, "exp", "run", "--name", EXPERIMENT,
                      "-S", f"evaluate.gen_tokens={GEN_TOKENS}")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return Run(root, branch, baseline, experiment)


def _ran(log: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in log]


def test_baseline_runs_every_stage_with_progress_lines(repo):
    baseline = repo.baseline
    assert _ran(baseline) == STAGES
    steps, lora_steps = TINY["pretrain"]["steps"], TINY["lora"]["steps"]
    for line in ("ingest: done, 5/5 slices, ", "clean: done, ", "dedup write: done, ",
                 "quality dedup: done, ", "tokenize sample: done, ", "bucket: done, ",
                 f"pretrain: done, {steps}/{steps} steps, ",
                 f"lora: done, {lora_steps}/{lora_steps} steps, "):
        assert line in baseline, line


def test_experiment_reruns_only_what_the_param_touches(repo):
    assert _ran(repo.experiment) == ["evaluate", "report"]


def _rows(root: Path) -> list[dict]:
    """Every row of `dvc exp show --json`: baselines and their experiments."""
    rows = []
    for baseline in json.loads(_dvc(root, "exp", "show", "--json")):
        rows.append(baseline)
        for exp in baseline.get("experiments") or []:
            rows.extend(exp["revs"])
    return rows


def test_exp_show_lists_the_experiment_with_param_and_key_metrics(repo):
    root, branch = repo.root, repo.branch
    rows = {row.get("name") or row["rev"]: row["data"] for row in _rows(root)}
    assert EXPERIMENT in rows and branch in rows, list(rows)
    assert TINY["evaluate"]["gen_tokens"] != GEN_TOKENS
    for name, gen_tokens in ((EXPERIMENT, GEN_TOKENS), (branch, TINY["evaluate"]["gen_tokens"])):
        data = rows[name]
        assert data["params"]["params.yaml"]["data"]["evaluate"]["gen_tokens"] == gen_tokens
        summary = data["metrics"]["data/metrics/report.json"]["data"]["summary"]
        for model in ("base", "lora"):
            assert summary["eval"][model]["mean_bits_per_byte"] > 0
        assert summary["pretrain"]["final_val_loss"] > 0
        assert summary["lora"]["final_val_loss"] > 0
        assert summary["docs"]["read"] >= summary["docs"]["dedup"] > 0
    # the same data and models: only generation speed can differ between the two
    assert (rows[EXPERIMENT]["metrics"]["data/metrics/report.json"]["data"]["summary"]
            == rows[branch]["metrics"]["data/metrics/report.json"]["data"]["summary"])
    changed = _dvc(root, "exp", "show", "--only-changed", "--csv").splitlines()[0].split(",")
    assert "evaluate.gen_tokens" in changed
    assert "pretrain.steps" not in changed


def test_plots_show_renders_the_four_plots(repo):
    root = repo.root
    _dvc(root, "plots", "show", "-o", "plots-html")
    html = (root / "plots-html" / "index.html").read_text()
    for title in PLOT_TITLES:
        assert title in html, title
    plots = json.loads(_dvc(root, "plots", "show", "--json"))["data"]
    assert sorted(plots) == ["data_funnel", "eval_bits_per_byte", "lora_loss", "pretrain_loss"]
    rows = plots["data_funnel"][0]["content"]["data"]["values"]
    slices = {r["slice"] for r in rows}
    assert {"books", "c4", "common_crawl", "github", "wikipedia/en", "wikipedia/zh"} <= slices
    assert len(rows) == 5 * len(slices)
    fields = {r["field"] for r in plots["pretrain_loss"][0]["content"]["data"]["values"]}
    assert fields == {"loss", "val_loss"}
    diff = json.loads(_dvc(root, "plots", "diff", repo.branch, EXPERIMENT, "--json"))["data"]
    for name, versions in diff.items():
        revs = {r["rev"] for r in versions[0]["content"]["data"]["values"]}
        assert revs == {repo.branch, EXPERIMENT}, name


def test_push_to_a_local_remote_and_pull_back(repo, tmp_path):
    root = repo.root
    store = tmp_path / "dvc-store"
    _dvc(root, "remote", "add", "--local", "-d", "store", str(store))
    _dvc(root, "push")
    assert any((store / "files" / "md5").rglob("*")), "nothing pushed"
    assert "in sync" in _dvc(root, "status", "--cloud")
    weights = root / "data" / "models" / "base" / "model.safetensors"
    expected = weights.read_bytes()
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "data" / "models" / "base")
    _dvc(root, "pull")
    assert weights.read_bytes() == expected
    assert "up to date" in _dvc(root, "status").lower()
