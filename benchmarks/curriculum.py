"""Benchmark: curriculum schedules vs the shuffled baseline, validation loss at equal tokens.

    python benchmarks/curriculum.py                     # -> benchmarks/results/curriculum.json
    python benchmarks/curriculum.py --buckets data/processed/buckets --steps 400 --seeds 2

Data: the bucket stage's real output (``--buckets``, default data/processed/buckets).
When it is absent, ``--build DIR`` first runs the pipeline's stages ingest -> clean ->
dedup -> quality -> tokenize -> bucket (``redrobe <stage>``, exactly the dvc.yaml
commands with paths under DIR) on params.yaml with semantic dedup off and a
1024-token vocabulary (about 5 minutes on 2 cores), then benchmarks on DIR's buckets.

Each run trains the same tiny LLaMA (``--hidden`` / ``--layers``, seeded identically)
with the project's loop (:func:`redrobe.train.train`) for ``--steps`` steps of
``--batch`` x ``--seq`` tokens, so every schedule sees exactly the same number of
tokens; only the data order differs:

- ``shuffled``: every window of every bucket in a seeded permutation (the baseline);
- ``stepwise``: buckets easy -> hard, steps proportional to tokens, no replay;
- ``stepwise_replay``: the same with ``--replay`` of each batch from easier buckets;
- ``smooth_replay``: competence pacing (Platanios et al. 2019) with the same replay.

Validation: the held-out documents of every slice (fixed windows, ``--eval-batches``
batches per slice) give the loss per slice and ``overall`` (mean over all windows);
the same documents regrouped by the difficulty bucket of their score give the loss
per bucket. ``ratio_vs_shuffled`` = a schedule's final overall validation loss /
the shuffled baseline's (below 1: the curriculum helps), averaged over ``--seeds``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from redrobe.config import Model, merge_profile
from redrobe.curriculum.layout import open_tokens, read_index
from redrobe.curriculum.order import DocTable
from redrobe.model import build_model, llama_config
from redrobe.train import TrainConfig, estimate_loss, eval_windows, train
from redrobe.train.data import bucket_windows, make_batches

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "curriculum.json"
RUNS = {  # name -> (schedule, uses replay)
    "shuffled": ("shuffled", False),
    "stepwise": ("stepwise", False),
    "stepwise_replay": ("stepwise", True),
    "smooth_replay": ("smooth", True),
}
BUILD_OVERRIDES = {"dedup": {"semantic": {"enabled": False}}, "tokenize": {"vocab_size": 1024}}


def build_buckets(work: Path) -> Path:
    """Run ingest..bucket into ``work`` with the dvc.yaml commands; return the buckets dir."""
    work.mkdir(parents=True, exist_ok=True)
    params = merge_profile(yaml.safe_load((ROOT / "params.yaml").read_text()), BUILD_OVERRIDES)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    d, p = work / "data", str(work / "params.yaml")
    commands = [
        ["ingest", "--cache-dir", str(ROOT / ".cache/dists"), "--output", f"{d}/raw",
         "--removed", f"{d}/removed/ingest", "--quarantine", f"{d}/quarantine/ingest"],
        ["clean", "--input", f"{d}/raw", "--output", f"{d}/clean", "--removed", f"{d}/removed/clean",
         "--quarantine", f"{d}/quarantine/clean", "--cache-dir", f"{d}/cache/clean"],
        ["dedup", "--input", f"{d}/clean", "--output", f"{d}/dedup", "--removed",
         f"{d}/removed/dedup", "--cache-dir", f"{d}/cache/dedup"],
        ["quality", "--raw", f"{d}/raw", "--clean", f"{d}/clean", "--input", f"{d}/dedup",
         "--clean-metrics", f"{d}/metrics/clean.json", "--dedup-metrics", f"{d}/metrics/dedup.json",
         "--output", f"{d}/quality", "--docs", f"{d}/quality_docs"],
        ["tokenize", "--input", f"{d}/dedup", "--gate", f"{d}/quality", "--output", f"{d}/tokenizer"],
        ["bucket", "--input", f"{d}/dedup", "--tokenizer", f"{d}/tokenizer", "--output",
         f"{d}/buckets"],
    ]
    env = {**os.environ, "REDROBE_TRACKING": "off"}
    for stage, *args in commands:
        cmd = ["redrobe", stage, "--params", p, *args, "--metrics", f"{d}/metrics/{stage}.json"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    return d / "buckets"


def run_one(name: str, seed: int, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    schedule, uses_replay = RUNS[name]
    batches = make_batches(schedule, data["arrays"], data["names"], args.steps, args.seq,
                           args.batch, 1, seed, replay=args.replay if uses_replay else 0.0)
    model = build_model(llama_config(Model(hidden_size=args.hidden, num_layers=args.layers,
                                           num_heads=2, num_kv_heads=2,
                                           intermediate_size=args.hidden * 8 // 3,
                                           max_seq_len=args.seq),
                                     vocab_size=data["vocab_size"], bos_id=None,
                                     eos_id=data["eos_id"], pad_id=None), seed=seed)
    config = TrainConfig(steps=args.steps, lr=args.lr, min_lr=args.lr / 10,
                         warmup_steps=max(1, args.steps // 20), weight_decay=0.1,
                         eval_every=max(1, args.steps // 4), seed=seed)
    started = time.perf_counter()
    result = train(model, batches, config, val=data["val_slices"])
    seconds = time.perf_counter() - started
    by_bucket = estimate_loss(model, data["val_buckets"], "fp32", "cpu")
    by_bucket.pop("overall", None)   # the slice windows' overall is the headline number
    windows = bucket_windows(batches, args.steps)
    return {
        "final_val": result.final_val["overall"],
        "val_by_slice": {k: v for k, v in result.final_val.items() if k != "overall"},
        "val_by_bucket": by_bucket,
        "curve": [{"step": r.step, "tokens": r.tokens, "val": r.val_loss}
                  for r in result.records if r.val_loss is not None],
        "final_train_loss": result.records[-1].loss,
        "bucket_share": dict(zip(data["names"], (windows / windows.sum()).round(4).tolist())),
        "tokens": result.tokens, "seconds": round(seconds, 1),
    }


def load(buckets: Path, args: argparse.Namespace) -> dict[str, Any]:
    index = read_index(buckets)
    arrays = [open_tokens(buckets, index, b["file"]) for b in index["buckets"]]
    per_bucket = DocTable.read(buckets).val_by_bucket(args.eval_batches * args.batch * (args.seq + 1))
    return {
        "arrays": arrays, "names": [b["name"] for b in index["buckets"]],
        "vocab_size": index["vocab_size"], "eos_id": index["eos_id"], "score": index["score"],
        "bucket_tokens": {b["name"]: b["tokens"] for b in index["buckets"]},
        "val_slices": {s: eval_windows(open_tokens(buckets, index, v["file"]), args.seq,
                                       args.batch, args.eval_batches)
                       for s, v in sorted(index["val"].items())},
        "val_buckets": {k: eval_windows(a, args.seq, args.batch, args.eval_batches)
                        for k, a in per_bucket.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buckets", default=str(ROOT / "data/processed/buckets"))
    ap.add_argument("--build", default="", help="when --buckets is absent: build them under DIR")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--replay", type=float, default=0.1)
    ap.add_argument("--eval-batches", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)  # 2 threads crawl on a shared 2-core box
    ap.add_argument("--output", default=str(RESULTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    buckets = Path(args.buckets)
    if not (buckets / "index.json").is_file():
        if not args.build:
            print(f"{buckets}: no buckets (run `dvc repro bucket`, or pass --build DIR)", file=sys.stderr)
            return 2
        buckets = build_buckets(Path(args.build))
    data = load(buckets, args)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNS}
    for seed in range(1234, 1234 + args.seeds):
        for name in RUNS:
            runs[name].append(run_one(name, seed, data, args))
            print(f"seed {seed} {name:16s} val {runs[name][-1]['final_val']:.4f} "
                  f"({runs[name][-1]['seconds']} s)", flush=True)

    mean = {name: float(np.mean([r["final_val"] for r in rs])) for name, rs in runs.items()}
    report = {
        "command": "python benchmarks/curriculum.py " + " ".join(argv or sys.argv[1:]),
        "buckets": str(buckets), "score": data["score"], "bucket_tokens": data["bucket_tokens"],
        "config": {k: v for k, v in vars(args).items() if k not in ("buckets", "build", "output")},
        "tokens_per_run": args.steps * args.batch * args.seq,
        "mean_final_val": mean,
        "ratio_vs_shuffled": {n: round(v / mean["shuffled"], 4) for n, v in mean.items()},
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for name, ratio in report["ratio_vs_shuffled"].items():
        print(f"{name:16s} final val {mean[name]:.4f}  ratio vs shuffled {ratio:.4f}")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
