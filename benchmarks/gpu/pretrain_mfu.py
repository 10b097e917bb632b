"""GPU check: bf16 pretraining MFU of a small LLaMA in the project's training loop.

    python benchmarks/gpu/pretrain_mfu.py --device cuda --out pretrain_mfu.json [--steps 30] [--hidden 1024]
        [--layers 12] [--heads 16] [--seq 1024] [--batch 16] [--vocab 32000]

What the pretrain stage does, on a synthetic token stream instead of the buckets: the
model from :func:`redrobe.model.llama_config` / ``build_model``, precision chosen by
:func:`redrobe.train.choose_precision` ("auto": bf16 on a CUDA GPU that has it),
``torch.compile`` by the stage's rule (``auto``: on CUDA), the fused forward, model
FLOPs per token 6N + 12LHT and the matmul peak measured by
:func:`redrobe.train.measure_peak_flops` (``--peak-flops`` skips the measurement), and
:func:`redrobe.train.train_on_array`. Reported: the run's MFU as the stage's metrics
JSON computes it (all tokens over all training time, so compilation and warm-up count)
and the median per-step MFU after the warm-up steps, with tokens/s and the losses.
Passes when the precision is bf16 on CUDA, every loss is finite, the loss fell and
both MFU figures lie in (0, 1].
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import check_parser, check_record, write_check

from redrobe.config import Model
from redrobe.model import build_model, fused, llama_config, parameter_counts
from redrobe.stages.pretrain import use_compile
from redrobe.train import (
    TrainConfig,
    choose_precision,
    flops_per_token,
    measure_peak_flops,
    mfu,
    parse_cpu_flags,
    train_on_array,
)

CPUINFO = Path("/proc/cpuinfo")


def token_stream(length: int, vocab: int, seed: int) -> np.ndarray:
    """Something learnable: ascending runs of token ids, a fifth of them replaced by noise."""
    rng = np.random.default_rng(seed)
    ramp = (np.arange(length) * 7 // 5 + rng.integers(vocab)) % vocab
    noise = rng.integers(vocab, size=length)
    return np.where(rng.random(length) < 0.8, ramp, noise).astype(np.int64)


def precision_for(requested: str, device: str) -> str:
    cuda = device.startswith("cuda")
    flags = parse_cpu_flags(CPUINFO.read_text()) if CPUINFO.exists() else frozenset()
    return choose_precision(requested, cuda=cuda, cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
                            cpu_flags=flags)


def criteria_for(figures: dict[str, Any], device: str) -> dict[str, bool]:
    """What a healthy run shows; bf16 is required on CUDA only (a CPU may lack it)."""
    losses = figures["losses"]
    criteria = {"losses_finite": all(math.isfinite(x) for x in losses),
                "loss_fell": losses[-1] < losses[0],
                "run_mfu_in_(0,1]": 0 < figures["mfu_run"] <= 1,
                "step_mfu_in_(0,1]": 0 < figures["mfu_median_step"] <= 1}
    if device.startswith("cuda"):
        criteria["precision_bf16"] = figures["precision"] == "bf16"
    return criteria


def main(argv: list[str] | None = None) -> int:
    parser = check_parser(__doc__.splitlines()[0])
    for name, default in (("steps", 30), ("warmup", 5), ("hidden", 1024), ("layers", 12), ("heads", 16),
                          ("kv-heads", 16), ("ffn", 2816), ("seq", 1024), ("batch", 16),
                          ("vocab", 32000)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", default="auto", choices=("auto", "true", "false"))
    parser.add_argument("--peak-flops", type=float, default=0.0, help="0: measure it")
    args = parser.parse_args(argv)

    shape = Model(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                  num_kv_heads=args.kv_heads, intermediate_size=args.ffn, max_seq_len=args.seq)
    model = build_model(llama_config(shape, args.vocab, bos_id=0, eos_id=1, pad_id=None), seed=0)
    counts = parameter_counts(model)
    per_token = flops_per_token(counts["non_embedding"] + counts["lm_head"], args.layers,
                                args.hidden, args.seq)
    precision = precision_for(args.precision, args.device)
    peak = args.peak_flops or measure_peak_flops(args.device)
    compiled = use_compile(args.compile if args.compile == "auto" else args.compile == "true",
                           args.device.split(":")[0])
    config = TrainConfig(steps=args.steps, lr=3e-4, min_lr=3e-5, warmup_steps=args.warmup,
                         weight_decay=0.1, precision=precision, device=args.device, seed=0,
                         compile=compiled, flops_per_token=per_token, peak_flops=peak)
    train_tokens = args.steps * args.batch * args.seq + 1
    result = train_on_array(model, token_stream(train_tokens, args.vocab, 0),
                            token_stream(args.batch * (args.seq + 1), args.vocab, 1),
                            seq_len=args.seq, batch_size=args.batch, eval_batches=1, config=config)
    records = result.records
    after_warmup = records[args.warmup:] or records
    steady = [r.mfu for r in after_warmup if r.mfu is not None]
    figures = {"parameters": counts["total"],
               "matmul_parameters": counts["non_embedding"] + counts["lm_head"],
               "flops_per_token": per_token, "peak_flops": peak, "precision": precision,
               "compiled": compiled, "fused_forward": fused.supports(model), "steps": args.steps,
               "tokens": result.tokens, "train_seconds": result.train_seconds,
               "tokens_per_s": round(result.tokens / result.train_seconds, 1),
               "mfu_run": mfu(result.tokens / result.train_seconds, per_token, peak),
               "mfu_median_step": statistics.median(steady) if steady else 0.0,
               "losses": [r.loss for r in records],
               "shape": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                         "kv_heads": args.kv_heads, "ffn": args.ffn, "seq": args.seq,
                         "batch": args.batch, "vocab": args.vocab}}
    ran = (f"{args.steps} pretraining steps of a {counts['total'] / 1e6:.1f} M-parameter LLaMA on "
           f"{args.device} ({precision}, batch {args.batch} x {args.seq}), redrobe.train loop")
    write_check(args.out, check_record("pretrain_mfu", ran, figures, criteria_for(figures, args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
