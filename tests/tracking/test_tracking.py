"""redrobe.tracking against a temporary sqlite store: parent run names, tags and params,
stage runs under a parent, copying onto the parent, the model registry, tracking off."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from redrobe import tracking
from redrobe.config import Params, as_dict, flatten

EXPERIMENT = "redrobe-test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating its tables takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv(tracking.PARENT_ENV, raising=False)
        mp.delenv("REDROBE_TRACKING", raising=False)
        mp.chdir(root)  # git commands describe cwd: not a repository here
        from mlflow import MlflowClient

        tracking.setup(EXPERIMENT)
        yield MlflowClient()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


def test_params_digest_is_canonical():
    a = {"clean": {"min_words": 50, "max_words": 100}, "shared": {"seed": 1}}
    b = {"shared": {"seed": 1}, "clean": {"max_words": 100, "min_words": 50}}
    assert tracking.params_digest(a) == tracking.params_digest(b)
    assert len(tracking.params_digest(a)) == 64
    assert tracking.params_digest(a) != tracking.params_digest({**a, "clean": {"min_words": 60,
                                                                              "max_words": 100}})


def test_pipeline_name():
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert tracking.pipeline_name(commit, False, "fedcba98" * 8) == "pipeline 0123456 fedcba98"
    assert tracking.pipeline_name(commit, True, "fedcba98" * 8) == "pipeline 0123456+dirty fedcba98"
    assert tracking.pipeline_name("unknown", False, None) == "pipeline unknown"


def test_git_commit_and_dirty(tmp_path):
    assert tracking.git_commit(tmp_path) == "unknown" and not tracking.git_dirty(tmp_path)
    _git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert tracking.git_commit(tmp_path) == head and not tracking.git_dirty(tmp_path)
    (tmp_path / "dvc.lock").write_text("stages: {ingest: {}}\n")  # the pipeline's own output
    (tmp_path / "untracked.txt").write_text("x")
    assert not tracking.git_dirty(tmp_path)
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert tracking.git_dirty(tmp_path)


def test_pipeline_run_is_named_tagged_and_carries_all_params(store, tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("x")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    params = as_dict(Params())
    flat = flatten(params)
    assert len(flat) > 100  # more than one MLflow log_batch
    with tracking.pipeline_run(EXPERIMENT, params=params, launcher="prefect", repo=tmp_path) as rid:
        assert rid
    run = store.get_run(rid)
    commit, digest = tracking.git_commit(tmp_path), tracking.params_digest(params)
    assert run.info.run_name == f"pipeline {commit[:7]} {digest[:8]}"
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags[tracking.KIND_TAG] == "pipeline" and tags[tracking.LAUNCHER_TAG] == "prefect"
    assert tags[tracking.COMMIT_TAG] == commit and tags["mlflow.source.git.commit"] == commit
    assert tags[tracking.PARAMS_DIGEST_TAG] == digest and tags[tracking.DIRTY_TAG] == "false"
    assert run.data.params == {k: str(v) for k, v in flat.items()}
    assert run.data.params["clean.gopher_quality.min_words"] == str(Params().clean.gopher_quality.min_words)


def test_pipeline_run_keeps_an_explicit_name_and_tags(store):
    with tracking.pipeline_run(EXPERIMENT, "pipeline (prefect)", {"redrobe.launcher": "prefect"}) as rid:
        pass
    run = store.get_run(rid)
    assert run.info.run_name == "pipeline (prefect)"
    assert run.data.tags[tracking.LAUNCHER_TAG] == "prefect" and run.data.params == {}


def test_stage_run_under_parent_copies_metrics_and_tags(store, monkeypatch):
    with tracking.pipeline_run(EXPERIMENT, params={"evaluate": {"gen_tokens": 4}}) as parent:
        pass  # the flow's stages run in subprocesses, which find the parent through the env
    monkeypatch.setenv(tracking.PARENT_ENV, parent)
    with tracking.stage_run("evaluate", {"evaluate": {"gen_tokens": 4}}, EXPERIMENT) as tracker:
        assert tracker.enabled and tracker.parent_run_id == parent
        tracker.log_metrics({"eval": {"base": {"books": {"bits_per_byte": 3.5}}}})
        tracker.log_parent_metrics({"eval.base.books.bits_per_byte": 3.5, "note": "text"})
        tracker.set_parent_tags({"redrobe.registry.version": 2})
    child = store.get_run(tracker.run_id)
    assert child.info.run_name == "evaluate"
    assert child.data.tags["mlflow.parentRunId"] == parent
    assert child.data.metrics == {"eval.base.books.bits_per_byte": 3.5}
    assert child.data.params == {"evaluate.gen_tokens": "4"}
    top = store.get_run(parent)
    assert top.data.metrics == {"eval.base.books.bits_per_byte": 3.5}
    assert top.data.tags["redrobe.registry.version"] == "2"


def test_dvc_parent_is_named_and_shared_by_the_stages_of_one_call(store, monkeypatch):
    monkeypatch.delenv(tracking.PARENT_ENV, raising=False)
    monkeypatch.setattr(tracking, "_dvc_invocation_key", lambda: "4242-99")
    full = {"shared": {"seed": 1}, "clean": {"gopher_quality": {"min_words": 60}}}
    ids = []
    for stage in ("ingest", "clean"):
        with tracking.stage_run(stage, {"shared": {"seed": 1}}, EXPERIMENT, pipeline_params=full) as t:
            ids.append(t.parent_run_id)
    assert ids[0] and ids[0] == ids[1]
    parent = store.get_run(ids[0])
    assert parent.info.run_name == f"pipeline unknown {tracking.params_digest(full)[:8]}"
    assert parent.data.tags[tracking.LAUNCHER_TAG] == "dvc"
    assert parent.data.tags[tracking.INVOCATION_TAG] == "4242-99"
    assert parent.data.params == {"shared.seed": "1", "clean.gopher_quality.min_words": "60"}
    assert parent.info.status == "FINISHED"


def test_registry_registers_a_logged_model_once_and_moves_aliases(store):
    with tracking.stage_run("pretrain", {}, EXPERIMENT) as tracker:
        first = tracker.log_model(torch.nn.Linear(2, 2), "model", tags={"weights_digest": "aa11"})
        second = tracker.log_model(torch.nn.Linear(2, 3), "model", tags={"weights_digest": "bb22"})
        assert tracker.find_logged_model("weights_digest", "aa11") == first
        assert tracker.find_logged_model("weights_digest", "bb22") == second
        assert tracker.find_logged_model("weights_digest", "cc33") is None
        registry = tracker.registry("redrobe-test-model")
    assert not registry.exists() and registry.aliases() == {}
    v1 = registry.register(first, {"mean_bits_per_byte": 3.0, "weights_digest": "aa11"})
    registry.set_aliases(v1, ["candidate", "production"])
    assert registry.register(first, {"mean_bits_per_byte": 2.9}) == v1  # same model: same version
    assert registry.version_tags(v1)["mean_bits_per_byte"] == "2.9"
    with tracking.stage_run("pretrain", {}, EXPERIMENT) as rerun:  # identical weights again
        same = rerun.log_model(torch.nn.Linear(2, 2), "model", tags={"weights_digest": "aa11"})
    assert registry.register(same, {"weights_digest": "aa11"}) == v1
    v2 = registry.register(second, {"mean_bits_per_byte": 2.5})
    assert v2 != v1 and registry.version_of(second) == v2
    registry.set_aliases(v2, ["candidate"])
    assert registry.aliases() == {"candidate": v2, "production": v1}
    version = store.get_model_version("redrobe-test-model", v2)
    assert version.source == f"models:/{second}" and version.run_id == tracker.run_id


def test_tracking_off(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    with tracking.pipeline_run(EXPERIMENT, params={"a": 1}) as parent:
        assert parent == ""
    with tracking.stage_run("clean", {}, EXPERIMENT) as tracker:
        assert not tracker.enabled and tracker.find_logged_model("weights_digest", "x") is None
        tracker.log_parent_metrics({"a": 1.0})
        with pytest.raises(RuntimeError, match="tracking is off"):
            tracker.registry("m")
