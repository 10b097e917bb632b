"""Loop options: the stepper seam, gradient checkpointing, the fused forward, MFU in the records."""

from dataclasses import replace

import pytest
import torch
from test_checkpoint import batches_and_val
from test_loop import CONFIG, model

from redrobe.model import fused
from redrobe.train import lr_at, train
from redrobe.train.loop import PlainStepper, split_bucket_losses

fused_next_token_loss = fused.next_token_loss


class CountingStepper(PlainStepper):
    """The plain stepper, recording how the loop drives it."""

    def __init__(self, m, config):
        super().__init__(m, config)
        self.calls = []

    def backward(self, loss):
        self.calls.append("backward")
        super().backward(loss)

    def step(self, lr):
        self.calls.append(lr)
        return super().step(lr)


def losses(result):
    return [(r.loss, r.grad_norm, r.val_loss) for r in result.records]


def test_a_given_stepper_drives_the_same_updates():
    config = replace(CONFIG, steps=4, grad_accum=2)
    batches, val = batches_and_val(config)
    plain = train(model(), batches, config, val=val)
    m = model()
    stepper = CountingStepper(m, config)
    seamed = train(m, batches, config, val=val, stepper=stepper)
    assert losses(seamed) == losses(plain)
    lrs = [lr_at(s, lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                 total_steps=config.steps) for s in range(1, 5)]
    assert stepper.calls == [c for lr in lrs for c in ("backward", "backward", lr)]


def test_gradient_checkpointing_recomputes_to_the_same_losses():
    config = replace(CONFIG, steps=3)
    batches, val = batches_and_val(config)
    plain = train(model(), batches, config, val=val)
    m = model()
    checkpointed = train(m, batches, replace(config, gradient_checkpointing=True), val=val)
    assert m.is_activation_checkpointing
    # Recomputation replays the same fp32 forward, so the curve matches to rounding.
    for a, b in zip(losses(plain), losses(checkpointed)):
        assert a == pytest.approx(b, abs=1e-6)


def test_fused_forward_follows_the_transformers_curve(monkeypatch):
    config = replace(CONFIG, steps=4, grad_accum=2)
    batches, val = batches_and_val(config)
    calls = []
    monkeypatch.setattr(fused, "next_token_loss",
                        lambda *a: calls.append(1) or fused_next_token_loss(*a))
    with_fused = train(model(), batches, config, val=val)
    assert calls, "the loop did not take the fused path"
    calls.clear()
    unfused = train(model(), batches, replace(config, fused=False), val=val)
    assert not calls
    # the same math in another order: the curves agree to float rounding
    for a, b in zip(losses(with_fused), losses(unfused)):
        assert [x is None for x in a] == [x is None for x in b]
        assert [x for x in a if x is not None] == pytest.approx([x for x in b if x is not None],
                                                                rel=1e-4)


def test_the_fused_choice_is_made_once_per_loop_not_per_micro_batch(monkeypatch):
    supports, asked, counts = fused.supports, [], []
    monkeypatch.setattr(fused, "supports", lambda m: asked.append(m) or supports(m))
    for grad_accum in (1, 4):
        asked.clear()
        config = replace(CONFIG, steps=2, grad_accum=grad_accum)
        batches, val = batches_and_val(config)
        train(model(), batches, config, val=val)
        counts.append(len(asked))
    assert counts[0] == counts[1] > 0        # however many micro-batches a step has


def test_bucket_losses_come_with_every_evaluation_and_stay_out_of_overall():
    config = replace(CONFIG, steps=4, eval_every=2)
    batches, val = batches_and_val(config)
    easy, hard = val["val"][:1], [torch.flip(w, dims=[1]) for w in val["val"][:1]]
    plain = train(model(), batches, config, val=val)
    result = train(model(), batches, config, val=val, val_buckets={"easy": easy, "hard": hard})
    evaluated = [r for r in result.records if r.val_losses]
    assert [r.step for r in evaluated] == [2, 4]
    for record, alone in zip(evaluated, [r for r in plain.records if r.val_losses]):
        assert set(record.val_losses) == {"val", "overall", "bucket/easy", "bucket/hard"}
        assert record.val_loss == alone.val_loss            # overall: the slices only
        assert record.val_losses["bucket/easy"] != record.val_losses["bucket/hard"]
        assert record.as_metrics()["val_loss_bucket/hard"] == record.val_losses["bucket/hard"]
    assert set(result.initial_val) == {"val", "overall", "bucket/easy", "bucket/hard"}
    by_slice, by_bucket = split_bucket_losses(result.final_val)
    assert by_slice == {"val": result.final_val["val"]}
    assert by_bucket == {"easy": result.final_val["bucket/easy"],
                         "hard": result.final_val["bucket/hard"]}


def test_mfu_is_reported_only_with_a_peak():
    config = replace(CONFIG, steps=2)
    batches, val = batches_and_val(config)
    without = train(model(), batches, config, val=val).records[-1]
    assert without.mfu is None and "mfu" not in without.as_metrics()
    record = train(model(), batches, replace(config, flops_per_token=1e6, peak_flops=1e12),
                   val=val).records[-1]
    assert record.mfu == record.tokens_per_s * 1e6 / 1e12
    assert record.as_metrics()["mfu"] == record.mfu
