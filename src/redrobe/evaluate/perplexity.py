"""Held-out perplexity and bits per byte of a causal LM on a flat token array.

The array (a slice's validation documents, concatenated, each followed by eos) is
cut into non-overlapping windows of ``seq_len`` predictions: window ``k`` reads
tokens ``[k*T, k*T + T)`` and predicts ``[k*T + 1, k*T + T]``, so every evaluated
token is predicted exactly once, with up to ``T - 1`` tokens of context (the usual
litgpt / nanoGPT held-out estimate; a sliding window would give lower numbers).

    score = score_tokens(model, array, seq_len=256, max_tokens=32768, batch_size=8,
                         decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    score.perplexity, score.bits_per_byte

Bits per byte = total NLL (nats) / ln 2 / UTF-8 bytes of the decoded evaluated
tokens: unlike perplexity it does not depend on the tokenizer, so models with
different vocabularies compare (The Pile, Gao et al. 2020, §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SliceScore:
    tokens: int      # predicted (target) tokens
    nll: float       # summed negative log-likelihood, nats
    bytes: int       # UTF-8 bytes of the decoded target tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_byte(self) -> float | None:
        return self.nll / math.log(2) / self.bytes if self.bytes else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"tokens": self.tokens, "nll": self.nll, "bytes": self.bytes,
                "perplexity": self.perplexity, "bits_per_byte": self.bits_per_byte}


def eval_spans(n_tokens: int, seq_len: int, max_tokens: int) -> list[tuple[int, int]]:
    """(start, length) of each window: inputs ``a[s:s+L]``, targets ``a[s+1:s+L+1]``.

    Covers the first ``min(n_tokens - 1, max_tokens)`` targets; the last window may be
    shorter than ``seq_len``.
    """
    targets = max(0, min(n_tokens - 1, max_tokens))
    return [(s, min(seq_len, targets - s)) for s in range(0, targets, seq_len)]


@torch.no_grad()
def window_nll(model: torch.nn.Module, windows: torch.Tensor) -> float:
    """Summed NLL (nats) of ``windows[:, 1:]`` given ``windows[:, :-1]``."""
    x, y = windows[:, :-1], windows[:, 1:]                 # (B, L), (B, L)
    logits = model(input_ids=x, use_cache=False).logits    # (B, L, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()


@torch.no_grad()
def score_tokens(model: torch.nn.Module, array: np.ndarray, *, seq_len: int, max_tokens: int,
                 batch_size: int, decode: Callable[[Sequence[int]], str],
                 device: str = "cpu") -> SliceScore:
    """Perplexity and bits per byte of ``model`` on the start of ``array``."""
    model.eval()
    spans = eval_spans(len(array), seq_len, max_tokens)
    nll = 0.0
    for length in sorted({n for _, n in spans}, reverse=True):  # batch windows of equal length
        starts = [s for s, n in spans if n == length]
        for i in range(0, len(starts), batch_size):
            rows = [np.asarray(array[s:s + length + 1], dtype=np.int64) for s in starts[i:i + batch_size]]
            nll += window_nll(model, torch.from_numpy(np.stack(rows)).to(device))
    tokens = sum(n for _, n in spans)
    targets = np.asarray(array[1:tokens + 1], dtype=np.int64).tolist()
    return SliceScore(tokens=tokens, nll=nll, bytes=len(decode(targets).encode("utf-8")))
