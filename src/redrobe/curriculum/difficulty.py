"""Document difficulty: mean token surprisal under the training split's unigram model.

A document is harder when its tokens are rarer. The unigram model is estimated on
the training split's token counts with add-one (Laplace) smoothing over the whole
vocabulary, so a token never seen in training still has a finite surprisal:

    p(t) = (count(t) + 1) / (N + V)        N = training tokens, V = vocabulary size
    score(doc) = mean over the doc's tokens of -log2 p(t)     (bits per token)

This is the "word rarity" difficulty of competence-based curriculum learning
(Platanios et al. 2019, NAACL, §3.1: sentence difficulty = -Σ log p̂(w)), averaged
instead of summed so that length does not dominate the score. The separator eos the
bucket stage appends is not part of a document and is neither counted nor scored.

    counts = unigram_counts([np.array([5, 7, 5])], vocab_size=10)
    table = surprisal_table(counts)
    mean_surprisal(np.array([5, 7]), table)
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

SCORE_NAME = "unigram_surprisal"


def unigram_counts(token_arrays: Iterable[np.ndarray], vocab_size: int) -> np.ndarray:
    """Token frequencies (int64, length ``vocab_size``) over a stream of token arrays."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for tokens in token_arrays:
        counts += np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)
    return counts


def surprisal_table(counts: np.ndarray) -> np.ndarray:
    """-log2 p(t) for every token id under the add-one smoothed unigram model."""
    counts = np.asarray(counts, dtype=np.float64)
    return -np.log2((counts + 1.0) / (counts.sum() + counts.size))


def mean_surprisal(tokens: np.ndarray, table: np.ndarray) -> float:
    """A document's score: mean surprisal (bits) of its tokens; needs >= 1 token."""
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        raise ValueError("mean_surprisal of an empty document is undefined")
    return float(table[tokens].mean())
