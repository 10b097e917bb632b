"""One model's evaluation entry of eval.json, and the LoRA-minus-base deltas.

    entry = evaluate_model(model, tokenizer, val_arrays, seq_len=256, max_tokens=32768,
                           batch_size=8, prompt="The", gen_tokens=64)
    # {"slices": {slice or <slice>/<language>: {"perplexity", "bits_per_byte", "tokens",
    #             "nll", "bytes"}},
    #  "mean_bits_per_byte": ..., "generation_tokens_per_s": ..., "generation": {...}}
    deltas(base_entry, lora_entry)   # {slice: lora bpb - base bpb}
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from redrobe.documents import base_slice
from redrobe.evaluate.generation import generation_speed
from redrobe.evaluate.perplexity import SliceScore, score_tokens


def evaluate_model(model: torch.nn.Module, tokenizer: Any, val: Mapping[str, np.ndarray], *,
                   seq_len: int, max_tokens: int, batch_size: int, prompt: str,
                   gen_tokens: int, device: str = "cpu") -> dict[str, Any]:
    """Score every slice with at least one target token, then time generation.

    ``mean_bits_per_byte`` is the unweighted mean over slices, so each slice counts
    the same whatever the size of its validation split; the language partitions of a
    slice routed by language (``wikipedia/de``), scored one by one, count as their slice
    once (:func:`slice_bits_per_byte`).
    """
    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True)

    slices = {}
    for name, array in sorted(val.items()):
        if len(array) >= 2:
            slices[name] = score_tokens(model, array, seq_len=seq_len, max_tokens=max_tokens,
                                        batch_size=batch_size, decode=decode,
                                        device=device).as_dict()
    bpbs = [bpb for bpb in slice_bits_per_byte(slices).values() if bpb is not None]
    generation = generation_speed(model, tokenizer, prompt, gen_tokens, device=device)
    return {"slices": slices,
            "mean_bits_per_byte": sum(bpbs) / len(bpbs) if bpbs else None,
            "generation_tokens_per_s": generation["tokens_per_s"],
            "generation": generation}


def slice_bits_per_byte(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Bits per byte per slice from the scored rows: a slice's own row, or for a slice
    routed by language its partitions pooled (their NLL over their bytes), so a language
    with a few hundred held-out bytes weighs in the slice as much as its bytes do."""
    groups: dict[str, list[str]] = {}
    for name in sorted(rows):
        groups.setdefault(base_slice(name), []).append(name)
    out: dict[str, float | None] = {}
    for name, members in groups.items():
        if members == [name]:
            out[name] = rows[name]["bits_per_byte"]
            continue
        pooled = SliceScore(tokens=sum(rows[m]["tokens"] for m in members),
                            nll=sum(rows[m]["nll"] for m in members),
                            bytes=sum(rows[m]["bytes"] for m in members))
        out[name] = pooled.bits_per_byte
    return out


def deltas(base: Mapping[str, Any], lora: Mapping[str, Any]) -> dict[str, float]:
    """Per-slice bits-per-byte change from the base to the LoRA model (negative: better)."""
    return {name: lora["slices"][name]["bits_per_byte"] - s["bits_per_byte"]
            for name, s in sorted(base["slices"].items())
            if name in lora["slices"] and s["bits_per_byte"] is not None
            and lora["slices"][name]["bits_per_byte"] is not None}
