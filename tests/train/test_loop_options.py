"""Loop options: the stepper seam, gradient checkpointing, MFU in the records."""

from dataclasses import replace

import pytest
from test_checkpoint import batches_and_val
from test_loop import CONFIG, model

from redrobe.train import lr_at, train
from redrobe.train.loop import PlainStepper


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


def test_mfu_is_reported_only_with_a_peak():
    config = replace(CONFIG, steps=2)
    batches, val = batches_and_val(config)
    without = train(model(), batches, config, val=val).records[-1]
    assert without.mfu is None and "mfu" not in without.as_metrics()
    record = train(model(), batches, replace(config, flops_per_token=1e6, peak_flops=1e12),
                   val=val).records[-1]
    assert record.mfu == record.tokens_per_s * 1e6 / 1e12
    assert record.as_metrics()["mfu"] == record.mfu
