"""Benchmark: the architecture variants against the default model, trained on equal tokens.

    nice python benchmarks/architecture.py              # -> benchmarks/results/architecture.json
    python benchmarks/architecture.py --steps 200 --seq-len 512 --window 64

Variants (redrobe.model.variants): ``default`` (separate FFNs, full attention),
``ffn_sharing=all`` (one MLP for every layer), ``sliding_window`` (causal attention over
the last ``--window`` positions, blockwise kernel). Each is built from the same seed and
trained by redrobe's own loop (``redrobe.train.train_on_array``: AdamW, warmup + cosine,
clipping) on the same token windows in the same order, so losses compare at equal
tokens. Reported per variant: parameters (total / non-embedding, and the FFN-sharing
saving by formula), tokens/s (training steps only), final train loss (mean of the last
10 steps) and validation loss at the end.

Tokens, the first that exists: ``data/processed/buckets`` (the bucket stage's arrays:
all buckets concatenated, its validation arrays); else the text of ``data/interim/dedup``
split with the pipeline's train/val split (``is_validation``), tokenized with
``data/models/tokenizer`` or, when that is absent, a byte-level BPE trained here on the
training split (``redrobe.tokenizer.train_tokenizer``); else synthetic Zipf tokens. The
JSON says which (``data``).

Attention compute: in the training run the attention is a small share of the FLOPs at
these sizes, so the tokens/s of the sliding-window model mostly shows the kernel's
overhead. The ``attention`` section therefore also times the attention op alone
(forward + backward, full causal SDPA vs the blockwise window kernel) at longer
sequences, and gives the attention FLOPs per layer of both from
``variants.attention_pairs``: ``computed`` is what each kernel multiplies, ``kept`` what an
ideal kernel would. The machine is shared: timings are noisy, ratios within one run
are what to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redrobe.config import Model, Params
from redrobe.curriculum.split import is_validation
from redrobe.documents import list_shards, read_documents
from redrobe.model import build_model, llama_config, parameter_counts, variants
from redrobe.train import TrainConfig
from redrobe.train.loop import train_on_array

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "architecture.json"
BUCKETS = ROOT / "data" / "processed" / "buckets"
DEDUP = ROOT / "data" / "interim" / "dedup"
TOKENIZER = ROOT / "data" / "models" / "tokenizer"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--window", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=172)
    p.add_argument("--vocab", type=int, default=2048, help="BPE size when training one here")
    p.add_argument("--max-chars", type=int, default=1_500_000, help="dedup text read, at most")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--attention-lengths", type=int, nargs="*", default=[256, 1024, 2048])
    p.add_argument("--output", type=Path, default=RESULTS)
    return p.parse_args()


# --- tokens ---------------------------------------------------------------------------

def bucket_tokens() -> tuple[np.ndarray, np.ndarray, int, str]:
    from redrobe.curriculum.layout import open_tokens, read_index

    index = read_index(BUCKETS)
    train = np.concatenate([open_tokens(BUCKETS, index, b["file"]) for b in index["buckets"]])
    val = np.concatenate([open_tokens(BUCKETS, index, v["file"])
                          for _, v in sorted(index["val"].items())])
    return train, val, int(index["vocab_size"]), f"bucket arrays in {BUCKETS.relative_to(ROOT)}"


def dedup_texts(max_chars: int, seed: int, fraction: float) -> tuple[list[str], list[str]]:
    """Train and validation texts of the dedup output, round-robin over slices so that
    every slice contributes before the character budget runs out."""
    streams = [(d for shard in list_shards(DEDUP, s.name) for d in read_documents(shard))
               for s in sorted(DEDUP.iterdir()) if s.is_dir()]
    train, val, chars = [], [], 0
    while streams and chars < max_chars:
        for stream in list(streams):
            doc = next(stream, None)
            if doc is None:
                streams.remove(stream)
                continue
            (val if is_validation(doc.id, fraction, seed) else train).append(doc.text)
            chars += len(doc.text)
    return train, val


def text_tokens(args: argparse.Namespace, seed: int,
                fraction: float) -> tuple[np.ndarray, np.ndarray, int, str]:
    from tokenizers import Tokenizer

    from redrobe.tokenizer import EOS_TOKEN, encode_texts, train_bpe

    train_texts, val_texts = dedup_texts(args.max_chars, seed, fraction)
    if (TOKENIZER / "tokenizer.json").exists():
        encoder, how = Tokenizer.from_file(str(TOKENIZER / "tokenizer.json")), "the trained tokenizer"
    else:
        encoder, how = train_bpe(train_texts, args.vocab, min_frequency=2), \
            f"a {args.vocab}-token BPE trained here on the train split (no data/models/tokenizer)"
    eos = encoder.token_to_id(EOS_TOKEN)

    def pack(texts: list[str]) -> np.ndarray:
        return np.array([t for ids in encode_texts(encoder, texts) for t in [*ids, eos]], dtype=np.int64)

    return (pack(train_texts), pack(val_texts), encoder.get_vocab_size(),
            f"data/interim/dedup text ({len(train_texts)} train / {len(val_texts)} val docs), {how}")


def zipf_tokens(vocab: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    rng = np.random.default_rng(seed)
    tokens = np.minimum(rng.zipf(1.2, size=n), vocab) - 1
    cut = int(n * 0.9)
    return tokens[:cut], tokens[cut:], vocab, "synthetic Zipf(1.2) tokens (no buckets or dedup text)"


def load_tokens(args: argparse.Namespace, params: Params) -> tuple[np.ndarray, np.ndarray, int, str]:
    if (BUCKETS / "index.json").exists():
        return bucket_tokens()
    if DEDUP.is_dir() and list_shards(DEDUP):
        return text_tokens(args, params.shared.seed, params.shared.val_fraction)
    need = args.steps * args.batch_size * (args.seq_len + 1) * 2
    return zipf_tokens(args.vocab, need, params.shared.seed)


# --- training runs --------------------------------------------------------------------

def run_variant(name: str, shape: Model, vocab: int, train: np.ndarray, val: np.ndarray,
                args: argparse.Namespace, seed: int) -> dict[str, Any]:
    config = llama_config(shape, vocab_size=vocab, bos_id=0, eos_id=1, pad_id=3)
    model = build_model(config, seed=seed)
    counts = parameter_counts(model)
    train_config = TrainConfig(steps=args.steps, lr=args.lr, min_lr=args.lr / 10,
                               warmup_steps=max(1, args.steps // 10), weight_decay=0.1,
                               seed=seed)
    result = train_on_array(model, train, val, seq_len=args.seq_len, batch_size=args.batch_size,
                            eval_batches=args.eval_batches, config=train_config)
    tail = [r.loss for r in result.records[-10:]]
    row = {"variant": name, "parameters": counts, "ffn_saving_formula": variants.ffn_saving(config),
           "tokens": result.tokens, "train_seconds": round(result.train_seconds, 2),
           "tokens_per_s": round(result.tokens / result.train_seconds, 1),
           "final_train_loss": round(statistics.fmean(tail), 4),
           "initial_val_loss": round(result.initial_val["val"], 4),
           "final_val_loss": round(result.final_val["val"], 4)}
    print(json.dumps(row), flush=True)
    return row


# --- attention op alone ---------------------------------------------------------------

def time_op(fn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, reps: int = 5) -> float:
    """Best-of-reps seconds of forward + backward."""
    best = float("inf")
    for _ in range(reps):
        qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
        start = time.perf_counter()
        fn(qq, kk, vv).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def attention_costs(args: argparse.Namespace) -> list[dict[str, Any]]:
    heads, head_dim = args.heads, args.hidden // args.heads
    width = heads * head_dim
    rows = []
    for T in args.attention_lengths:
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, heads, T, head_dim) for _ in range(3))
        full = time_op(lambda a, b, c: torch.nn.functional.scaled_dot_product_attention(
            a, b, c, is_causal=True), q, k, v)
        window = time_op(lambda a, b, c: variants.blockwise_window_attention(
            a, b, c, args.window), q, k, v)
        pf, pw = variants.attention_pairs(T, None), variants.attention_pairs(T, args.window)
        rows.append({
            "seq_len": T, "window": args.window,
            "full_seconds": round(full, 5), "window_seconds": round(window, 5),
            "speedup": round(full / window, 2),
            # forward FLOPs of QK^T and AV for one layer and one sequence
            "full_flops": {k_: 4 * width * n for k_, n in pf.items()},
            "window_flops": {k_: 4 * width * n for k_, n in pw.items()},
            "flops_ratio_kept": round(pf["kept"] / pw["kept"], 2),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    params = Params()
    seed = params.shared.seed
    started = time.perf_counter()
    train, val, vocab, data = load_tokens(args, params)
    print(f"data: {data}; {len(train)} train / {len(val)} val tokens, vocab {vocab}", flush=True)
    if len(val) < args.batch_size * (args.seq_len + 1):
        raise SystemExit(f"only {len(val)} validation tokens: raise --max-chars or lower --seq-len")
    base = Model(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                 num_kv_heads=args.heads, intermediate_size=args.intermediate,
                 max_seq_len=args.seq_len)
    shapes = {"default": base,
              "ffn_sharing=all": dataclasses.replace(base, ffn_sharing="all"),
              f"sliding_window={args.window}": dataclasses.replace(
                  base, attention="sliding_window", window=args.window)}
    runs = [run_variant(name, shape, vocab, train, val, args, seed) for name, shape in shapes.items()]
    default = runs[0]
    for row in runs:
        row["params_ratio"] = round(row["parameters"]["total"] / default["parameters"]["total"], 4)
        row["tokens_per_s_ratio"] = round(row["tokens_per_s"] / default["tokens_per_s"], 3)
        row["val_loss_delta"] = round(row["final_val_loss"] - default["final_val_loss"], 4)
    payload = {
        "command": "python benchmarks/architecture.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("output", "attention_lengths")),
        "data": data, "train_tokens_available": len(train), "val_tokens": len(val),
        "vocab_size": vocab, "model": dataclasses.asdict(base), "steps": args.steps,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "variants": runs, "attention": attention_costs(args),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.output} in {payload['seconds']} s")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()


if __name__ == "__main__":
    main()
