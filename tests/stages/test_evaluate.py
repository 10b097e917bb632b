"""`redrobe evaluate` on tiny models: eval.json structure and arithmetic, errors."""

import json
import math

import llm_fixtures as fx
import pytest

from redrobe.stages import evaluate, lora, pretrain


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate-inputs")
    paths = fx.write_inputs(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        assert pretrain.main(fx.pretrain_argv(paths, root / "base", root / "metrics")) == 0
        assert lora.main(fx.lora_argv(paths, root / "base", root / "lora", root / "metrics")) == 0
    return {**paths, "base": root / "base", "lora": root / "lora"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")


def test_eval_json(models, tmp_path):
    assert evaluate.main(fx.evaluate_argv(models, models["base"], models["lora"], tmp_path)) == 0
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


def test_lora_output_without_task_file_fails_clearly(models, tmp_path, capsys):
    argv = fx.evaluate_argv(models, models["base"], tmp_path / "no-lora", tmp_path)
    assert evaluate.main(argv) == 1
    assert "task.json" in capsys.readouterr().err
