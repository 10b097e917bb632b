"""Unit tests of the flows' shared parts: the run lock, lock messages, summary tables,
the adapt flow's option rewriting and checks, and the prefect.yaml deployments.

No Prefect server is needed (tests/flows/test_deployments.py runs the real one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.adapt import DEFAULT_BASE, check_base, check_output, replacements, slug
from flows.common import LOCK_FILE, SKIPPED, LockHeld, RunLock, dvc_locked_message
from flows.refresh import refresh_stages
from tasks.dvc import dvc_lock_holder, replace_options, stage_command, stage_option
from tasks.summary import eval_rows, funnel_rows, summary_markdown

REPO = Path(__file__).resolve().parents[2]
OWNER = {"pid": 4242, "host": "box", "flow": "redrobe-refresh",
         "flow_run_name": "gentle-otter", "flow_run_id": "0b6e-run", "since": "2026-01-01T00:00:00Z"}


def test_second_acquirer_gets_a_message_naming_the_lock_and_holder(tmp_path):
    path = tmp_path / LOCK_FILE
    with RunLock(path, OWNER), pytest.raises(LockHeld) as err, RunLock(path, {"pid": 1}):
        pass
    message = str(err.value)
    assert message.startswith(f"{SKIPPED}: another run holds the lock {path} (")
    for value in ("pid 4242", "gentle-otter", "0b6e-run", "redrobe-refresh"):
        assert value in message
    assert err.value.holder == OWNER


def test_lock_is_free_again_after_release(tmp_path):
    path = tmp_path / "run.lock"
    with RunLock(path, OWNER):
        pass
    assert path.read_text() == ""  # a free lock names no holder
    with RunLock(path, {"pid": 2}):
        assert json.loads(path.read_text()) == {"pid": 2}


def test_a_killed_holder_releases_the_lock(tmp_path):
    path = tmp_path / "run.lock"
    code = ("import sys, time; from pathlib import Path; from flows.common import RunLock; "
            "lock = RunLock(Path(sys.argv[1]), {'pid': 'child'}).__enter__(); "
            "print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match="pid child"):
            RunLock(path, OWNER).__enter__()
    finally:
        os.kill(child.pid, signal.SIGKILL)  # no release: the kernel drops the flock
        child.wait()
    with RunLock(path, OWNER):
        pass


def test_dvc_lock_message_names_the_lock_file_and_pid(tmp_path):
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    (tmp_path / ".dvc" / "tmp" / "lock").write_text(" 31337\n")  # what zc.lockfile writes
    assert dvc_lock_holder(tmp_path) == "31337"
    assert dvc_lock_holder(tmp_path / "elsewhere") == "unknown"
    message = dvc_locked_message("clean", tmp_path, dvc_lock_holder(tmp_path))
    assert message.startswith(f"{SKIPPED}: DVC's repository lock {tmp_path}/.dvc/tmp/lock")
    assert "pid 31337" in message and "'clean'" in message


def test_refresh_runs_ingest_through_quality_in_dvc_order():
    assert refresh_stages(REPO) == ["ingest", "clean", "dedup", "quality"]


def test_adapt_rewrites_only_base_and_outputs_of_the_dvc_commands():
    assert stage_option(REPO, "lora", "--base") == DEFAULT_BASE
    out = Path("data/adapt/other")
    for stage, options in replacements("/m/base", out).items():
        original = stage_command(REPO, stage)
        rewritten = replace_options(original, options)
        changed = {a for a, b in zip(original, rewritten) if a != b}
        assert len(rewritten) == len(original) and len(changed) == len(options)
        assert rewritten[rewritten.index("--base") + 1] == "/m/base"
        assert all(str(out) in rewritten[rewritten.index(o) + 1] for o in options if o != "--base")
    with pytest.raises(KeyError, match="--nope"):
        replace_options(stage_command(REPO, "lora"), {"--nope": "x"})


def test_adapt_refuses_outputs_inside_dvc_outs_and_foreign_tokenizers(tmp_path):
    check_output(REPO, Path("data/adapt") / slug("runs/exp 1/base"))
    for bad in ("data/models/lora", "data/metrics", "data/models/base/x"):
        with pytest.raises(ValueError, match="overlaps the DVC output"):
            check_output(REPO, Path(bad))
    assert slug("runs/exp 1/base") == "runs-exp-1-base"

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    tokenizer = repo / stage_option(repo, "tokenize", "--output")
    tokenizer.mkdir(parents=True)
    (tokenizer / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0}}}))
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        check_base(repo, base)
    (base / "config.json").write_text("{}")
    (base / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"b": 0}}}, indent=2))
    with pytest.raises(ValueError, match="not the pipeline's tokenizer"):
        check_base(repo, base)
    (base / "tokenizer.json").write_text(json.dumps({"version": "1", "model": {"vocab": {"a": 0}}}))
    check_base(repo, base)


def _accounting(**slices):
    return {"accounting": {"slices": {k: {"in": v[0], "out": v[1]} for k, v in slices.items()}}}


def test_funnel_rows_per_slice_from_the_loaded_stages_only():
    metrics = {"ingest": _accounting(c4=(10, 9), books=(3, 3)),
               "clean": _accounting(c4=(9, 7), books=(3, 2)),
               "dedup": _accounting(c4=(7, 6), books=(2, 2))}
    assert funnel_rows(metrics) == [
        {"slice": "books", "read": 3, "ingest": 3, "clean": 2, "dedup": 2},
        {"slice": "c4", "read": 10, "ingest": 9, "clean": 7, "dedup": 6}]
    assert funnel_rows({"ingest": metrics["ingest"]})[1] == {"slice": "c4", "read": 10, "ingest": 9}


def test_eval_rows_and_summary_markdown():
    metrics = {"eval": {"models": {"base": {"slices": {"c4": {"bits_per_byte": 2.5, "perplexity": 9.0}}},
                                   "lora": {"slices": {"c4": {"bits_per_byte": 2.0, "perplexity": 7.0}}}}}}
    assert eval_rows(metrics) == [
        {"slice": "c4", "model": "base", "bits_per_byte": 2.5, "perplexity": 9.0},
        {"slice": "c4", "model": "lora", "bits_per_byte": 2.0, "perplexity": 7.0}]
    text = summary_markdown("redrobe-refresh", "completed", "abc123",
                            [{"stage": "ingest", "ran": True, "wall_seconds": 1.25},
                             {"stage": "clean", "ran": False, "wall_seconds": None}])
    assert "MLflow parent run: `abc123`" in text
    assert "- `ingest`: ran (1.2 s)" in text and "- `clean`: up to date" in text


def test_prefect_yaml_declares_the_three_deployments_on_the_process_pool():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {"nightly-refresh", "weekly-full-run", "adapt", "reproduce"}
    assert {d["work_pool"]["name"] for d in deployments.values()} == {"redrobe-process"}
    assert [s["cron"] for s in deployments["nightly-refresh"]["schedules"]] == ["0 2 * * *"]
    assert [s["cron"] for s in deployments["weekly-full-run"]["schedules"]] == ["0 4 * * 0"]
    assert deployments["adapt"]["schedules"] == []
    assert deployments["adapt"]["parameters"]["base"] == DEFAULT_BASE
    for d in deployments.values():  # every entrypoint names a real flow function
        path, name = d["entrypoint"].split(":")
        assert f"def {name}(" in (REPO / path).read_text()
    (pull,) = spec["pull"]
    assert "prefect.deployments.steps.set_working_directory" in pull


def test_the_flows_give_a_first_ephemeral_prefect_server_time_to_migrate():
    # in a fresh process, as `python -m flows.pipeline` starts: prefect must read the
    # longer start-up timeout, and a value the user set must win
    code = ("import flows, prefect.settings as s; "
            "print(s.PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for given, expected in ((None, 180), ("45", 45)):
        run_env = env if given is None else {
            **env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": given}
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=run_env,
                             capture_output=True, text=True, check=True).stdout
        assert int(out.split()[-1]) == expected
