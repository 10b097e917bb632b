"""Tiny inputs for the pretrain / lora / evaluate stage tests (built in seconds).

- :func:`write_shards`: deduplicated shards ``<root>/<slice>/part-00000.parquet`` of
  synthetic English-like documents (seeded), several slices;
- :func:`write_tokenizer`: the project's byte-level BPE (redrobe.tokenizer) trained on them;
- :func:`write_buckets`: a buckets directory in the bucket stage's layout (index.json,
  bucket-NN.bin, val-<slice>.bin), split with ``is_validation``;
- :func:`write_params`: a params.yaml with a tiny model and a few steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from transformers import PreTrainedTokenizerFast

from redrobe.curriculum.split import is_validation
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.tokenizer import save_tokenizer, train_tokenizer

SLICES = ("books", "c4", "github")
SEED, VAL_FRACTION = 1234, 0.2
WORDS = {
    "books": ["the", "king", "queen", "lord", "said", "thou", "art", "my", "good", "sweet", "love", "night",
              "day", "death", "heart"],
    "c4": ["the", "city", "council", "said", "on", "monday", "that", "new", "plans", "for", "the", "market",
           "will", "open", "soon"],
    "github": ["def", "return", "self", "if", "else", "for", "in", "import", "class", "none", "true", "false",
               "value", "x", "y"],
}


def documents(slice_name: str, count: int = 24) -> list[Document]:
    rng = random.Random(f"{slice_name}-{SEED}")
    words = WORDS[slice_name]
    docs = []
    for i in range(count):
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) + "."
                     for _ in range(rng.randint(6, 14))]
        docs.append(Document(id=f"{slice_name}/{i:04d}", text=" ".join(sentences).capitalize(),
                             source=slice_name))
    return docs


def write_shards(root: Path) -> Path:
    for name in SLICES:
        with ShardWriter(shard_path(root, name, 0)) as writer:
            writer.write_all(documents(name))
    return root


def write_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    hf = train_tokenizer([d.text for s in SLICES for d in documents(s)], vocab_size=320,
                         min_frequency=2)
    save_tokenizer(hf, path)
    return hf


def _packed(tokenizer: PreTrainedTokenizerFast, docs: list[Document], rows: list[dict],
            split: str, bucket: int) -> np.ndarray:
    """Documents packed with eos after each; their docs.parquet rows appended to ``rows``."""
    ids: list[int] = []
    for doc in docs:
        tokens = tokenizer(doc.text, add_special_tokens=False)["input_ids"]
        rows.append({"id": doc.id, "source": doc.source, "split": split, "bucket": bucket,
                     "score": float(len(doc.text)), "tokens": len(tokens), "offset": len(ids)})
        ids += tokens + [tokenizer.eos_token_id]
    return np.asarray(ids, dtype="<u2")


def write_buckets(root: Path, tokenizer: PreTrainedTokenizerFast, num_buckets: int = 2) -> Path:
    """Bucket-stage layout: token files, docs.parquet (offsets, scores) and index.json."""
    root.mkdir(parents=True)
    train, val = [], {}
    for name in SLICES:
        docs = documents(name)
        train += [d for d in docs if not is_validation(d.id, VAL_FRACTION, SEED)]
        val[name] = [d for d in docs if is_validation(d.id, VAL_FRACTION, SEED)]
    train.sort(key=lambda d: len(d.text))  # a stand-in difficulty (the score): text length
    rows, buckets, edges = [], [], []
    for k in range(num_buckets):
        members = train[k * len(train) // num_buckets:(k + 1) * len(train) // num_buckets]
        array = _packed(tokenizer, members, rows, "train", k)
        array.tofile(root / f"bucket-{k:02d}.bin")
        buckets.append({"name": f"bucket-{k:02d}", "file": f"bucket-{k:02d}.bin",
                        "tokens": len(array), "docs": len(members), "score_min": None,
                        "score_max": None, "tokens_by_slice": {}})
        edges.append(float(len(members[-1].text)))
    val_index = {}
    for name, docs in val.items():
        array = _packed(tokenizer, docs, rows, "val", -1)
        array.tofile(root / f"val-{name}.bin")
        val_index[name] = {"file": f"val-{name}.bin", "tokens": len(array), "docs": len(docs),
                           "bytes": sum(len(d.text.encode()) for d in docs)}
    index = {"dtype": "uint16", "vocab_size": len(tokenizer), "eos_id": tokenizer.eos_token_id,
             "bos_id": tokenizer.bos_token_id, "num_buckets": num_buckets, "buckets": buckets,
             "val": val_index, "score_edges": edges[:-1]}
    (root / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    pq.write_table(pa.Table.from_pylist(rows), root / "docs.parquet")
    return root


def write_params(path: Path) -> Path:
    params = {
        "shared": {"seed": SEED, "val_fraction": VAL_FRACTION, "slices": list(SLICES)},
        "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "num_kv_heads": 1,
                  "intermediate_size": 64, "max_seq_len": 32},
        "pretrain": {"steps": 6, "batch_size": 4, "warmup_steps": 2, "eval_every": 3,
                     "eval_batches": 2, "precision": "fp32", "threads": 1,
                     "peak_flops": 1.0e10},   # skip measuring the matmul peak in every test
        "lora": {"slice": "books", "r": 4, "alpha": 8, "steps": 4, "batch_size": 4,
                 "warmup_steps": 1, "eval_every": 2, "eval_batches": 2, "precision": "fp32",
                 "threads": 1},
        "evaluate": {"max_tokens_per_slice": 100, "batch_size": 2, "gen_tokens": 5, "threads": 1,
                     "math": {"train_problems": 32, "test_problems": 4, "steps": 3,
                              "batch_size": 2, "warmup_steps": 1}},
    }
    path.write_text(yaml.safe_dump(params, sort_keys=True))
    return path


def write_inputs(root: Path) -> dict[str, Path]:
    """Shards, tokenizer, buckets and params under ``root``; returns their paths."""
    tokenizer = write_tokenizer(root / "tokenizer")
    return {"root": root, "params": write_params(root / "params.yaml"),
            "dedup": write_shards(root / "dedup"), "tokenizer": root / "tokenizer",
            "buckets": write_buckets(root / "buckets", tokenizer)}


def pretrain_argv(paths: dict[str, Path], output: Path, metrics: Path) -> list[str]:
    return ["--params", str(paths["params"]), "--buckets", str(paths["buckets"]),
            "--tokenizer", str(paths["tokenizer"]), "--output", str(output),
            "--curve", str(metrics / "pretrain_curve.csv"), "--metrics", str(metrics / "pretrain.json")]


def lora_argv(paths: dict[str, Path], base: Path, output: Path, metrics: Path) -> list[str]:
    return ["--params", str(paths["params"]), "--input", str(paths["dedup"]), "--base", str(base),
            "--output", str(output), "--curve", str(metrics / "lora_curve.csv"),
            "--metrics", str(metrics / "lora.json")]


def evaluate_argv(paths: dict[str, Path], base: Path, lora: Path, metrics: Path) -> list[str]:
    return ["--params", str(paths["params"]), "--buckets", str(paths["buckets"]),
            "--base", str(base), "--lora", str(lora), "--attention", str(metrics / "attention"),
            "--metrics", str(metrics / "eval.json")]
