"""The evaluate stage with tracking on: eval metrics on the run, its parent and the
LoggedModel, and the gates applied to the MLflow model registry (sqlite store)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import llm_fixtures as fx  # noqa: E402  (tests/stages: the tiny pretrain/lora inputs)

from redrobe import tracking  # noqa: E402
from redrobe.documents import file_digest  # noqa: E402
from redrobe.stages import evaluate, lora, pretrain  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A sqlite store, and two tracked pretrain runs (different seeds) plus a LoRA."""
    root = tmp_path_factory.mktemp("registry")
    paths = fx.write_inputs(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("REDROBE_TRACKING", raising=False)
        mp.delenv(tracking.PARENT_ENV, raising=False)
        mp.chdir(root)
        other = {**paths, "params": _params(root / "seed2.yaml", paths, {"shared": {"seed": 99}})}
        assert pretrain.main(fx.pretrain_argv(paths, root / "base", root / "m1")) == 0
        assert pretrain.main(fx.pretrain_argv(other, root / "base2", root / "m2")) == 0
        assert lora.main(fx.lora_argv(paths, root / "base", root / "lora", root / "m1")) == 0
        from mlflow import MlflowClient

        yield {**paths, "base": root / "base", "base2": root / "base2", "lora": root / "lora",
               "client": MlflowClient()}


def _params(path: Path, paths: dict, overrides: dict) -> Path:
    params = yaml.safe_load(paths["params"].read_text())
    for section, values in overrides.items():
        params[section] = {**params.get(section, {}), **values}
    path.write_text(yaml.safe_dump(params))
    return path


def _evaluate(world, tmp_path, base: str = "base", parent: str = "", **settings) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    params = _params(tmp_path / "params.yaml", world, {"evaluate": settings})
    argv = fx.evaluate_argv({**world, "params": params}, world[base], world["lora"], tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        if parent:
            mp.setenv(tracking.PARENT_ENV, parent)
        assert evaluate.main(argv) == 0
    return json.loads((tmp_path / "eval.json").read_text())


def _model_id(world, base: str) -> str:
    digest = file_digest(world[base] / "model.safetensors")
    exp = world["client"].get_experiment_by_name("redrobe").experiment_id
    (found,) = world["client"].search_logged_models([exp], filter_string=f"tags.weights_digest = '{digest}'")
    return found.model_id


def test_first_model_is_registered_and_metrics_reach_run_parent_and_model(world, tmp_path):
    client = world["client"]
    with tracking.pipeline_run("redrobe", params={"evaluate": {"model_name": "m-first"}}) as parent:
        pass
    report = _evaluate(world, tmp_path, parent=parent, model_name="m-first")
    record = report["registry"]
    assert record["status"] == "registered" and record["version"] == "1"
    assert record["aliases"] == ["candidate", "production"]
    assert [(g["name"], g["passed"]) for g in record["gates"]] == [
        ("max_bits_per_byte", True), ("beats_production", True)]
    assert record["model_id"] == _model_id(world, "base")
    assert record["weights_digest"] == file_digest(world["base"] / "model.safetensors")

    registered = client.get_registered_model("m-first")
    assert registered.aliases == {"candidate": 1, "production": 1}
    version = client.get_model_version("m-first", "1")
    assert version.source == f"models:/{record['model_id']}"
    mean = report["models"]["base"]["mean_bits_per_byte"]
    assert float(version.tags["mean_bits_per_byte"]) == pytest.approx(mean)

    top = client.get_run(parent)
    (run,) = client.search_runs([top.info.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert run.info.run_name == "evaluate"
    for model in ("base", "lora"):
        for name, scores in report["models"][model]["slices"].items():
            key = f"eval.{model}.{name}.bits_per_byte"
            assert run.data.metrics[key] == pytest.approx(scores["bits_per_byte"])
            assert top.data.metrics[key] == pytest.approx(scores["bits_per_byte"])
    for name, delta in report["delta_bits_per_byte"].items():
        assert top.data.metrics[f"eval.lora_delta.{name}.bits_per_byte"] == pytest.approx(delta)
    assert top.data.metrics["eval.base.mean_bits_per_byte"] == pytest.approx(mean)
    for tags in (run.data.tags, top.data.tags):
        assert tags["redrobe.registry.status"] == "registered"
        assert tags["redrobe.registry.version"] == "1"
        assert tags["redrobe.registry.aliases"] == "candidate,production"
    linked = {m.key for m in client.get_logged_model(record["model_id"]).metrics}
    assert "eval.base.mean_bits_per_byte" in linked and not any(k.startswith("eval.lora.") for k in linked)
    decision = client.download_artifacts(run.info.run_id, "registry/decision.json", str(tmp_path))
    assert json.loads(Path(decision).read_text()) == record


def test_registry_lifecycle(world, tmp_path):
    client, name = world["client"], "m-life"
    first = _evaluate(world, tmp_path / "a", model_name=name)["registry"]
    assert first["version"] == "1" and first["aliases"] == ["candidate", "production"]

    again = _evaluate(world, tmp_path / "b", model_name=name)["registry"]
    assert again["version"] == "1" and again["status"] == "registered"  # same weights: same version
    assert "already production" in again["gates"][1]["detail"]

    failed = _evaluate(world, tmp_path / "c", model_name=name, base="base2",
                       max_bits_per_byte=0.01)["registry"]
    assert failed["status"] == "gates_failed" and failed["version"] is None
    assert failed["aliases"] == [] and not failed["gates"][0]["passed"]
    assert len(client.search_model_versions(f"name = '{name}'")) == 1

    challenger = _evaluate(world, tmp_path / "d", model_name=name, base="base2",
                           min_improvement=100.0)["registry"]  # cannot beat production by 100
    assert challenger["status"] == "registered" and challenger["version"] == "2"
    assert challenger["aliases"] == ["candidate"] and not challenger["production"]
    assert challenger["incumbent"]["version"] == "1"
    assert client.get_registered_model(name).aliases == {"candidate": 2, "production": 1}


def test_registration_off_records_the_gates_only(world, tmp_path):
    record = _evaluate(world, tmp_path, model_name="m-off", register=False)["registry"]
    assert record["status"] == "disabled" and record["version"] is None
    assert [g["name"] for g in record["gates"]] == ["max_bits_per_byte"]
    assert not world["client"].search_registered_models("name = 'm-off'")
