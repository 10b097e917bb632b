"""One training run of a tiny LLaMA for tests/train/test_deepspeed.py.

Run plain (one process, the loop's own AdamW) or under a launcher with DeepSpeed::

    python tests/train/ds_worker.py OUT --zero-stage -1
    torchrun --nproc-per-node 2 tests/train/ds_worker.py OUT --zero-stage 2
    torchrun --nproc-per-node 2 tests/train/ds_worker.py OUT --zero-stage 3 --offload --crash-at 7

Writes (rank 0 only) ``OUT/losses.json`` (per-step global train loss and grad norm),
``OUT/logits.pt`` (the trained model's logits on :data:`PROBE`, computed through the
stepper's module) and ``OUT/model/`` (HF ``save_pretrained`` weights).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from redrobe.config import Distributed, Model
from redrobe.model import build_model, llama_config
from redrobe.train.checkpoint import Checkpointer, fingerprint
from redrobe.train.deepspeed import (
    DistributedContext,
    build_stepper,
    distributed_context,
    full_weights,
)
from redrobe.train.loop import TrainConfig, train

VOCAB, SEQ, BATCH = 64, 16, 4
TINY = Model(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64,
             max_seq_len=SEQ)
# grad_clip 0.5 is below the early gradient norms, so clipping is exercised too
CONFIG = TrainConfig(steps=10, lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.1,
                     grad_clip=0.5, grad_accum=2, seed=3)
PROBE = torch.arange(2, 2 + SEQ).remainder(VOCAB).unsqueeze(0)  # (1, SEQ)


def batches(step: int, micro: int) -> torch.Tensor:
    """Fixed (BATCH, SEQ + 1) windows per (step, micro): a learnable ramp plus noise."""
    g = torch.Generator().manual_seed(1000 * step + micro)
    start = torch.randint(0, VOCAB, (BATCH, 1), generator=g)
    ramp = (start + torch.arange(SEQ + 1)).remainder(VOCAB)
    noise = torch.randint(0, VOCAB, ramp.shape, generator=g)
    keep = torch.rand(ramp.shape, generator=g) < 0.8
    return torch.where(keep, ramp, noise)


def model() -> torch.nn.Module:
    return build_model(llama_config(TINY, VOCAB, bos_id=0, eos_id=1, pad_id=None), seed=11)


class Crash(RuntimeError):
    pass


def crash_and_resume(args: argparse.Namespace, distributed: Distributed,
                     ctx: DistributedContext) -> tuple:
    """Train with a checkpoint every 5 steps, die at ``--crash-at``, then resume on a
    fresh model and engine from this rank's newest checkpoint (a restarted job)."""
    checkpointer = Checkpointer(args.out / "checkpoints" / f"rank-{ctx.rank}",
                                fingerprint({"test": "ds"}), every=5)

    def crashing(step: int, micro: int) -> torch.Tensor:
        if step == args.crash_at:
            raise Crash(step)
        return batches(step, micro)

    net = model()
    stepper = build_stepper(net, CONFIG, distributed, ctx, batch_size=BATCH)
    try:
        train(net, ctx.shard(crashing), CONFIG, stepper=stepper, checkpointer=checkpointer)
        raise AssertionError("the run did not crash")
    except Crash:
        pass
    net = model()
    stepper = build_stepper(net, CONFIG, distributed, ctx, batch_size=BATCH)
    result = train(net, ctx.shard(batches), CONFIG, stepper=stepper, checkpointer=checkpointer,
                   resume=True)
    assert result.resumed_from == 5, result.resume_note
    return stepper, net, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--zero-stage", type=int, default=-1, help="-1: plain loop")
    parser.add_argument("--offload", action="store_true")
    parser.add_argument("--local_rank", type=int, default=0,
                        help="appended by the deepspeed launcher; the env LOCAL_RANK is used")
    parser.add_argument("--crash-at", type=int, default=0,
                        help="fail at this step, then resume from the per-rank checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    distributed = (Distributed() if args.zero_stage < 0 else
                   Distributed(backend="deepspeed", zero_stage=args.zero_stage,
                               offload_optimizer=args.offload,
                               offload_params=args.offload and args.zero_stage == 3))
    ctx = distributed_context(distributed, env=os.environ)
    if args.crash_at:
        stepper, net, result = crash_and_resume(args, distributed, ctx)
    else:
        net = model()
        stepper = build_stepper(net, CONFIG, distributed, ctx, batch_size=BATCH)
        result = train(net, ctx.shard(batches), CONFIG, stepper=stepper)
    result = ctx.reduce_result(result)

    forward = stepper.module if stepper is not None else net
    forward.eval()
    with torch.no_grad():
        logits = forward(input_ids=PROBE, use_cache=False).logits
    args.out.mkdir(parents=True, exist_ok=True)
    with full_weights(stepper):
        if ctx.is_main:
            net.save_pretrained(args.out / "model")
    if ctx.is_main:
        torch.save(logits, args.out / "logits.pt")
        records = [{"loss": r.loss, "grad_norm": r.grad_norm, "tokens": r.tokens}
                   for r in result.records]
        (args.out / "losses.json").write_text(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
