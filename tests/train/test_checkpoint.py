"""Checkpoints: RNG round trip, weights_only files, keep-last-K, newest valid, in-process resume."""

import random
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from test_loop import CONFIG, SEQ, model, repetitive

from redrobe.train import CurriculumBatches, curriculum_plan, eval_windows, train
from redrobe.train.checkpoint import (
    Checkpointer,
    checkpoint_name,
    fingerprint,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    set_rng_state,
)

FP = fingerprint({"run": "a"})
OTHER = fingerprint({"run": "b"})


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(1).tolist(),
            [random.random() for _ in range(3)])


def test_rng_states_round_trip():
    np.random.randn(1)  # leave a cached gaussian in numpy's state
    state = rng_state()
    first = draws()
    set_rng_state(state)
    assert draws() == first


def test_fingerprint_is_canonical():
    assert fingerprint({"a": 1, "b": [2, 3]}) == fingerprint({"b": [2, 3], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_checkpoint_loads_with_weights_only(tmp_path):
    m = model()
    ckpt = Checkpointer(tmp_path, FP, every=2, keep=2)
    path = ckpt.save(4, {"stepper": {"model": m.state_dict()}, "rng": rng_state(),
                         "records": [{"step": 1, "loss": 2.5, "val_losses": {}}]})
    assert path.name == checkpoint_name(4, FP) == f"step-00000004-{FP[:12]}.pt"
    state = torch.load(path, weights_only=True)
    assert state["step"] == 4 and state["fingerprint"] == FP and state["format"] == 1
    assert all(torch.equal(state["stepper"]["model"][k], v) for k, v in m.state_dict().items())
    assert load_checkpoint(path)["records"] == [{"step": 1, "loss": 2.5, "val_losses": {}}]


def test_keeps_the_last_k_of_its_own_run_only(tmp_path):
    other = Checkpointer(tmp_path, OTHER, every=1, keep=1)
    other.save(9, {})
    (tmp_path / f".{checkpoint_name(3, FP)}.tmp-999999").write_bytes(b"half")  # a killed writer's
    ckpt = Checkpointer(tmp_path, FP, every=1, keep=2)
    for step in range(1, 6):
        ckpt.save(step, {})
    assert [(s, fp) for s, fp, _ in list_checkpoints(tmp_path)] == [
        (9, OTHER[:12]), (5, FP[:12]), (4, FP[:12])]
    assert not list(tmp_path.glob(".*tmp*"))


def test_due_every_n_and_at_the_end():
    ckpt = Checkpointer("unused", FP, every=4)
    assert [s for s in range(1, 11) if ckpt.due(s, 10)] == [4, 8, 10]
    assert not any(Checkpointer("unused", FP, every=0).due(s, 10) for s in range(1, 11))


def test_latest_skips_a_corrupt_file_and_other_params(tmp_path):
    ckpt = Checkpointer(tmp_path, FP, every=1, keep=5)
    assert ckpt.latest() == (None, f"no checkpoint in {tmp_path}")
    ckpt.save(2, {"x": torch.ones(2)})
    (tmp_path / checkpoint_name(3, FP)).write_bytes(b"truncated by a crash")
    state, note = ckpt.latest()
    assert state["step"] == 2 and torch.equal(state["x"], torch.ones(2))
    assert "step 2" in note and checkpoint_name(3, FP) in note

    state, note = Checkpointer(tmp_path, OTHER, every=1).latest()
    assert state is None and "params changed" in note


def batches_and_val(config):
    arrays = [repetitive(600), repetitive(900)]
    plan = curriculum_plan([("b0", 600), ("b1", 900)], config.steps, SEQ + 1)
    batches = CurriculumBatches(arrays, plan, SEQ, batch_size=4, grad_accum=config.grad_accum,
                                seed=config.seed)
    return batches, {"val": eval_windows(repetitive(300), SEQ, batch_size=4, batches=1)}


class Crash(Exception):
    pass


def curve(result):
    return [(r.step, r.loss, r.grad_norm, r.lr, r.tokens, r.val_loss, r.val_losses)
            for r in result.records]


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_resume_after_a_crash_gives_the_same_curve(tmp_path, grad_accum):
    config = replace(CONFIG, steps=7, eval_every=3, grad_accum=grad_accum)
    batches, val = batches_and_val(config)
    reference_model = model()
    reference = train(reference_model, batches, config, val=val)

    ckpt = Checkpointer(tmp_path, FP, every=2, keep=2)

    def crash_at_5(record):
        if record.step == 5:
            raise Crash

    with pytest.raises(Crash):
        train(model(), batches, config, val=val, on_step=crash_at_5, checkpointer=ckpt, resume=True)
    assert [s for s, _, _ in list_checkpoints(tmp_path)] == [4, 2]

    replayed = []
    resumed_model = model()
    resumed = train(resumed_model, batches, config, val=val, checkpointer=ckpt, resume=True,
                    on_step=lambda r: replayed.append(r.step))
    assert resumed.resumed_from == 4 and "step 4" in resumed.resume_note
    assert replayed == list(range(1, 8))  # restored records replayed, then new ones
    assert curve(resumed) == curve(reference)
    assert resumed.initial_val == reference.initial_val
    for (name, a), b in zip(reference_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [s for s, _, _ in list_checkpoints(tmp_path)] == [7, 6]
    assert len(resumed.checkpoints) == 2  # steps 6 and 7 (the end) by this run


def test_resume_false_starts_fresh_and_overwrites(tmp_path):
    config = replace(CONFIG, steps=4)
    batches, val = batches_and_val(config)
    ckpt = Checkpointer(tmp_path, FP, every=2, keep=3)
    first = train(model(), batches, config, val=val, checkpointer=ckpt)
    again = train(model(), batches, config, val=val, checkpointer=ckpt, resume=False)
    assert again.resumed_from is None and curve(again) == curve(first)
    state = load_checkpoint(tmp_path / checkpoint_name(4, FP))
    assert [r["loss"] for r in state["records"]] == [asdict(r)["loss"] for r in first.records]
