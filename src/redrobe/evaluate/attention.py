"""Attention-weight maps of one layer for one prompt, saved as PNG heatmaps.

    paths = attention_maps(model, tokenizer, "The cat sat on the mat", layer=1,
                           out_dir="data/processed/attention", heads=[0, 2])
    # -> [.../layer1_head0.png, .../layer1_head2.png, .../layer1_mean.png]

The weights are the softmax probabilities the layer's heads put on each earlier token
(``output_attentions=True``), so each row sums to 1 and, the model being causal, every
entry above the diagonal is 0. Only the eager attention implementation returns them
(SDPA and flash kernels never materialize the matrix), so the model is switched to
eager for the forward pass and switched back afterwards.

Images are deterministic: fixed figure size and dpi, no "Software" or date metadata,
so the same model, prompt and layer give byte-identical PNG files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from redrobe.documents import atomic_file

FIGURE_INCHES = 6.0   # square figure; labels stay readable up to ~40 tokens
DPI = 100
MAX_LABEL_CHARS = 12  # long tokens are cut so the axes stay legible


def attention_weights(model: torch.nn.Module, tokenizer: Any, prompt: str,
                      layer: int) -> tuple[list[str], np.ndarray]:
    """Token labels and the (heads, T, T) attention probabilities of ``layer``.

    ``layer`` counts from 0; negative values count from the last layer.
    """
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"prompt {prompt!r} has no tokens")
    layers = model.config.num_hidden_layers
    if not -layers <= layer < layers:
        raise ValueError(f"layer {layer} out of range for a model with {layers} layers")
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], device=device), output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
        model.train(was_training)
    weights = out.attentions[layer][0].float().cpu().numpy()  # (heads, T, T)
    return [token_label(tokenizer, i) for i in ids], weights


def token_label(tokenizer: Any, token_id: int) -> str:
    """A token as it reads in the text, with spaces and newlines made visible."""
    text = tokenizer.decode([token_id])
    text = text.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t")
    # '$' would start matplotlib's mathtext
    return text[:MAX_LABEL_CHARS].replace("$", r"\$") or "∅"


def save_heatmap(weights: np.ndarray, labels: Sequence[str], title: str,
                 path: str | os.PathLike) -> Path:
    """One (T, T) attention matrix as a PNG: rows are queries, columns keys."""
    import matplotlib

    matplotlib.use("Agg")  # no display; rendering does not depend on a GUI backend
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=DPI)
    try:
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ticks = range(len(labels))
        ax.set_xticks(ticks, labels, rotation=90, fontsize=7)
        ax.set_yticks(ticks, labels, fontsize=7)
        ax.set_xlabel("key (attended-to token)")
        ax.set_ylabel("query token")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.tight_layout()
        with atomic_file(path, "wb") as fh:
            # no Software/date chunks: the file depends on the weights alone
            fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    return Path(path)


def attention_maps(model: torch.nn.Module, tokenizer: Any, prompt: str, layer: int,
                   out_dir: str | os.PathLike,
                   heads: Sequence[int] | None = None) -> list[Path]:
    """Save ``layer``'s attention for ``prompt``: one PNG per head, then the head mean.

    ``heads`` picks heads by index (None or empty: all). Returns the written paths,
    heads in the order given, the mean map last (the mean is over the chosen heads).
    Files are named ``layer<L>_head<h>.png`` and ``layer<L>_mean.png``, L counted from 0.
    """
    labels, weights = attention_weights(model, tokenizer, prompt, layer)
    chosen = list(heads) if heads else list(range(weights.shape[0]))
    bad = [h for h in chosen if not 0 <= h < weights.shape[0]]
    if bad:
        raise ValueError(f"heads {bad} out of range: layer {layer} has {weights.shape[0]} heads")
    name = f"layer{layer % model.config.num_hidden_layers}"  # -1 -> the last layer's index
    out_dir = Path(out_dir)
    paths = [save_heatmap(weights[h], labels, f"{name} head {h}: {prompt[:40]!r}",
                          out_dir / f"{name}_head{h}.png") for h in chosen]
    mean = weights[chosen].mean(axis=0)
    paths.append(save_heatmap(mean, labels, f"{name} mean of {len(chosen)} heads",
                              out_dir / f"{name}_mean.png"))
    return paths
