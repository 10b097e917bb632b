"""GPU check: semantic-dedup encoding (all-MiniLM-L6-v2) on the GPU against the CPU.

    python benchmarks/gpu/encode.py --device cuda --out encode.json [--docs 512]
        [--shards data/interim/clean]

The same real texts (the ``head`` view the semantic pass embeds; documents of the prose
slices of ``--shards`` when there are any, else the interpreter's standard-library
modules, chosen as benchmarks/semantic.py does) are embedded twice: by the project's
:class:`~redrobe.dedup.semantic.Encoder` on the CPU, and by the same Encoder with its
device (``dedup.semantic.device``) set to ``--device``. Reported: docs/s of each (after a
warm-up batch), and the cosine between the two embeddings of every text. Both are fp32
unit vectors that differ only in the order of float sums, so the check passes when every
cosine is >= 0.999 and the model really sat on ``--device``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from report import BENCH, REPO, check_parser, check_record, load_module, write_check

from redrobe.config import DedupSemantic
from redrobe.dedup.semantic import Encoder, text_view

MIN_COSINE = 0.999
WARMUP_DOCS = 32


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between row i of ``a`` and row i of ``b``, for every i."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def docs_per_second(encoder: Encoder, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """Embeddings of ``texts`` and the rate, after a warm-up batch outside the timing
    (model load, CUDA context and kernel selection)."""
    encoder.encode(texts[:WARMUP_DOCS])
    started = time.perf_counter()
    embeddings = encoder.encode(texts)  # returns numpy: the device work is finished
    return embeddings, len(texts) / (time.perf_counter() - started)


def sample_texts(shards: Path, n: int) -> tuple[str, list[str]]:
    semantic = load_module(BENCH / "semantic.py")
    params = DedupSemantic(enabled=True)
    source, docs = semantic.load_docs(shards, n)
    return source, [text_view(d.text, "head", params.max_words) for d in docs]


def main(argv: list[str] | None = None) -> int:
    parser = check_parser(__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--shards", type=Path, default=REPO / "data" / "interim" / "clean")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source, texts = sample_texts(args.shards, args.docs)
    batch = DedupSemantic().batch_size
    cpu, cpu_rate = docs_per_second(Encoder(batch_size=batch), texts)
    on_device = Encoder(batch_size=batch, device=args.device)
    dev, dev_rate = docs_per_second(on_device, texts)
    cos = row_cosines(cpu, dev)
    placed = str(on_device.model.device)
    figures = {"texts": len(texts), "source": source, "batch_size": batch, "model_device": placed,
               "cpu_docs_per_s": round(cpu_rate, 1), "device_docs_per_s": round(dev_rate, 1),
               "speedup": round(dev_rate / cpu_rate, 2), "min_cosine": float(cos.min()),
               "max_cosine_gap": float(1 - cos.min()),
               "mean_cosine": float(cos.mean()), "dim": int(cpu.shape[1])}
    criteria = {f"min_cosine_at_least_{MIN_COSINE}": bool(cos.min() >= MIN_COSINE),
                "model_on_device": placed.split(":")[0] == args.device.split(":")[0]}
    ran = (f"all-MiniLM-L6-v2 embeddings of {len(texts)} texts ({source}), "
           f"redrobe Encoder on cpu vs the same encode on {args.device}")
    write_check(args.out, check_record("encode", ran, figures, criteria))
    return 0


if __name__ == "__main__":
    sys.exit(main())
