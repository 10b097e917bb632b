"""GPU check: DeepSpeed ZeRO-2 over NCCL on the GPUs present, in the project's loop.

    python -m torch.distributed.run --standalone --nproc-per-node NGPUS \
        benchmarks/gpu/zero2.py --device cuda --out zero2.json [--steps 20]

Every rank joins the process group through :func:`redrobe.train.deepspeed.distributed_context`
(DeepSpeed's accelerator picks NCCL on CUDA, gloo on a CPU), checks one all-reduce of
known values, and trains a small LLaMA for ``--steps`` steps under ZeRO-2
(:func:`~redrobe.train.deepspeed.build_stepper`, bf16 where the GPU has it) on its share
of each global batch. Rank 0 writes the record: backend, world size, the all-reduce
result, the ZeRO stage the engine reports, tokens/s and the losses (averaged over
ranks). With one GPU the world size is 1: NCCL still creates a communicator and runs the
all-reduce and ZeRO's gradient reduction, but nothing crosses between GPUs, so only the
set-up and the code path are checked, not inter-GPU bandwidth. Passes when the backend
is NCCL on CUDA (gloo on a CPU), the all-reduce is exact, the engine runs stage 2, and
the losses are finite and fall.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import torch
import torch.distributed as dist
from pretrain_mfu import precision_for, token_stream
from report import check_parser, check_record, write_check

from redrobe.config import Distributed, Model
from redrobe.model import build_model, llama_config
from redrobe.train import CurriculumBatches, TrainConfig, curriculum_plan, train
from redrobe.train.deepspeed import build_stepper, distributed_context

ONE_GPU_NOTE = ("world size 1: a real NCCL communicator and collectives on one rank; "
                "no data crosses between GPUs")


def all_reduce_sum(rank: int, world_size: int, device: str) -> tuple[float, float]:
    """(got, expected) for an all-reduce of rank + 1 over all ranks."""
    value = torch.tensor([rank + 1.0], device=device)
    dist.all_reduce(value)
    return float(value.item()), world_size * (world_size + 1) / 2


def criteria_for(figures: dict[str, Any], device: str) -> dict[str, bool]:
    losses = figures["losses"]
    expected_backend = "nccl" if device.startswith("cuda") else "gloo"
    return {f"backend_{expected_backend}": figures["backend"] == expected_backend,
            "all_reduce_exact": figures["all_reduce"] == figures["all_reduce_expected"],
            "zero_stage_2": figures["zero_stage"] == 2,
            "losses_finite": all(math.isfinite(x) for x in losses),
            "loss_fell": losses[-1] < losses[0]}


def main(argv: list[str] | None = None) -> int:
    parser = check_parser(__doc__.splitlines()[0])
    for name, default in (("steps", 20), ("hidden", 512), ("layers", 8), ("heads", 8),
                          ("seq", 512), ("batch-per-rank", 8), ("vocab", 32000)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--local_rank", type=int, default=0, help="ignored: LOCAL_RANK is read from the env")
    args = parser.parse_args(argv)

    distributed = Distributed(backend="deepspeed", zero_stage=2)
    ctx = distributed_context(distributed, env=os.environ)
    backend = dist.get_backend()
    got, expected = all_reduce_sum(ctx.rank, ctx.world_size, ctx.device)
    precision = precision_for("auto", ctx.device)
    batch = args.batch_per_rank * ctx.world_size
    shape = Model(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                  num_kv_heads=args.heads, intermediate_size=args.hidden * 11 // 4, max_seq_len=args.seq)
    model = build_model(llama_config(shape, args.vocab, bos_id=0, eos_id=1, pad_id=None), seed=0)
    config = TrainConfig(steps=args.steps, lr=1e-3, min_lr=1e-4, warmup_steps=2, weight_decay=0.1,
                         precision=precision, device=ctx.device, seed=0)
    tokens = token_stream(args.steps * batch * args.seq + 1, args.vocab, 0)
    plan = curriculum_plan([("train", len(tokens))], args.steps, min_tokens=args.seq + 1)
    batches = CurriculumBatches([tokens], plan, args.seq, batch, grad_accum=1, seed=0)
    stepper = build_stepper(model, config, distributed, ctx, batch_size=batch)
    assert stepper is not None  # backend deepspeed always builds one
    result = ctx.reduce_result(train(model, ctx.shard(batches), config, stepper=stepper))
    if ctx.is_main:
        figures = {"backend": backend, "world_size": ctx.world_size, "device": ctx.device,
                   "all_reduce": got, "all_reduce_expected": expected,
                   "zero_stage": stepper.zero_stage, "precision": precision,
                   "global_batch": batch, "steps": args.steps,
                   "tokens_per_s": round(result.tokens / result.train_seconds, 1),
                   "losses": [r.loss for r in result.records],
                   "note": ONE_GPU_NOTE if ctx.world_size == 1 else None}
        ran = (f"{args.steps} ZeRO-2 steps on {ctx.world_size} rank(s), {backend}, {precision}, "
               f"global batch {batch} x {args.seq}")
        write_check(args.out, check_record("zero2", ran, figures, criteria_for(figures, ctx.device)))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
