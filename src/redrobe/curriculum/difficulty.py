"""Document difficulty scores: a registry of configurable functions (``bucket.score``).

Every score is "higher = harder" and is computed from a document's token ids (and,
for ``compression_ratio``, its text) plus statistics of the *training split* only, so
validation documents never inform the model of difficulty. The registered scores:

``unigram_surprisal`` (default)
    mean token surprisal (bits) under the training split's add-one smoothed unigram
    model, ``p(t) = (count(t) + 1) / (N + V)``. The "word rarity" difficulty of
    competence-based curriculum learning (Platanios et al. 2019, NAACL, §3.1:
    ``-Σ log p̂(w)``), averaged instead of summed so that length does not dominate.
``length``
    number of tokens (Platanios et al. 2019 §3.1, "sentence length"; Spitkovsky et
    al. 2010, "Baby Steps": shorter is easier).
``rare_word_rate``
    share of the document's tokens that are *rare*: outside the most frequent token
    ids that together cover ``1 - rare_mass`` of the training tokens (so ``rare_mass``
    is the tail probability mass called rare). Tokens are BPE subwords, not words.
``compression_ratio``
    zlib (level 9, deterministic) compressed bytes / raw UTF-8 bytes of the text:
    repetitive, templated text compresses well and is easy; dense novel text is hard
    (gzip compressibility as a data-difficulty signal: Pandey 2024, "gzip predicts
    data-dependent scaling laws").
``reference_ppl``
    log2 perplexity (mean bits per token) under a small *reference model*: an
    interpolated bigram LM over the training split's tokens,
    ``p(b|a) = λ c(a,b)/c(a) + (1-λ) p_unigram(b)`` (Jelinek-Mercer smoothing; Chen &
    Goodman 1998), with the add-one unigram above as back-off. A neural reference
    model would need a pretrained LM, which the pipeline does not have before
    pretraining. Bigram counts live in a fixed-size table (exact when V² fits, else
    hashed: colliding pairs share a count), so memory never grows with the corpus.

The bucket stage fits a :class:`Scorer` once (:func:`fit_scorer`) and calls it per
document:

    stats = TrainStats(counts=unigram_counts(train_arrays, vocab_size))
    scorer = fit_scorer("rare_word_rate", stats, ScoreOptions(rare_mass=0.1))
    scorer(tokens, compression)           # float, higher = harder

``compression`` is the document's :func:`compression_ratio`, computed from its text
when it is tokenized (the text is gone by scoring time); NaN when the score does not
need it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

SCORE_NAME = "unigram_surprisal"   # the default score
UNIGRAM_SURPRISAL = "unigram_surprisal"
LENGTH = "length"
RARE_WORD_RATE = "rare_word_rate"
COMPRESSION_RATIO = "compression_ratio"
REFERENCE_PPL = "reference_ppl"
#: zlib level for compression_ratio: fixed so scores are reproducible
ZLIB_LEVEL = 9
#: bigram table slots (int64: 32 MiB); vocabularies with V² <= this are counted exactly
BIGRAM_TABLE = 1 << 22


# ------------------------------------------------------------------ per-document functions

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


def _nonempty(tokens: np.ndarray, what: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.size == 0:
        raise ValueError(f"{what} of an empty document is undefined")
    return tokens


def mean_surprisal(tokens: np.ndarray, table: np.ndarray) -> float:
    """A document's score: mean surprisal (bits) of its tokens; needs >= 1 token."""
    return float(table[_nonempty(tokens, "mean_surprisal")].mean())


def rare_token_mask(counts: np.ndarray, rare_mass: float) -> np.ndarray:
    """True for token ids outside the most frequent ids covering ``1 - rare_mass`` of
    the training tokens (ties broken by id, so the mask is deterministic)."""
    counts = np.asarray(counts, dtype=np.int64)
    order = np.lexsort((np.arange(counts.size), -counts))      # most frequent first
    covered = np.cumsum(counts[order]) / max(int(counts.sum()), 1)
    # an id is common while the mass *before* it is still short of 1 - rare_mass
    common = order[np.concatenate([[0.0], covered[:-1]]) < 1.0 - rare_mass]
    mask = np.ones(counts.size, dtype=bool)
    mask[common] = False
    mask[counts == 0] = True   # never seen in training: rare whatever rare_mass says
    return mask


def rare_rate(tokens: np.ndarray, rare: np.ndarray) -> float:
    """Share of the document's tokens flagged rare by :func:`rare_token_mask`."""
    return float(rare[_nonempty(tokens, "rare_rate")].mean())


def compressed_size(text_bytes: bytes) -> int:
    """zlib (level :data:`ZLIB_LEVEL`) compressed size of the text in bytes."""
    return len(zlib.compress(text_bytes, ZLIB_LEVEL))


def compression_ratio(text_bytes: bytes) -> float:
    """Compressed / raw bytes (higher = less redundant = harder); needs non-empty text."""
    if not text_bytes:
        raise ValueError("compression_ratio of an empty text is undefined")
    return compressed_size(text_bytes) / len(text_bytes)


@dataclass(frozen=True)
class BigramModel:
    """Interpolated bigram LM: ``table`` counts pairs at :meth:`slot`; ``left`` counts
    each id as the first token of a pair; ``unigram`` is the add-one back-off."""
    table: np.ndarray      # int64 pair counts (exact or hashed slots)
    left: np.ndarray       # int64 per token id
    unigram: np.ndarray    # float64 p(t), add-one smoothed
    lam: float

    @staticmethod
    def slots(vocab_size: int) -> int:
        return min(vocab_size * vocab_size, BIGRAM_TABLE)

    @staticmethod
    def slot(a: np.ndarray, b: np.ndarray, vocab_size: int) -> np.ndarray:
        pair = a.astype(np.uint64) * np.uint64(vocab_size) + b.astype(np.uint64)
        if vocab_size * vocab_size <= BIGRAM_TABLE:
            return pair.astype(np.int64)
        # Fibonacci hashing: the top 22 bits of pair * 2^64/φ spread neighbouring pairs
        return ((pair * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - 22)).astype(np.int64)

    def bits(self, tokens: np.ndarray) -> float:
        """Mean -log2 p over the document's tokens (the first one under the unigram)."""
        t = np.asarray(_nonempty(tokens, "reference_ppl"), dtype=np.int64)
        a, b = t[:-1], t[1:]
        pair = self.table[self.slot(a, b, self.unigram.size)]
        cond = np.divide(pair, self.left[a], out=np.zeros(len(a)), where=self.left[a] > 0)
        p = self.lam * cond + (1.0 - self.lam) * self.unigram[b]
        return float((-np.log2(self.unigram[t[0]]) - np.log2(p).sum()) / t.size)


def bigram_counts(token_arrays: Iterable[np.ndarray], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(pair table, left counts) over documents; pairs never cross a document boundary."""
    table = np.zeros(BigramModel.slots(vocab_size), dtype=np.int64)
    left = np.zeros(vocab_size, dtype=np.int64)
    for tokens in token_arrays:
        t = np.asarray(tokens, dtype=np.int64)
        if t.size < 2:
            continue
        np.add.at(table, BigramModel.slot(t[:-1], t[1:], vocab_size), 1)
        left += np.bincount(t[:-1], minlength=vocab_size)
    return table, left


# ------------------------------------------------------------------ registry

@dataclass(frozen=True)
class ScoreOptions:
    """Knobs of the scores (``bucket.rare_mass``, ``bucket.reference_lambda``)."""
    rare_mass: float = 0.1
    reference_lambda: float = 0.9


@dataclass
class TrainStats:
    """Training-split statistics the scores are fitted on (bigrams only when needed)."""
    counts: np.ndarray                          # unigram counts, length V
    bigrams: tuple[np.ndarray, np.ndarray] | None = None   # (pair table, left counts)


#: a fitted score: (token ids, compression ratio or NaN) -> difficulty
Scorer = Callable[[np.ndarray, float], float]


def _fit_surprisal(stats: TrainStats, opts: ScoreOptions) -> Scorer:
    table = surprisal_table(stats.counts)
    return lambda tokens, compression: mean_surprisal(tokens, table)


def _fit_length(stats: TrainStats, opts: ScoreOptions) -> Scorer:
    return lambda tokens, compression: float(len(_nonempty(tokens, "length")))


def _fit_rare(stats: TrainStats, opts: ScoreOptions) -> Scorer:
    rare = rare_token_mask(stats.counts, opts.rare_mass)
    return lambda tokens, compression: rare_rate(tokens, rare)


def _fit_compression(stats: TrainStats, opts: ScoreOptions) -> Scorer:
    def score(tokens: np.ndarray, compression: float) -> float:
        if np.isnan(compression):
            raise ValueError("compression_ratio was not computed at tokenization")
        return float(compression)
    return score


def _fit_reference(stats: TrainStats, opts: ScoreOptions) -> Scorer:
    if stats.bigrams is None:
        raise ValueError("reference_ppl needs the training split's bigram counts")
    counts = np.asarray(stats.counts, dtype=np.float64)
    model = BigramModel(table=stats.bigrams[0], left=stats.bigrams[1],
                        unigram=(counts + 1.0) / (counts.sum() + counts.size),
                        lam=opts.reference_lambda)
    return lambda tokens, compression: model.bits(tokens)


@dataclass(frozen=True)
class Difficulty:
    """A registered score: how to fit it, and which inputs it needs beyond unigrams."""
    fit: Callable[[TrainStats, ScoreOptions], Scorer]
    needs_text: bool = False
    needs_bigrams: bool = False


SCORES: dict[str, Difficulty] = {
    UNIGRAM_SURPRISAL: Difficulty(_fit_surprisal),
    LENGTH: Difficulty(_fit_length),
    RARE_WORD_RATE: Difficulty(_fit_rare),
    COMPRESSION_RATIO: Difficulty(_fit_compression, needs_text=True),
    REFERENCE_PPL: Difficulty(_fit_reference, needs_bigrams=True),
}


def fit_scorer(name: str, stats: TrainStats, opts: ScoreOptions | None = None) -> Scorer:
    """The fitted score function registered under ``name``."""
    if name not in SCORES:
        raise ValueError(f"unknown difficulty score {name!r} (known: {', '.join(sorted(SCORES))})")
    return SCORES[name].fit(stats, opts or ScoreOptions())
