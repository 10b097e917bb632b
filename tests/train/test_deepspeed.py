"""DeepSpeed ZeRO: params validation, the JSON config, batch sharding, and 2-process
CPU (gloo) runs under ZeRO-2 and ZeRO-3 against the single-process plain loop.

Select with ``pytest tests/train/test_deepspeed.py -k deepspeed``. The launched runs use
tests/train/ds_worker.py under ``torchrun --nproc-per-node 2``. The first DeepSpeed
run on a machine JIT-builds DeepSpeed's shared-memory comm op (cached afterwards in
``~/.cache/torch_extensions``), which can take minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ports import free_port

from redrobe.config import ConfigError, Distributed, Params, params_from_dict
from redrobe.train.deepspeed import DistributedContext, distributed_context, ds_config
from redrobe.train.loop import TrainConfig

WORKER = Path(__file__).with_name("ds_worker.py")
CONFIG = TrainConfig(steps=4, lr=1e-3, min_lr=1e-4, warmup_steps=1, weight_decay=0.1,
                     grad_clip=0.7, grad_accum=3)


def test_deepspeed_params_validation():
    assert Params().pretrain.distributed == Distributed()
    bad = {"pretrain": {"distributed": {"backend": "deepspeed", "zero_stage": 4}}}
    with pytest.raises(ConfigError, match=r"pretrain\.distributed\.zero_stage: must be in 0\.\.3"):
        params_from_dict(bad)
    bad = {"pretrain": {"distributed": {"backend": "deepspeed", "zero_stage": 2,
                                        "offload_params": True}}}
    with pytest.raises(ConfigError, match="offload_params: needs zero_stage 3"):
        params_from_dict(bad)
    with pytest.raises(ConfigError, match="backend"):
        params_from_dict({"pretrain": {"distributed": {"backend": "fsdp"}}})


def test_deepspeed_config_mirrors_the_loop():
    cfg = ds_config(CONFIG, Distributed(backend="deepspeed", zero_stage=3, offload_optimizer=True,
                                        offload_params=True), batch_size=8, world_size=2)
    assert cfg["train_micro_batch_size_per_gpu"] == 4
    assert cfg["gradient_accumulation_steps"] == 3
    assert cfg["train_batch_size"] == 4 * 3 * 2
    assert cfg["managed_gradient_accumulation"] is False   # the loop owns accumulation
    assert cfg["gradient_clipping"] == 0.7
    assert cfg["zero_optimization"]["stage"] == 3
    assert cfg["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert cfg["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert cfg["zero_force_ds_cpu_optimizer"] is False     # keep our AdamW when offloading
    assert not cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    plain = ds_config(CONFIG, Distributed(backend="deepspeed", zero_stage=1), 8, 2)
    assert "offload_optimizer" not in plain["zero_optimization"]
    with pytest.raises(ValueError, match="not divisible"):
        ds_config(CONFIG, Distributed(backend="deepspeed"), batch_size=7, world_size=2)


def test_deepspeed_shards_are_disjoint_and_cover_the_batch():
    full = torch.arange(8 * 5).reshape(8, 5)
    shards = [DistributedContext(rank=r, world_size=2).shard(lambda s, m: full)(1, 0)
              for r in range(2)]
    assert [len(s) for s in shards] == [4, 4]
    assert torch.equal(torch.cat(shards), full)
    assert DistributedContext().shard(lambda s, m: full)(1, 0) is full
    with pytest.raises(ValueError, match="not divisible"):
        DistributedContext(rank=0, world_size=3).shard(lambda s, m: full)(1, 0)


def test_deepspeed_context_needs_a_launcher():
    assert distributed_context(Distributed(), env={}) == DistributedContext()
    assert DistributedContext().is_main and not DistributedContext().active
    with pytest.raises(ValueError, match="torchrun --nproc-per-node"):
        distributed_context(Distributed(backend="deepspeed"), env={})


# ----------------------------------------------------------------------------- 2 processes

def launch(out: Path, *args: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "REDROBE_TRACKING": "off"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           str(WORKER), str(out), *args]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """The single-process reference: the loop's own AdamW on the full batch."""
    sys.path.insert(0, str(WORKER.parent))
    try:
        import ds_worker
    finally:
        sys.path.remove(str(WORKER.parent))
    out = tmp_path_factory.mktemp("plain")
    assert ds_worker.main([str(out), "--zero-stage", "-1"]) == 0
    return out


def losses(out: Path) -> list[dict]:
    return json.loads((out / "losses.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("stage,extra", [(2, []), (3, ["--offload"])],
                         ids=["zero2", "zero3-offload"])
def test_deepspeed_two_process_zero_matches_single_process(tmp_path, plain, stage, extra):
    """Both runs also die at step 7 and resume from their per-rank step-5 checkpoints
    (weights_only-loadable), so the curve checks the stepper's state round trip too."""
    from transformers import AutoModelForCausalLM

    launch(tmp_path, "--zero-stage", str(stage), "--crash-at", "7", *extra)
    for rank in range(2):
        (ckpt,) = (tmp_path / "checkpoints" / f"rank-{rank}").glob("step-00000010-*.pt")
        state = torch.load(ckpt, weights_only=True)["stepper"]
        assert (state["rank"], state["world_size"]) == (rank, 2)
    ref, got = losses(plain), losses(tmp_path)
    assert len(got) == len(ref) == 10
    # Not bit-exact: each rank averages the loss/gradients of its half batch and
    # DeepSpeed averages those across ranks (reduce-scatter/all-reduce), which sums the
    # same numbers in another order; AdamW then carries ~1e-7 relative differences.
    for r, g in zip(ref, got):
        assert g["loss"] == pytest.approx(r["loss"], rel=1e-4)
        assert g["grad_norm"] == pytest.approx(r["grad_norm"], rel=1e-3)
        assert g["tokens"] == r["tokens"]            # the global batch of the plain run
    assert got[-1]["loss"] < got[0]["loss"] - 0.3   # it trained

    # rank 0's save_pretrained (ZeRO-3: gathered) loads in plain transformers
    # and gives the trained engine's logits
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    sys.path.insert(0, str(WORKER.parent))
    try:
        from ds_worker import PROBE
    finally:
        sys.path.remove(str(WORKER.parent))
    with torch.no_grad():
        logits = model(input_ids=PROBE).logits
    torch.testing.assert_close(logits, torch.load(tmp_path / "logits.pt"), rtol=0, atol=1e-6)
    plain_logits = torch.load(plain / "logits.pt")
    torch.testing.assert_close(logits, plain_logits, rtol=1e-3, atol=1e-3)
