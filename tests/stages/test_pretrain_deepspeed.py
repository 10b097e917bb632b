"""`redrobe pretrain` itself under a launcher: 2 CPU processes (gloo), DeepSpeed ZeRO-2.

The stage run by ``torchrun --nproc-per-node 2 -m redrobe.cli pretrain`` must give the
single-process stage's loss curve (up to float summation order), write its outputs and
metrics from rank 0 only, and save weights that plain transformers loads.
"""

import csv
import json
import os
import subprocess
import sys

import llm_fixtures as fx
import pytest
import yaml
from ports import free_port
from transformers import AutoModelForCausalLM

from redrobe.stages import pretrain


def curve(metrics_dir):
    return [float(r["loss"]) for r in csv.DictReader((metrics_dir / "pretrain_curve.csv").open())]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_stage_under_torchrun_zero2_matches_single_process(tmp_path, monkeypatch):
    inputs = fx.write_inputs(tmp_path / "inputs")
    assert pretrain.main(fx.pretrain_argv(inputs, tmp_path / "plain", tmp_path / "plain-metrics")) == 0

    params = yaml.safe_load(inputs["params"].read_text())
    params["pretrain"]["distributed"] = {"backend": "deepspeed", "zero_stage": 2}
    inputs["params"].write_text(yaml.safe_dump(params))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "REDROBE_TRACKING": "off", "DS_ACCELERATOR": "cpu"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "redrobe.cli", "pretrain",
           *fx.pretrain_argv(inputs, tmp_path / "ds", tmp_path / "ds-metrics")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    assert curve(tmp_path / "ds-metrics") == pytest.approx(curve(tmp_path / "plain-metrics"), rel=1e-4)
    metrics = json.loads((tmp_path / "ds-metrics" / "pretrain.json").read_text())
    plain = json.loads((tmp_path / "plain-metrics" / "pretrain.json").read_text())
    assert metrics["tokens_seen"] == plain["tokens_seen"]        # the same global batch
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ds")   # plain transformers
    assert model.config.hidden_size == 32
