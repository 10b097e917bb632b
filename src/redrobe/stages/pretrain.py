"""`redrobe pretrain`: train a LLaMA model from scratch on the curriculum buckets.

    redrobe pretrain --params params.yaml --buckets data/processed/buckets \
        --tokenizer data/models/tokenizer --output data/models/base \
        --curve data/metrics/pretrain_curve.csv --metrics data/metrics/pretrain.json

Reads the bucket stage's token arrays (easy -> hard) and the tokenizer, builds
``LlamaForCausalLM`` from the ``model`` section, trains it with the ``pretrain``
section (:mod:`redrobe.train`), and writes ``<output>`` (``save_pretrained`` model
and tokenizer: ``AutoModelForCausalLM`` and ``AutoTokenizer`` both load it), the loss
curve CSV, and the metrics JSON (parameter counts, losses, tokens/s, precision, and
which bucket each step range trained on). Per-step metrics and the model go to MLflow.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from redrobe.config import Params
from redrobe.curriculum.layout import INDEX_FILE, open_tokens, read_index
from redrobe.documents import atomic_dir, file_digest
from redrobe.errors import InputError
from redrobe.model import build_model, llama_config, parameter_counts
from redrobe.progress import training_steps
from redrobe.stages import common, devices
from redrobe.tokenizer import load_tokenizer
from redrobe.train import (CurriculumBatches, TrainConfig, curriculum_plan, eval_windows, train,
                           write_curve)

WEIGHTS_FILE = "model.safetensors"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("pretrain", __doc__.splitlines()[0])
    p.add_argument("--buckets", required=True, help="bucket stage output (index.json, *.bin)")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (HF format)")
    p.add_argument("--output", required=True, help="model directory to write")
    p.add_argument("--curve", required=True, help="loss curve CSV to write")
    return p


def open_buckets(root: str | os.PathLike) -> tuple[dict[str, Any], list[np.ndarray], dict[str, np.ndarray]]:
    """The index, the bucket arrays (easy first) and the validation arrays per slice."""
    try:
        index = read_index(root)
        arrays = [open_tokens(root, index, b["file"]) for b in index["buckets"]]
        val = {s: open_tokens(root, index, v["file"]) for s, v in sorted(index["val"].items())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{Path(root) / INDEX_FILE}: unreadable bucket index or token file "
                         f"({type(exc).__name__}: {exc})") from exc
    for entry, array in zip(index["buckets"], arrays):
        if len(array) != entry["tokens"]:
            raise InputError(f"{Path(root) / entry['file']}: {len(array)} tokens, but "
                             f"{INDEX_FILE} says {entry['tokens']}")
    return index, arrays, val


def check_vocabulary(index: dict[str, Any], tokenizer: Any, buckets: str) -> None:
    if index["vocab_size"] > len(tokenizer) or index["eos_id"] != tokenizer.eos_token_id:
        raise InputError(f"{Path(buckets) / INDEX_FILE}: vocab_size {index['vocab_size']} / "
                         f"eos_id {index['eos_id']} do not match the tokenizer "
                         f"({len(tokenizer)} tokens, eos {tokenizer.eos_token_id})")


def lineage_pairs(buckets: str, tokenizer: str, output: Path) -> list[tuple[Path, Path]]:
    """Every input file (bucket arrays, index, tokenizer) -> the weights."""
    inputs = sorted([*Path(buckets).glob("*.bin"), Path(buckets) / INDEX_FILE,
                     *Path(tokenizer).glob("*.json")])
    return [(p, output / WEIGHTS_FILE) for p in inputs]


def run(params: Params, args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    pt, seq_len = params.pretrain, params.model.max_seq_len
    tokenizer = load_tokenizer(args.tokenizer)
    index, arrays, val_arrays = open_buckets(args.buckets)
    check_vocabulary(index, tokenizer, args.buckets)

    device, precision = devices.torch_setup(pt.threads, pt.precision)

    config = llama_config(params.model, vocab_size=len(tokenizer), bos_id=tokenizer.bos_token_id,
                          eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id)
    model = build_model(config, seed=params.shared.seed)
    counts = parameter_counts(model)
    try:
        plan = curriculum_plan([(b["name"], b["tokens"]) for b in index["buckets"]], pt.steps,
                               min_tokens=seq_len + 1)
    except ValueError as exc:
        raise InputError(f"{Path(args.buckets) / INDEX_FILE}: {exc}") from exc
    batches = CurriculumBatches(arrays, plan, seq_len, pt.batch_size, pt.grad_accum,
                                seed=params.shared.seed)
    val = {s: eval_windows(a, seq_len, pt.batch_size, pt.eval_batches) for s, a in val_arrays.items()}
    train_config = TrainConfig(
        steps=pt.steps, lr=pt.lr, min_lr=pt.min_lr, warmup_steps=pt.warmup_steps,
        weight_decay=pt.weight_decay, beta1=pt.beta1, beta2=pt.beta2, grad_clip=pt.grad_clip,
        grad_accum=pt.grad_accum, eval_every=pt.eval_every, precision=precision, device=device,
        seed=params.shared.seed)
    with common.progress("pretrain", pt.steps, unit="step", items="tokens") as progress:
        result = train(model, batches, train_config, val=val,
                       on_step=training_steps(progress, lambda r: tracker.log_metrics(
                           r.as_metrics(), step=r.step)))

    model.to("cpu")
    with atomic_dir(args.output) as out:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    write_curve(args.curve, result.records)
    output = Path(args.output)
    common.log_lineage(tracker, "pretrain", lineage_pairs(args.buckets, args.tokenizer, output))
    tracker.log_artifact(args.curve, "curves")
    tracker.log_model(model, "model", tags={
        "tokenizer": args.tokenizer,
        "tokenizer_digest": file_digest(output / "tokenizer.json"),
        "buckets_index_digest": file_digest(Path(args.buckets) / INDEX_FILE),
        "weights_digest": file_digest(output / WEIGHTS_FILE)})

    last = result.records[-1]
    tokens_per_step = pt.batch_size * pt.grad_accum * seq_len
    return common.metrics_payload(
        "pretrain",
        parameters=counts,
        model={"vocab_size": len(tokenizer), "hidden_size": params.model.hidden_size,
               "num_layers": params.model.num_layers, "max_seq_len": seq_len},
        steps=pt.steps, batch_size=pt.batch_size, grad_accum=pt.grad_accum,
        tokens_seen=result.tokens,
        tokens_per_s=result.tokens / result.train_seconds,
        train_seconds=round(result.train_seconds, 3),
        final_train_loss=last.loss,
        initial_val_loss=result.initial_val.get("overall"),
        final_val_loss=result.final_val.get("overall"),
        val_loss_by_slice={k: v for k, v in result.final_val.items() if k != "overall"},
        precision=precision, device=device, threads=torch.get_num_threads(),
        curriculum=[phase.as_dict(tokens_per_step) for phase in plan],
    )


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("pretrain", argv, build_parser, run,
                          ("shared", "model", "pretrain", "tracking"))
