"""`redrobe pretrain --checkpoint-dir`: checkpoints, resume to identical weights, fresh on new params, MFU."""

import csv
import json

import llm_fixtures as fx
import pytest
import yaml

from redrobe.model import parameter_counts
from redrobe.stages import pretrain
from redrobe.train.checkpoint import list_checkpoints
from redrobe.train.mfu import flops_per_token


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return fx.write_inputs(tmp_path_factory.mktemp("pretrain-ckpt-inputs"))



def with_pretrain(inputs, tmp_path, name, **changes):
    params = yaml.safe_load(inputs["params"].read_text())
    params["pretrain"].update({"checkpoint_every": 2, "keep_checkpoints": 3, **changes})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return {**inputs, "params": path}


def run(paths, out, checkpoints):
    argv = fx.pretrain_argv(paths, out / "base", out) + ["--checkpoint-dir", str(checkpoints)]
    assert pretrain.main(argv) == 0
    return json.loads((out / "pretrain.json").read_text())


def curve(out):
    """Every column of the loss curve except the timing one."""
    rows = list(csv.DictReader((out / "pretrain_curve.csv").open()))
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


def weights(out):
    return (out / "base" / "model.safetensors").read_bytes()


def test_checkpoints_resume_and_fresh_start(inputs, tmp_path, capsys):
    paths = with_pretrain(inputs, tmp_path, "params")
    ckpt = tmp_path / "ckpt"
    first = run(paths, tmp_path / "a", ckpt)
    assert first["checkpoints_written"] == 3 and first["resumed_from"] is None
    assert first["checkpoint_dir"] == str(ckpt)
    assert [s for s, _, _ in list_checkpoints(ckpt)] == [6, 4, 2]

    # As if killed after step 2: drop the later checkpoints, rerun -> resumes, same result.
    for _step, _, path in list_checkpoints(ckpt)[:2]:
        path.unlink()
    resumed = run(paths, tmp_path / "b", ckpt)
    assert resumed["resumed_from"] == 2 and "step 2" in resumed["resume_note"]
    assert resumed["checkpoints_written"] == 2  # steps 4 and 6
    assert weights(tmp_path / "b") == weights(tmp_path / "a")
    assert curve(tmp_path / "b") == curve(tmp_path / "a")
    assert "redrobe pretrain: resumed from" in capsys.readouterr().err

    changed = with_pretrain(inputs, tmp_path, "changed", lr=0.002)
    fresh = run(changed, tmp_path / "c", ckpt)
    assert fresh["resumed_from"] is None and "params changed" in fresh["resume_note"]
    assert "params changed" in capsys.readouterr().err
    assert len(list_checkpoints(ckpt)) == 6  # both runs keep their own three


def test_resume_never_and_mfu_metrics(inputs, tmp_path):
    from transformers import AutoModelForCausalLM

    paths = with_pretrain(inputs, tmp_path, "params", resume="never", peak_flops=1.0e9)
    run(paths, tmp_path / "a", tmp_path / "ckpt")
    m = run(paths, tmp_path / "b", tmp_path / "ckpt")
    assert m["resumed_from"] is None and m["resume_note"] == ""
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "b" / "base")
    counts = parameter_counts(model)
    per_token = flops_per_token(counts["non_embedding"] + counts["lm_head"], 2, 32, 32)
    assert m["flops_per_token"] == per_token and m["peak_flops"] == 1.0e9
    assert m["mfu"] == pytest.approx(m["tokens_per_s"] * per_token / 1.0e9)
    assert m["compiled"] is False and m["gradient_checkpointing"] is False
    assert m["fused_forward"] is True
