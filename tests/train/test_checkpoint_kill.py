"""A training run killed with SIGKILL and restarted reaches the uninterrupted loss curve, bit for bit.

The test starts this file as a script (the worker) in a subprocess, polls the checkpoint
directory, SIGKILLs the worker once a checkpoint exists, restarts it (it resumes from the
newest checkpoint) and compares every step's loss, grad norm, lr, tokens and validation
losses, and the final weights, with an uninterrupted run of the same function.

    python tests/train/test_checkpoint_kill.py CKPT_DIR OUT_PREFIX [--slow SECONDS]
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

STEPS, EVERY = 10, 2


def run_training(checkpoint_dir: Path, slow: float = 0.0):
    """The run under test: CPU, fp32, one thread, deterministic algorithms."""
    from test_checkpoint import batches_and_val
    from test_loop import CONFIG, model

    from redrobe.train import train
    from redrobe.train.checkpoint import Checkpointer, fingerprint

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    config = replace(CONFIG, steps=STEPS, eval_every=3, warmup_steps=2)
    batches, val = batches_and_val(config)
    ckpt = Checkpointer(checkpoint_dir, fingerprint({"test": "kill"}), every=EVERY, keep=2)
    m = model()
    result = train(m, batches, config, val=val, checkpointer=ckpt, resume=True,
                   on_step=lambda record: time.sleep(slow))  # slow: leave time to kill it
    return m, result


def curve(records):
    keys = ("step", "loss", "grad_norm", "lr", "tokens", "val_loss", "val_losses")
    return [{k: r[k] for k in keys} for r in records]


def worker(argv):
    checkpoint_dir, out = Path(argv[0]), Path(argv[1])
    slow = float(argv[3]) if len(argv) > 3 and argv[2] == "--slow" else 0.0
    m, result = run_training(checkpoint_dir, slow)
    torch.save(m.state_dict(), f"{out}.pt")
    Path(f"{out}.json").write_text(json.dumps({"resumed_from": result.resumed_from,
                                               "records": [asdict(r) for r in result.records]}))


def start(checkpoint_dir, out, *extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, __file__, str(checkpoint_dir), str(out), *extra],
                            cwd=Path(__file__).parent, env=env)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_curve(tmp_path):
    threads = torch.get_num_threads()
    try:
        reference_model, reference = run_training(tmp_path / "reference")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)

    checkpoints, out = tmp_path / "ckpt", tmp_path / "out"
    proc = start(checkpoints, out, "--slow", "0.4")
    deadline = time.monotonic() + 180
    while not list(checkpoints.glob("step-*.pt")):
        assert proc.poll() is None, "the worker ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not Path(f"{out}.json").exists()
    saved = sorted(int(p.name[5:13]) for p in checkpoints.glob("step-*.pt"))
    assert saved and saved[-1] < STEPS  # killed mid-run

    restarted = start(checkpoints, out)
    assert restarted.wait(timeout=180) == 0
    resumed = json.loads(Path(f"{out}.json").read_text())
    assert resumed["resumed_from"] == saved[-1]
    assert curve(resumed["records"]) == curve([asdict(r) for r in reference.records])
    weights = torch.load(f"{out}.pt", weights_only=True)
    for name, value in reference_model.state_dict().items():
        assert torch.equal(weights[name], value), name


if __name__ == "__main__":
    worker(sys.argv[1:])
