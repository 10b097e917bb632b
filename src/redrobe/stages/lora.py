"""`redrobe lora`: adapt the base model to one slice with LoRA; save adapter and merged model.

    redrobe lora --params params.yaml --input data/interim/dedup --base data/models/base \
        --output data/models/lora --curve data/metrics/lora_curve.csv \
        --metrics data/metrics/lora.json

Streams the training split of ``params.lora.slice`` from the deduplicated shards (all its
language partitions when it is routed; ``redrobe.curriculum.split.is_validation``
decides the split, per partition), tokenizes it with the
base model's tokenizer, trains LoRA adapters with the pretraining loop and writes
``<output>/adapter`` (peft, adapter only), ``<output>/merged`` (adapter folded into the
weights, with the tokenizer), ``<output>/task.json`` (what the adapter was trained
on), the loss curve CSV and the metrics JSON.

With ``lora.quantization: 4bit`` (QLoRA) the base is loaded as NF4 on the GPU; on a
machine without CUDA the stage stops before reading anything, with exit code 2 and
the message ``redrobe.lora.NO_CUDA_FOR_4BIT``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch

from redrobe.config import ConfigError, Params, Shared, load_params
from redrobe.curriculum.split import is_validation, split_thresholds
from redrobe.documents import (
    Document,
    atomic_dir,
    file_digest,
    list_shards,
    partition_of,
    read_documents,
    write_json,
)
from redrobe.errors import InputError
from redrobe.lora import (
    ADAPTER_DIR,
    MERGED_DIR,
    TASK_FILE,
    apply_lora,
    load_model,
    lora_parameter_count,
    quantization_problem,
    save_lora,
    token_buffers,
    trainable_parameters,
)
from redrobe.progress import training_steps
from redrobe.stages import common
from redrobe.train import TrainConfig, torch_setup, train_on_array, write_curve

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

ADAPTER_WEIGHTS = "adapter_model.safetensors"
WEIGHTS_FILE = "model.safetensors"
#: the mark :func:`split_documents` puts on a held-out validation document
HELD_OUT = "held_out"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("lora", __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="deduplicated shards (<input>/<slice>/part-*.parquet)")
    p.add_argument("--base", required=True, help="pretrained model directory")
    p.add_argument("--output", required=True, help="directory for adapter/ and merged/")
    p.add_argument("--curve", required=True, help="loss curve CSV to write")
    return p


def lineage_pairs(shards: Sequence[Path], base: Path, output: Path) -> list[tuple[Path, Path]]:
    """The slice's shards and the base weights -> the adapter and merged weights."""
    outputs = [output / ADAPTER_DIR / ADAPTER_WEIGHTS, output / MERGED_DIR / WEIGHTS_FILE]
    return [(i, o) for i in [*shards, base / WEIGHTS_FILE] for o in outputs]


def split_documents(shards: Sequence[Path], root: str, shared: Shared) -> Iterator[Document]:
    """The documents of ``shards``, each marked :data:`HELD_OUT` or not by its partition's
    split threshold (a routed slice's languages are split one by one). The thresholds
    come from the whole corpus, so the split is the one tokenize and bucket made."""
    thresholds = split_thresholds(list_shards(root), shared.val_fraction, shared.seed,
                                  shared.min_val_docs, root=root)
    for shard in shards:
        threshold = thresholds[partition_of(shard, root)]
        for doc in read_documents(shard, shared.batch_docs):
            yield doc.with_extra(**{HELD_OUT: is_validation(doc.id, threshold, shared.seed)})


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    lp, shared = params.lora, params.shared
    shards = list_shards(args.input, lp.slice)
    if not shards:
        raise InputError(f"{Path(args.input) / lp.slice}: no shards for lora.slice {lp.slice!r}")
    model, tokenizer = load_model(args.base, lp.quantization)
    seq_len = model.config.max_position_embeddings

    device, precision = torch_setup(common.torch_threads(lp.threads), lp.precision)

    # Enough tokens for one pass over fresh windows; the buffer never holds more.
    docs = split_documents(shards, args.input, shared)
    buffers = token_buffers(
        docs, tokenizer, tokenizer.eos_token_id, lambda doc: doc.extra[HELD_OUT],
        train_tokens=lp.steps * lp.batch_size * seq_len + 1,
        val_tokens=lp.eval_batches * lp.batch_size * (seq_len + 1))
    if len(buffers.train) < seq_len + 1:
        raise InputError(f"{Path(args.input) / lp.slice}: the training split has "
                         f"{len(buffers.train)} tokens, fewer than one window ({seq_len + 1})")

    torch.manual_seed(shared.seed)  # LoRA's A matrices are initialized randomly
    model = apply_lora(model, r=lp.r, alpha=lp.alpha, dropout=lp.dropout,
                       target_modules=lp.target_modules)
    counts = trainable_parameters(model)
    try:
        expected: int | None = lora_parameter_count(model.config, lp.r, lp.target_modules)
    except ValueError:  # a target outside the LLaMA projections: no closed form to check
        expected = None
    config = TrainConfig.from_params(lp, eval_every=lp.eval_every, precision=precision,
                                     device=device, seed=shared.seed)
    with common.progress("lora", lp.steps, unit="step", items="tokens") as progress:
        on_step = training_steps(progress,
                                 lambda r: tracker.log_metrics(r.as_metrics(), step=r.step))
        result = train_on_array(model, buffers.train, buffers.val, seq_len=seq_len,
                                batch_size=lp.batch_size, eval_batches=lp.eval_batches,
                                config=config, on_step=on_step)

    # QLoRA: merge into the full-precision base (a 4-bit base would re-quantize the sum)
    full_base = load_model(args.base)[0] if lp.quantization == "4bit" else None
    if full_base is None:
        model.to("cpu")
    task = {"slice": lp.slice, "r": lp.r, "alpha": lp.alpha, "target_modules": lp.target_modules,
            "quantization": lp.quantization, "steps": lp.steps,
            "train_docs": buffers.train_docs, "train_tokens": len(buffers.train),
            "base_weights_digest": file_digest(Path(args.base) / WEIGHTS_FILE)}
    with atomic_dir(args.output) as out:
        merged = save_lora(model, tokenizer, out, full_precision_base=full_base)
        write_json(out / TASK_FILE, task)
    write_curve(args.curve, result.records)
    output = Path(args.output)
    common.log_lineage(tracker, "lora", lineage_pairs(shards, Path(args.base), output))
    tracker.log_artifact(args.curve, "curves")
    tracker.log_artifact(output / ADAPTER_DIR, "adapter")
    tracker.log_model(merged, "merged", tags={
        "slice": lp.slice, "base_weights_digest": task["base_weights_digest"],
        "weights_digest": file_digest(output / MERGED_DIR / WEIGHTS_FILE)})

    return common.metrics_payload(
        "lora",
        slice=lp.slice, r=lp.r, alpha=lp.alpha, target_modules=lp.target_modules,
        trainable_parameters=counts["trainable"], total_parameters=counts["total"],
        trainable_fraction=counts["fraction"],
        # r * (d_in + d_out) per adapted matrix x layers, from the config alone
        trainable_parameters_formula=expected, quantization=lp.quantization,
        steps=lp.steps, batch_size=lp.batch_size, seq_len=seq_len,
        train_docs=buffers.train_docs, val_docs=buffers.val_docs,
        train_buffer_tokens=len(buffers.train), val_buffer_tokens=len(buffers.val),
        tokens_seen=result.tokens, tokens_per_s=result.tokens / result.train_seconds,
        train_seconds=round(result.train_seconds, 3),
        final_train_loss=result.records[-1].loss,
        initial_val_loss=result.initial_val.get("overall"),
        final_val_loss=result.final_val.get("overall"),
        precision=precision, device=device, threads=torch.get_num_threads(),
    )


def hardware_problem(argv: Sequence[str] | None) -> str | None:
    """Why these params cannot train on this machine (QLoRA without CUDA), else None.

    Checked before ``common.execute`` so the stage stops like a config error (exit 2)
    without opening a tracking run; a params file that does not load is left to execute.
    """
    args = build_parser().parse_args(argv)
    try:
        quantization = load_params(args.params).lora.quantization
    except ConfigError:
        return None
    return quantization_problem(quantization, cuda_available=torch.cuda.is_available())


def main(argv: Sequence[str] | None = None) -> int:
    problem = hardware_problem(argv)
    if problem is not None:
        print(f"redrobe lora: error: {problem}", file=sys.stderr)
        return 2
    return common.execute("lora", argv, build_parser, run)
