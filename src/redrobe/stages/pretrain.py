"""`redrobe pretrain`: train a LLaMA model from scratch on the curriculum buckets.

    redrobe pretrain --params params.yaml --buckets data/processed/buckets \
        --tokenizer data/models/tokenizer --output data/models/base \
        --curve data/metrics/pretrain_curve.csv --metrics data/metrics/pretrain.json \
        --checkpoint-dir data/checkpoints/pretrain

Reads the bucket stage's token arrays (easy -> hard) and the tokenizer, builds
``LlamaForCausalLM`` from the ``model`` section, trains it with the ``pretrain``
section (:mod:`redrobe.train`), and writes ``<output>`` (``save_pretrained`` model
and tokenizer: ``AutoModelForCausalLM`` and ``AutoTokenizer`` both load it), the loss
curve CSV, and the metrics JSON (parameter counts, losses, tokens/s, precision, and
which bucket each step range trained on). Per-step metrics and the model go to MLflow.
``--buckets`` and ``--tokenizer`` may be fsspec URLs of committed outputs: they are read
from verified local copies in ``--fetch-cache`` (:func:`redrobe.storage.fetch_tree`);
the model, curve and checkpoints stay local.

The batches follow ``pretrain.curriculum`` (stepwise easy -> hard, smooth competence
pacing, or the shuffled baseline; ``replay`` mixes earlier buckets in): see
:mod:`redrobe.train.data`. ``<output>/data_order.parquet`` says, for every step, micro
batch and lane, which documents of which bucket the window covered; the final
validation loss is reported per slice and per difficulty bucket.

Nothing a rank holds grows with the corpus: the token files are read window by window
through a few open files (:mod:`redrobe.curriculum.cache`), each rank reading only the
rows it trains on; the docs table is streamed by row group for the validation windows,
closed while training, and its training rows are looked up by rank 0 alone, through a
bounded cache, to write the data order (:class:`redrobe.curriculum.order.DocTable`).

Checkpoints (``--checkpoint-dir``; none without it): every ``pretrain.checkpoint_every``
steps and after the last, keeping ``pretrain.keep_checkpoints``. With
``pretrain.resume: auto`` a rerun (after a crash or a kill) continues from the newest
valid checkpoint whose fingerprint (model, pretrain params except the checkpoint and
thread knobs, seed, precision, the bucket index and tokenizer digests) matches, and
reaches the same loss curve; otherwise it starts fresh and says why on stderr. The
metrics name the checkpoint it resumed from and how many it wrote. MFU per step
divides 6N + 12LHT FLOPs per token (:mod:`redrobe.train.mfu`) by the matmul peak
measured at the start (or ``pretrain.peak_flops``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from redrobe.config import Params
from redrobe.curriculum.cache import TokenFile, TokenFiles
from redrobe.curriculum.layout import INDEX_FILE, read_index
from redrobe.curriculum.order import DocTable, write_data_order
from redrobe.documents import atomic_dir, file_digest
from redrobe.errors import InputError
from redrobe.model import build_model, fused, llama_config, parameter_counts, save_model
from redrobe.progress import training_steps
from redrobe.stages import common
from redrobe.tokenizer import load_tokenizer
from redrobe.train import TrainConfig, eval_windows, torch_setup, train, write_curve
from redrobe.train.checkpoint import Checkpointer, fingerprint
from redrobe.train.data import bucket_windows, make_batches
from redrobe.train.deepspeed import build_stepper, distributed_context, full_weights
from redrobe.train.loop import split_bucket_losses
from redrobe.train.mfu import flops_per_token, measure_peak_flops

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

WEIGHTS_FILE = "model.safetensors"
#: which documents every step saw (step, micro, lane, bucket, doc_id, start, end)
DATA_ORDER_FILE = "data_order.parquet"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("pretrain", __doc__.splitlines()[0])
    p.add_argument("--buckets", required=True, help="bucket stage output: index.json, *.bin (a path or URL)")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory, HF format (a path or URL)")
    p.add_argument("--output", required=True, help="model directory to write")
    p.add_argument("--curve", required=True, help="loss curve CSV to write")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where to keep resumable checkpoints (not a DVC output); none if omitted")
    common.add_fetch_cache(p)
    return p


#: Pretrain params that do not change the loss curve: a resume may change them.
NOT_FINGERPRINTED = ("checkpoint_every", "keep_checkpoints", "resume", "threads", "peak_flops",
                     "keep_memory")


def run_fingerprint(params: Params, args: argparse.Namespace, precision: str, device: str,
                    world_size: int = 1) -> str:
    """What a checkpoint must match to be resumed: everything that shapes the curve."""
    pretrain = {k: v for k, v in dataclasses.asdict(params.pretrain).items()
                if k not in NOT_FINGERPRINTED}
    return fingerprint({
        "model": dataclasses.asdict(params.model), "pretrain": pretrain,
        "seed": params.shared.seed, "precision": precision, "device": device,
        "world_size": world_size,
        "buckets_index": file_digest(Path(args.buckets) / INDEX_FILE),
        "tokenizer": file_digest(Path(args.tokenizer) / "tokenizer.json")})


def use_compile(setting: str | bool, device: str) -> bool:
    """Compile on CUDA only when "auto". On CPU a compiled step was 1.34x faster at best but
    compiling took 141 s, repaid only after >1000 steps (docs/training.md, training loop)."""
    return device == "cuda" if setting == "auto" else bool(setting)


@dataclass
class Buckets:
    """The bucket stage's output as a rank reads it: the index, its token files (a bounded
    set of open descriptors), the bucket arrays (easy first), the validation arrays per
    slice and the docs table (row groups decoded on demand into a bounded cache)."""

    index: dict[str, Any]
    files: TokenFiles
    arrays: list[TokenFile]
    val: dict[str, TokenFile]
    table: DocTable

    def close(self) -> None:
        self.table.close()
        self.files.close()


def open_buckets(root: str | os.PathLike) -> Buckets:
    """The buckets directory at ``root``: sizes checked against the index, no token read."""
    try:
        index = read_index(root)
        files = TokenFiles.of_index(root, index)
        arrays = [files.file(b["file"]) for b in index["buckets"]]
        val = {s: files.file(v["file"]) for s, v in sorted(index["val"].items())}
        table = DocTable(root, index, files)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{Path(root) / INDEX_FILE}: unreadable bucket index or token file "
                         f"({type(exc).__name__}: {exc})") from exc
    for entry, array in zip(index["buckets"], arrays):
        if len(array) != entry["tokens"]:
            raise InputError(f"{Path(root) / entry['file']}: {len(array)} tokens, but "
                             f"{INDEX_FILE} says {entry['tokens']}")
    return Buckets(index, files, arrays, val, table)


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


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any] | None:
    # inputs on object storage are read from local copies (token files are pread)
    args = common.fetched(args, "buckets", "tokenizer")
    buckets = open_buckets(args.buckets)
    try:
        return pretrain(params, args, tracker, buckets)
    finally:
        buckets.close()


def pretrain(params: Params, args: argparse.Namespace, tracker: Tracker,
             buckets: Buckets) -> dict[str, Any] | None:
    """The stage on opened buckets: rank 0 writes and returns the metrics, others None."""
    pt, seq_len = params.pretrain, params.model.max_seq_len
    index, table = buckets.index, buckets.table
    tokenizer = load_tokenizer(args.tokenizer)
    check_vocabulary(index, tokenizer, args.buckets)

    device, precision = torch_setup(common.torch_threads(pt.threads), pt.precision)
    try:  # rank and world size from the launcher (deepspeed / torchrun); rank 0 of 1 without
        ctx = distributed_context(pt.distributed, env=os.environ)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if pt.distributed.backend != "none":
        device = ctx.device

    config = llama_config(params.model, vocab_size=len(tokenizer), bos_id=tokenizer.bos_token_id,
                          eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id)
    model = build_model(config, seed=params.shared.seed)
    counts = parameter_counts(model)
    names, cur = [b["name"] for b in index["buckets"]], pt.curriculum
    try:
        batches = make_batches(cur.schedule, buckets.arrays, names, pt.steps, seq_len, pt.batch_size,
                               pt.grad_accum, params.shared.seed, replay=cur.replay,
                               competence_start=cur.competence_start, pacing_end=cur.pacing_end)
    except ValueError as exc:
        raise InputError(f"{Path(args.buckets) / INDEX_FILE}: {exc}") from exc
    val = {s: eval_windows(a, seq_len, pt.batch_size, pt.eval_batches) for s, a in buckets.val.items()}
    # the same held-out documents grouped by difficulty bucket: which bucket a loss comes from;
    # every rank evaluates, and this streams only the validation rows of the docs table
    val_tokens = pt.eval_batches * pt.batch_size * (seq_len + 1)
    val_buckets = {b: eval_windows(a, seq_len, pt.batch_size, pt.eval_batches)
                   for b, a in table.val_by_bucket(val_tokens).items() if a.size > seq_len}
    table.close()   # nothing of the docs table is held while training (rank 0 reopens it below)
    # the untied lm_head is a matmul every token pays (0 when tied): counted, as in
    # transformers' num_parameters(exclude_embeddings=True) and the project's MFU target do
    per_token = flops_per_token(counts["non_embedding"] + counts["lm_head"], params.model.num_layers,
                                params.model.hidden_size, seq_len)
    peak = pt.peak_flops or measure_peak_flops(device)
    train_config = TrainConfig.from_params(
        pt, grad_accum=pt.grad_accum, eval_every=pt.eval_every, precision=precision, device=device,
        seed=params.shared.seed, gradient_checkpointing=pt.gradient_checkpointing,
        compile=use_compile(pt.compile, device), fused=pt.fused,
        keep_memory=pt.keep_memory, flops_per_token=per_token, peak_flops=peak)
    checkpointer = None
    if args.checkpoint_dir:  # ZeRO partitions the optimizer state: one directory per rank
        directory = Path(args.checkpoint_dir) / (f"rank-{ctx.rank}" if ctx.active else "")
        checkpointer = Checkpointer(directory,
                                    run_fingerprint(params, args, precision, device, ctx.world_size),
                                    every=pt.checkpoint_every, keep=pt.keep_checkpoints)
    stepper = build_stepper(model, train_config, pt.distributed, ctx, batch_size=pt.batch_size)
    with common.progress("pretrain", pt.steps, unit="step", items="tokens") as progress:
        result = train(model, ctx.shard(batches), train_config, val=val,
                       on_step=ctx.on_step(training_steps(progress, lambda r: tracker.log_metrics(
                           r.as_metrics(), step=r.step))),
                       stepper=stepper, checkpointer=checkpointer, resume=pt.resume == "auto",
                       val_buckets=val_buckets)
    result = ctx.reduce_result(result)
    if result.resume_note:
        print(f"redrobe pretrain: {result.resume_note}", file=sys.stderr)

    with full_weights(stepper):  # ZeRO-3: every rank gathers, rank 0 writes
        if not ctx.is_main:
            return None
        model.to("cpu")
        with atomic_dir(args.output) as out:
            save_model(model, out)
            tokenizer.save_pretrained(out)
            # rank 0 only: the table's training rows are read here, one cached row group at a time
            write_data_order(out / DATA_ORDER_FILE, batches, table, pt.steps)
    write_curve(args.curve, result.records)
    output = Path(args.output)
    common.log_lineage(tracker, "pretrain",   # inputs fetched from a URL are named by it
                       [(common.source_of(args, i), o)
                        for i, o in lineage_pairs(args.buckets, args.tokenizer, output)],
                       committed=list(common.fetched_sources(args).values()))
    tracker.log_artifact(args.curve, "curves")
    tracker.log_artifact(output / DATA_ORDER_FILE, "curriculum")
    tracker.log_model(model, "model", tags={
        "tokenizer": common.source_of(args, args.tokenizer),
        "tokenizer_digest": file_digest(output / "tokenizer.json"),
        "buckets_index_digest": file_digest(Path(args.buckets) / INDEX_FILE),
        "weights_digest": file_digest(output / WEIGHTS_FILE)})

    last = result.records[-1]
    tokens_per_step = pt.batch_size * pt.grad_accum * seq_len
    by_slice, by_bucket = split_bucket_losses(result.final_val)
    return common.metrics_payload(
        "pretrain",
        parameters=counts,
        model={"vocab_size": len(tokenizer), "hidden_size": params.model.hidden_size,
               "num_layers": params.model.num_layers, "max_seq_len": seq_len},
        steps=pt.steps, batch_size=pt.batch_size, grad_accum=pt.grad_accum,
        tokens_seen=result.tokens,
        tokens_per_s=result.tokens / result.train_seconds,
        train_seconds=round(result.train_seconds, 3),
        flops_per_token=per_token, peak_flops=peak,
        mfu=result.tokens / result.train_seconds * per_token / peak,
        gradient_checkpointing=pt.gradient_checkpointing, compiled=train_config.compile,
        fused_forward=train_config.fused and fused.supports(stepper.module if stepper else model),
        checkpoint_dir=args.checkpoint_dir, checkpoints_written=len(result.checkpoints),
        resumed_from=result.resumed_from, resume_note=result.resume_note,
        final_train_loss=last.loss,
        initial_val_loss=result.initial_val.get("overall"),
        final_val_loss=result.final_val.get("overall"),
        val_loss_by_slice=by_slice,
        precision=precision, device=device, threads=torch.get_num_threads(),
        val_loss_by_bucket=by_bucket,
        curriculum={"schedule": cur.schedule, "replay": cur.replay,
                    "phases": [p.as_dict(tokens_per_step) for p in getattr(batches, "plan", [])],
                    "bucket_windows": dict(zip(names, bucket_windows(batches, pt.steps).tolist()))},
    )


def main(argv: Sequence[str] | None = None) -> int:
    if os.environ.get("RANK", "0") != "0":
        # under a launcher only rank 0 logs to MLflow and writes the metrics (run returns None)
        os.environ["REDROBE_TRACKING"] = "off"
    return common.execute("pretrain", argv, build_parser, run)
