"""`redrobe lora` on tiny shards: adapter + merged model, invariants, task file, errors."""

import csv
import json

import llm_fixtures as fx
import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from redrobe.documents import file_digest
from redrobe.lora import ADAPTER_DIR, MERGED_DIR, NO_CUDA_FOR_4BIT, TASK_FILE, lora_parameter_count
from redrobe.stages import lora, pretrain


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-inputs")
    paths = fx.write_inputs(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        assert pretrain.main(fx.pretrain_argv(paths, root / "base", root / "metrics")) == 0
    return {**paths, "base": root / "base"}



def run(inputs, out):
    assert lora.main(fx.lora_argv(inputs, inputs["base"], out / "lora", out / "metrics")) == 0
    return out / "lora", out / "metrics"


def test_lora_outputs_and_invariants(inputs, tmp_path):
    base_digest = file_digest(inputs["base"] / "model.safetensors")
    out, metrics_dir = run(inputs, tmp_path)
    assert file_digest(inputs["base"] / "model.safetensors") == base_digest  # base untouched

    x = torch.randint(4, 300, (2, 32))
    merged = AutoModelForCausalLM.from_pretrained(out / MERGED_DIR).eval()
    base = AutoModelForCausalLM.from_pretrained(inputs["base"]).eval()
    with torch.no_grad():
        base_logits = base(input_ids=x).logits
        peft = PeftModel.from_pretrained(base, out / ADAPTER_DIR).eval()
        assert torch.allclose(peft(input_ids=x).logits, merged(input_ids=x).logits, atol=1e-5)
        assert not torch.allclose(merged(input_ids=x).logits, base_logits)  # it did adapt
    assert len(AutoTokenizer.from_pretrained(out / MERGED_DIR)) == merged.config.vocab_size
    assert not (out / ADAPTER_DIR / "model.safetensors").exists()  # adapter only

    task = json.loads((out / TASK_FILE).read_text())
    assert task["slice"] == "books" and task["r"] == 4
    m = json.loads((metrics_dir / "lora.json").read_text())
    assert 0 < m["trainable_fraction"] < 1
    assert m["trainable_parameters"] == sum(p.numel() for n, p in peft.named_parameters()
                                            if "lora_" in n)
    # r * (d_in + d_out) per adapted matrix x layers, q_proj and v_proj by default
    assert m["trainable_parameters_formula"] == m["trainable_parameters"] == \
        lora_parameter_count(merged.config, 4, ["q_proj", "v_proj"])
    assert m["quantization"] == "none" and task["quantization"] == "none"
    assert m["train_docs"] > 0 and m["val_docs"] > 0 and m["final_val_loss"] is not None
    rows = list(csv.DictReader((metrics_dir / "lora_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert m["tokens_seen"] == int(rows[-1]["tokens"]) == 4 * 4 * 32


def test_rerun_gives_identical_adapter(inputs, tmp_path):
    a, _ = run(inputs, tmp_path / "a")
    b, _ = run(inputs, tmp_path / "b")
    for rel in (f"{ADAPTER_DIR}/adapter_model.safetensors", f"{MERGED_DIR}/model.safetensors"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_slice_without_shards_fails_clearly(inputs, tmp_path, capsys):
    argv = fx.lora_argv({**inputs, "dedup": tmp_path / "empty"}, inputs["base"], tmp_path / "o",
                        tmp_path)
    assert lora.main(argv) == 1
    assert "no shards for lora.slice 'books'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_qlora_without_cuda_stops_with_exit_2(inputs, tmp_path, capsys, monkeypatch):
    params = yaml.safe_load(inputs["params"].read_text())
    params["lora"]["quantization"] = "4bit"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = fx.lora_argv({**inputs, "params": path}, inputs["base"], tmp_path / "o", tmp_path)
    assert lora.main(argv) == 2
    assert f"redrobe lora: error: {NO_CUDA_FOR_4BIT}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "lora.json").exists()
