"""The on-disk contract of the bucket stage's output (read by pretrain and evaluate).

A buckets directory holds:

- ``index.json``: ``{"dtype", "vocab_size", "eos_id", "bos_id", "num_buckets",
  "score", "score_edges", "buckets": [{"name", "file", "tokens", "docs",
  "score_min", "score_max", "tokens_by_slice"}], "val": {partition: {"file", "tokens",
  "docs", "bytes"}}}``, a partition being a slice or, for a slice ingest routed by
  language, ``<slice>/<language>``; ``tokens_by_slice`` is keyed by partition too.
  Token counts include each document's trailing eos, so
  ``tokens`` is exactly the length of the file. ``score_min``/``score_max`` are null
  for an empty bucket.
- ``bucket-NN.bin``: raw little-endian token ids (``dtype``), every training document
  followed by eos, in (score, id) order: easy to hard. Bucket 00 is the easiest.
- ``val-<slice>.bin``: the slice's validation documents, same format, in id order
  (``val-<slice>.<language>.bin`` for a language partition: no '/' in a file name).
- ``docs.parquet``: one row per written document: id, source (its partition: the
  ``val`` key its validation tokens are under), split ("train"/"val"),
  bucket (-1 for val), score, tokens (without the eos), offset (its first token's
  index in its file; the eos sits at offset + tokens). Rows are in file order.
- ``removed.parquet``: documents dropped by the stage, with a ``reason`` column.

    index = read_index("data/processed/buckets")
    tokens = open_tokens("data/processed/buckets", index, index["buckets"][0]["file"])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

INDEX_FILE = "index.json"
DOCS_FILE = "docs.parquet"
REMOVED_FILE = "removed.parquet"
SPLIT_TRAIN = "train"
SPLIT_VAL = "val"


def token_dtype(vocab_size: int) -> np.dtype:
    """Little-endian uint16 when every id fits in 16 bits, else uint32."""
    return np.dtype("<u2") if vocab_size < 2**16 else np.dtype("<u4")


def dtype_name(dtype: np.dtype) -> str:
    """The ``index.json`` spelling of a token dtype: "uint16" or "uint32"."""
    return np.dtype(dtype).newbyteorder("=").name


def bucket_file(name: str) -> str:
    return f"{name}.bin"


def val_file(partition: str) -> str:
    """The validation token file of a slice, or of a language partition ``<slice>/<lang>``
    (``val-<slice>.<lang>.bin``: slice names and language codes hold no '.')."""
    return f"val-{partition.replace('/', '.')}.bin"


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The ``index.json`` of a buckets directory."""
    with open(Path(path) / INDEX_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def memmap_tokens(file: str | os.PathLike, dtype: np.dtype) -> np.ndarray:
    """Memory-map a raw token file read-only (an empty array for an empty file)."""
    if Path(file).stat().st_size == 0:  # np.memmap refuses empty files
        return np.zeros(0, dtype=dtype)
    return np.memmap(file, dtype=dtype, mode="r")


def open_tokens(path: str | os.PathLike, index: dict[str, Any], file: str) -> np.ndarray:
    """Memory-map one token file of a buckets directory, with the index's dtype."""
    return memmap_tokens(Path(path) / file, np.dtype(index["dtype"]).newbyteorder("<"))
