"""Benchmark: our training loop against the transformers ``Trainer``, and MFU vs the measured peak.

    nice -n 10 python benchmarks/train_vs_trainer.py          # -> benchmarks/results/train_vs_trainer.json
    nice -n 10 python benchmarks/train_vs_trainer.py --steps 8 --rounds 1 --no-options   # quicker
    nice -n 10 python benchmarks/train_vs_trainer.py --memory    # + a step's memory, fused vs not

What is compared:

1. The same model: the pipeline's LLaMA (params.yaml ``model``: hidden 256, 4 layers,
   4 heads, intermediate 688, untied head, vocabulary ``--vocab`` 8192), a fresh
   ``build_model`` with the same seed on both sides, fp32 on all cores.
2. The same batches: ``--batch`` 8 windows of ``--seq`` 256 + 1 tokens per step, from
   one :class:`CurriculumBatches` over the bucket arrays in data/processed/buckets when
   present, else over deterministic synthetic tokens (seeded uniform ids: the loss
   value does not matter for speed). The ``Trainer`` gets the same windows, in the same
   order, through a map-style Dataset with sequential sampling.
3. The same optimisation: AdamW (betas 0.9/0.95, weight decay 0.1), linear warmup then
   cosine to ``min_lr``, clip 1.0; the Trainer with ``cosine_with_min_lr``, no eval,
   no saving, no logging, ``report_to=[]``, ``dataloader_num_workers=0``, ``use_cpu``.
4. Three sides: our loop as it is (the fused forward of :mod:`redrobe.model.fused`),
   our loop with ``fused=False`` (transformers' forward: what the loop itself adds),
   and the Trainer.
5. Timing: wall clock (and process CPU time) between the end of step ``--warmup`` and
   the end of the last step, so model build, optimizer creation and the first (slow,
   allocator-warming) steps are excluded. The sides take turns for ``--rounds`` rounds
   (who goes first rotates each round); the best round per side is reported (the
   machine is shared, so the best is the least disturbed), with the median and the load
   average alongside.

MFU (PaLM App. B, via :mod:`redrobe.train.mfu`): tokens/s x FLOPs per token / peak,
where the peak is measured in this run (best of 1024..4096 square fp32 matmuls on all
threads). FLOPs per token are reported three ways: 6 N with N the non-embedding
parameters (Kaplan: the lm_head excluded), + the attention term
12 L H T, and 6 (N + lm_head) + 12 L H T (every matmul the step really runs).

Each timed run is a fresh child process (``--side``), so no side inherits another's
process state: the allocator setting our loop makes (:mod:`redrobe.train.host`),
thread pools, compiled kernels. The peak is measured in the parent, in the same run.

Options (each a variant of *our* side, measured in the same run so the lead can adopt
what pays): ``attn_implementation`` eager vs sdpa, AdamW foreach / for-loop instead of
fused, a profile of our step (top ops by self CPU time, the share spent in matmuls), an
optimizer micro-benchmark, and with ``--memory`` the peak RSS growth of two training
steps at a 32k vocabulary, fused forward vs transformers' forward.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from redrobe.config import Model
from redrobe.curriculum.layout import INDEX_FILE, open_tokens, read_index
from redrobe.model.llama import build_model, llama_config, parameter_counts
from redrobe.train import loop
from redrobe.train.data import CurriculumBatches, curriculum_plan
from redrobe.train.host import keep_freed_memory
from redrobe.train.loop import TrainConfig, train
from redrobe.train.mfu import flops_per_token, measure_peak_flops, mfu

ORIGINAL_CONFIGURE = loop.configure_optimizer
RESULTS = Path(__file__).parent / "results" / "train_vs_trainer.json"
BUCKETS = Path("data/processed/buckets")
PEAK_SIZES = (1024, 2048, 3072, 4096)


# ---------------------------------------------------------------- data and model
def load_tokens(vocab: int, n_tokens: int, seed: int) -> tuple[list[np.ndarray], str]:
    """Bucket arrays of the bucket stage when present (and within ``vocab``), else
    ``n_tokens`` seeded synthetic ids."""
    if (BUCKETS / INDEX_FILE).is_file():
        index = read_index(BUCKETS)
        if index["vocab_size"] <= vocab:
            arrays = [open_tokens(BUCKETS, index, b["file"]) for b in index["buckets"]]
            return arrays, f"real: {len(arrays)} buckets of {BUCKETS}"
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, n_tokens, dtype=np.int64)], "synthetic: seeded uniform ids"


def make_model(args: argparse.Namespace, attn: str | None = None) -> torch.nn.Module:
    shape = Model(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                  num_kv_heads=args.heads, intermediate_size=args.intermediate,
                  max_seq_len=args.seq, rope_theta=10000.0, tie_embeddings=False)
    config = llama_config(shape, vocab_size=args.vocab, bos_id=None, eos_id=None, pad_id=None)
    if attn is not None:
        config._attn_implementation = attn
    return build_model(config, seed=args.seed)


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(steps=args.steps, lr=1e-3, min_lr=1e-4, warmup_steps=max(1, args.steps // 10),
                       weight_decay=0.1, beta1=0.9, beta2=0.95, grad_clip=1.0, grad_accum=1,
                       eval_every=0, precision="fp32", device="cpu", seed=args.seed)


def peak_flops_per_cpu_s(sizes: tuple[int, ...] = PEAK_SIZES[1:], repeats: int = 3) -> float:
    """The matmul peak in FLOPs per second of *process CPU time* (all threads summed).

    The contention-robust twin of :func:`measure_peak_flops`: on a shared machine the
    wall clock also measures the neighbours, CPU time mostly does not. Dividing a
    step's FLOPs per CPU-second by this gives an MFU that does not depend on the load.
    Each size is timed over all ``repeats`` together (CPU clocks tick coarsely: a single
    product's reading can be off by a tick), the best size wins.
    """
    best = 0.0
    with torch.no_grad():
        for n in sizes:
            gen = torch.Generator().manual_seed(n)
            a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
            a @ b  # warm-up
            started = time.process_time()
            for _ in range(repeats):
                a @ b
            best = max(best, repeats * 2.0 * n ** 3 / (time.process_time() - started))
    return best


class Clock:
    """Wall and process-CPU timestamps at each step end; throughput after the warmup."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def tick(self, *_: object, **__: object) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def rate(self, warmup: int, tokens_per_step: int) -> dict[str, float]:
        steps = len(self.wall) - warmup
        wall = self.wall[-1] - self.wall[warmup - 1]
        cpu = self.cpu[-1] - self.cpu[warmup - 1]
        return {"timed_steps": steps, "wall_s": wall, "cpu_s": cpu,
                "tokens_per_s": steps * tokens_per_step / wall,
                "tokens_per_cpu_s": steps * tokens_per_step / cpu,
                "s_per_step": wall / steps}


# ---------------------------------------------------------------- the two sides
def adamw_variant(impl: str) -> Callable[[torch.nn.Module, TrainConfig], torch.optim.AdamW]:
    """The loop's :func:`configure_optimizer` (same groups, same hyper-parameters) with
    the AdamW implementation swapped: "fused" (the loop's choice), "foreach" or "for_loop"."""
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True},
             "for_loop": {"foreach": False}}[impl]

    def configure(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
        groups = ORIGINAL_CONFIGURE(model, config).param_groups
        return torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"]}
                                  for g in groups], lr=config.lr,
                                 betas=(config.beta1, config.beta2), **flags)
    return configure


def run_ours(args: argparse.Namespace, batches: CurriculumBatches, attn: str | None = None,
             adamw: str = "fused", **changes: bool) -> dict[str, float]:
    """Our loop as it is; the options swap one thing: the attention implementation, the
    AdamW implementation (patched into the loop module) or a ``TrainConfig`` field
    (``fused=False``: transformers' forward; ``compile=True``)."""
    model = make_model(args, attn)
    config = dataclasses.replace(train_config(args), **changes)
    clock = Clock()
    loop.configure_optimizer = ORIGINAL_CONFIGURE if adamw == "fused" else adamw_variant(adamw)
    try:
        train(model, batches, config, on_step=clock.tick)
    finally:
        loop.configure_optimizer = ORIGINAL_CONFIGURE
    return clock.rate(args.warmup, args.batch * args.seq)


class WindowDataset(torch.utils.data.Dataset):
    """The windows of ``batches`` for steps 1..steps, row by row, in step order.

    ``input_ids`` are the first ``seq`` tokens; ``labels`` the same ids (the model
    shifts them internally), so the forward pass is exactly ours (seq positions).
    """

    def __init__(self, batches: CurriculumBatches, steps: int) -> None:
        self.rows = torch.cat([batches(step, 0) for step in range(1, steps + 1)])[:, :-1]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


class ClockCallback(TrainerCallback):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def on_step_end(self, *args: object, **kwargs: object) -> None:
        self.clock.tick()


def run_trainer(args: argparse.Namespace, dataset: WindowDataset, out_dir: Path) -> dict[str, float]:
    model = make_model(args)
    config = train_config(args)
    targs = TrainingArguments(
        output_dir=str(out_dir), max_steps=config.steps, per_device_train_batch_size=args.batch,
        learning_rate=config.lr, lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": config.min_lr}, warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay, adam_beta1=config.beta1, adam_beta2=config.beta2,
        max_grad_norm=config.grad_clip, optim="adamw_torch", gradient_accumulation_steps=1,
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=True, seed=args.seed,
        train_sampling_strategy="sequential", remove_unused_columns=False)
    clock = Clock()
    trainer = Trainer(model=model, args=targs, train_dataset=dataset,
                      callbacks=[ClockCallback(clock)])
    trainer.train()
    defaults = trainer.optimizer.defaults
    return {**clock.rate(args.warmup, args.batch * args.seq),
            "optimizer": f"{type(trainer.optimizer).__name__}(foreach={defaults.get('foreach')}, "
                         f"fused={defaults.get('fused')})"}


# ---------------------------------------------------------------- one side per process
#: the timed sides: our loop as it is, with torch.compile, with one thing switched off;
#: the Trainer as users run it, and with the allocator setting our loop makes
SIDES = ("ours", "ours_compile", "ours_unfused", "ours_malloc_default", "trainer",
         "trainer_kept_memory")


def run_side(side: str, args: argparse.Namespace) -> dict:
    """Run one side in this (fresh) process: a timed run, or a step's peak memory."""
    if side.startswith("memory_"):
        return step_memory(args, fused=side == "memory_fused")
    arrays, _ = load_tokens(args.vocab, 1 << 20, args.seed)
    plan = curriculum_plan([(f"b{i}", len(a)) for i, a in enumerate(arrays)], args.steps,
                           min_tokens=args.seq + 1)
    batches = CurriculumBatches(arrays, plan, args.seq, args.batch, grad_accum=1, seed=args.seed)
    if side.startswith("trainer"):
        if side == "trainer_kept_memory":
            keep_freed_memory()
        return run_trainer(args, WindowDataset(batches, args.steps), Path("/tmp/train_vs_trainer"))
    if side.startswith("ours_adamw_"):
        return run_ours(args, batches, adamw=side.removeprefix("ours_adamw_"))
    changes = {"ours": {}, "ours_unfused": {"fused": False},
               "ours_malloc_default": {"keep_memory": False}, "ours_compile": {"compile": True},
               "ours_eager": {}}[side]
    return run_ours(args, batches, attn="eager" if side == "ours_eager" else None, **changes)


def spawn(side: str, args: argparse.Namespace) -> dict:
    """``run_side`` in a child process, so no side inherits another's process state
    (allocator settings, thread pools, compiled kernels, warm caches)."""
    shape = ["--hidden", args.hidden, "--layers", args.layers, "--heads", args.heads,
             "--intermediate", args.intermediate, "--vocab", args.vocab, "--seq", args.seq,
             "--batch", args.batch, "--steps", args.steps, "--warmup", args.warmup,
             "--seed", args.seed, "--threads", args.threads, "--memory-vocab", args.memory_vocab]
    done = subprocess.run([sys.executable, __file__, "--side", side, *map(str, shape)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"side {side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_memory(args: argparse.Namespace, fused: bool, steps: int = 2) -> dict:
    """Peak RSS over ``steps`` training steps of the model at ``--memory-vocab``, minus the
    RSS just before them (model built): what the steps need above the weights, with and
    without the fused forward. The process peak is reset first (Linux clear_refs)."""
    model = make_model(argparse.Namespace(**{**vars(args), "vocab": args.memory_vocab}))
    gen = torch.Generator().manual_seed(args.seed)
    windows = torch.randint(0, args.memory_vocab, (args.batch, args.seq + 1), generator=gen)
    config = dataclasses.replace(train_config(args), steps=steps, fused=fused, keep_memory=False)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    before = rss_kb("VmRSS")
    train(model, lambda step, micro: windows, config)
    return {"vocab": args.memory_vocab, "fused": fused, "rss_before_mb": before / 1024,
            "peak_rss_mb": rss_kb("VmHWM") / 1024, "step_rss_mb": (rss_kb("VmHWM") - before) / 1024}


def rss_kb(field: str) -> int:
    """A memory field of /proc/self/status, in kB (VmRSS: now, VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


# ---------------------------------------------------------------- diagnostics
def profile_ours(args: argparse.Namespace, batches: CurriculumBatches, steps: int = 4) -> dict:
    """Top ops of our step by self CPU time, and the share of it spent in matmul kernels."""
    from torch.profiler import ProfilerActivity, profile

    model = make_model(args)
    short = argparse.Namespace(**{**vars(args), "steps": steps})
    train(model, batches, train_config(short))  # warm the allocator and thread pool
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(model, batches, train_config(short))
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    matmul_ops = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul",
                  "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward")
    matmul = sum(e.self_cpu_time_total for e in events if e.key in matmul_ops)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    return {"steps": steps, "self_cpu_s": total / 1e6, "matmul_share": matmul / total,
            "top_ops": [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4),
                         "calls": e.count} for e in top]}


def bench_optimizers(args: argparse.Namespace, repeats: int = 5) -> dict[str, float]:
    """Seconds per AdamW update on the model's parameters: for-loop vs foreach vs fused."""
    model = make_model(args)
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    out = {}
    for name, kw in (("for_loop", {"foreach": False}), ("foreach", {"foreach": True}),
                     ("fused", {"fused": True})):
        try:
            opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, **kw)
        except (RuntimeError, ValueError) as exc:  # fused AdamW missing on this build
            out[name] = f"unavailable: {exc}"
            continue
        opt.step()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            opt.step()
            best = min(best, time.perf_counter() - started)
        out[name] = best
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def summarize(rounds: list[dict[str, float]]) -> dict:
    best = max(rounds, key=lambda r: r["tokens_per_s"])
    return {"best": best, "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in rounds),
            "best_tokens_per_cpu_s": max(r["tokens_per_cpu_s"] for r in rounds), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=688)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=3, help="first steps excluded from timing")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-options", action="store_true", help="skip the eager/profile/optimizer options")
    ap.add_argument("--memory", action="store_true",
                    help="also compare a step's peak memory, fused vs transformers forward")
    ap.add_argument("--memory-vocab", type=int, default=32000,
                    help="vocabulary of the step-memory comparison (fused vs transformers forward)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--side", help=argparse.SUPPRESS)  # internal: run one side, print JSON
    args = ap.parse_args(argv)
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    if args.side:
        print(json.dumps(run_side(args.side, args)))
        return 0
    load_before = os.getloadavg()

    peak = measure_peak_flops("cpu", sizes=PEAK_SIZES, repeats=3)
    peak_cpu = peak_flops_per_cpu_s()
    print(f"peak fp32 matmul: {peak / 1e9:.1f} GFLOP/s on {args.threads} threads "
          f"({peak_cpu / 1e9:.1f} GFLOP per CPU-second)", flush=True)

    arrays, source = load_tokens(args.vocab, 1 << 20, args.seed)
    plan = curriculum_plan([(f"b{i}", len(a)) for i, a in enumerate(arrays)], args.steps,
                           min_tokens=args.seq + 1)
    batches = CurriculumBatches(arrays, plan, args.seq, args.batch, grad_accum=1, seed=args.seed)

    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for r in range(args.rounds):
        for side in SIDES[r % len(SIDES):] + SIDES[:r % len(SIDES)]:  # rotate who goes first
            runs[side].append(spawn(side, args))
            last = runs[side][-1]
            print(f"round {r + 1} {side:20s} {last['tokens_per_s']:8.0f} tok/s "
                  f"({last['s_per_step']:.3f} s/step, {last['tokens_per_cpu_s']:.0f} tok/cpu-s)",
                  flush=True)
    summaries = {side: summarize(rounds) for side, rounds in runs.items()}

    counts = parameter_counts(make_model(args))
    per_token = {
        "6N": flops_per_token(counts["non_embedding"], 0, 0, 0),
        "6N+attn": flops_per_token(counts["non_embedding"], args.layers, args.hidden, args.seq),
        # the MFU target's counting: all parameters but the input embedding (lm_head included)
        "6(N+head)": flops_per_token(counts["non_embedding"] + counts["lm_head"], 0, 0, 0),
        "6(N+head)+attn": flops_per_token(counts["non_embedding"] + counts["lm_head"],
                                          args.layers, args.hidden, args.seq),
    }
    ours_s, theirs_s = summaries["ours"], summaries["trainer"]
    speedup = ours_s["best"]["tokens_per_s"] / theirs_s["best"]["tokens_per_s"]

    def mfus(tps: float) -> dict[str, float]:
        return {k: mfu(tps, v, peak) for k, v in per_token.items()}

    result = {
        "config": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                   "intermediate": args.intermediate, "vocab": args.vocab, "seq": args.seq,
                   "batch": args.batch, "steps": args.steps, "warmup_steps_excluded": args.warmup,
                   "rounds": args.rounds, "threads": args.threads, "precision": "fp32",
                   "attn_implementation": make_model(args).config._attn_implementation,
                   "tokens": source, "torch": torch.__version__, "cpus": os.cpu_count(),
                   "cpu": cpu_name(),
                   "transformers": __import__("transformers").__version__},
        "params": counts,
        "flops_per_token": per_token,
        "peak_flops": peak, "peak_sizes": list(PEAK_SIZES),
        "sides": summaries,
        "speedup_vs_trainer": speedup,
        "speedup_vs_trainer_median": ours_s["median_tokens_per_s"] / theirs_s["median_tokens_per_s"],
        "vs_trainer": {side: summ["best"]["tokens_per_s"] / theirs_s["best"]["tokens_per_s"]
                       for side, summ in summaries.items()},
        "speedup_vs_trainer_cpu_time": ours_s["best_tokens_per_cpu_s"] / theirs_s["best_tokens_per_cpu_s"],
        "peak_flops_per_cpu_s": peak_cpu,
        "mfu_ours": mfus(ours_s["best"]["tokens_per_s"]),
        "mfu_ours_cpu_time": {k: mfu(ours_s["best_tokens_per_cpu_s"], v, peak_cpu)
                              for k, v in per_token.items()},
        "mfu": {side: mfus(summ["best"]["tokens_per_s"]) for side, summ in summaries.items()},
        "targets": {"speedup": 1.3, "mfu_6(N+head)": 0.60},
    }
    print(f"speedup vs Trainer: {speedup:.2f}x (median {result['speedup_vs_trainer_median']:.2f}x); "
          + ", ".join(f"{side} {v:.2f}x" for side, v in result["vs_trainer"].items()), flush=True)
    print(f"MFU ours (6(N+head)) {result['mfu_ours']['6(N+head)']:.1%}, (6N) {result['mfu_ours']['6N']:.1%}, "
          f"(6(N+head)+attn) {result['mfu_ours']['6(N+head)+attn']:.1%}; "
          f"Trainer (6N) {result['mfu']['trainer']['6N']:.1%}", flush=True)

    options: dict = {}
    best = ours_s["best"]["tokens_per_s"]
    variants = ["ours_eager", "ours_adamw_foreach", "ours_adamw_for_loop"] if not args.no_options else []
    for side in variants:
        run = spawn(side, args)
        options[side] = {**run, "vs_default": run["tokens_per_s"] / best}
        print(f"option {side}: {run['tokens_per_s']:.0f} tok/s ({run['tokens_per_s'] / best:.2f}x)",
              flush=True)
    if not args.no_options:
        keep_freed_memory()  # the loop's setting, for the in-process diagnostics below
        options["optimizer_s_per_step"] = bench_optimizers(args)
        options["optimizer_s_per_step"]["step_s"] = ours_s["best"]["s_per_step"]
        print(f"optimizer step: {options['optimizer_s_per_step']}", flush=True)
        options["profile_ours"] = profile_ours(args, batches)
        print(f"profile: matmul share {options['profile_ours']['matmul_share']:.1%}", flush=True)
    if args.memory:
        memory = {side: spawn(side, args) for side in ("memory_fused", "memory_unfused")}
        memory["ratio_unfused_over_fused"] = (memory["memory_unfused"]["step_rss_mb"]
                                              / memory["memory_fused"]["step_rss_mb"])
        result["step_memory"] = memory
        print(f"step memory at vocab {args.memory_vocab}: fused "
              f"{memory['memory_fused']['step_rss_mb']:.0f} MB, transformers forward "
              f"{memory['memory_unfused']['step_rss_mb']:.0f} MB", flush=True)
    result["options"] = options
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
