"""`redrobe evaluate`: held-out perplexity and bits per byte per slice, and generation speed.

    redrobe evaluate --params params.yaml --buckets data/processed/buckets \
        --base data/models/base --lora data/models/lora --metrics data/metrics/eval.json

Scores the base model and the LoRA merged model (``<lora>/merged``) on every slice's
validation array of the bucket stage (at most ``evaluate.max_tokens_per_slice``
tokens each, windows of the model's ``max_position_embeddings``), times greedy
generation, and writes eval.json:
``{"models": {"base": {...}, "lora": {...}}, "lora_slice": ..., "delta_bits_per_byte": {...}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from redrobe.config import Params
from redrobe.curriculum.layout import INDEX_FILE, open_tokens, read_index
from redrobe.errors import InputError
from redrobe.evaluate import deltas, evaluate_model
from redrobe.lora import MERGED_DIR, TASK_FILE, load_model
from redrobe.stages import common, devices


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("evaluate", __doc__.splitlines()[0])
    p.add_argument("--buckets", required=True, help="bucket stage output (val-<slice>.bin)")
    p.add_argument("--base", required=True, help="pretrained model directory")
    p.add_argument("--lora", required=True, help="lora stage output (merged/, task.json)")
    return p


def validation_arrays(root: str) -> dict[str, np.ndarray]:
    try:
        index = read_index(root)
        return {s: open_tokens(root, index, v["file"]) for s, v in sorted(index["val"].items())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{Path(root) / INDEX_FILE}: unreadable validation arrays "
                         f"({type(exc).__name__}: {exc})") from exc


def lora_task(root: str) -> dict[str, Any]:
    path = Path(root) / TASK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the LoRA task description ({exc})") from exc


def run(params: Params, args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    ep = params.evaluate
    val = validation_arrays(args.buckets)
    task = lora_task(args.lora)
    devices.torch_setup(ep.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    models = {}
    for name, path in (("base", Path(args.base)), ("lora", Path(args.lora) / MERGED_DIR)):
        model, tokenizer = load_model(path)
        models[name] = evaluate_model(
            model.to(device), tokenizer, val, seq_len=model.config.max_position_embeddings,
            max_tokens=ep.max_tokens_per_slice, batch_size=ep.batch_size, prompt=ep.gen_prompt,
            gen_tokens=ep.gen_tokens, device=device)
        del model
    return common.metrics_payload(
        "evaluate", models=models, lora_slice=task["slice"],
        delta_bits_per_byte=deltas(models["base"], models["lora"]),
        max_tokens_per_slice=ep.max_tokens_per_slice, device=device,
        threads=torch.get_num_threads())


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("evaluate", argv, build_parser, run, ("shared", "evaluate", "tracking"))
