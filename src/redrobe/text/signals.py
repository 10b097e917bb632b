"""RedPajama-V2 repetition signals over a document's normalized words (REFERENCES §2).

    index = NgramIndex(normalized_words(text))
    index.frac_chars_top_ngram(2)     # rps_doc_frac_chars_top_2gram
    index.frac_chars_dupe_ngrams(5)   # rps_doc_frac_chars_dupe_5grams

Definitions, as RedPajama-V2 computes them (core/quality_signals/repetitions.py):

- top n-gram: characters of the most common word n-gram (first seen wins a tie) times
  its count, over the characters of all words; 0 when no n-gram occurs twice.
- dupe n-grams: characters of the words covered by any n-gram that occurs more than
  once (every occurrence, the first included; a word covered twice counts once), over
  the characters of all words.

Word characters exclude the separating spaces. Scores are rounded to 8 decimals like
the published signals.

Why an index: n-gram identities are built incrementally (the id of ``words[i:i+n]`` is
a dense id of the pair (id of ``words[i:i+n-1]``, id of ``words[i+n-1]``)), so each
n costs one integer sort in numpy instead of hashing millions of string tuples in
Python, and equal ids mean exactly equal n-grams (no hash collisions).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

PRECISION = 8  # decimals, as RedPajama-V2 rounds its signals


class NgramIndex:
    """Word n-gram identities of one document, for n = 1, 2, ... on demand."""

    def __init__(self, words: Sequence[str]) -> None:
        vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
        self.num_words = len(words)
        self.word_ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64,
                                    count=self.num_words)                      # (L,)
        self.lengths = np.fromiter(map(len, words), dtype=np.int64, count=self.num_words)
        self.total_chars = int(self.lengths.sum())
        self._vocab_size = max(len(vocab), 1)
        self._n, self._ids = 1, self.word_ids

    def ids(self, n: int) -> np.ndarray:
        """(L - n + 1,) dense ids: ``ids[i] == ids[j]`` iff ``words[i:i+n] == words[j:j+n]``."""
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        if n < self._n:  # asked for a smaller n than the last one: restart the chain
            self._n, self._ids = 1, self.word_ids
        while self._n < n and self._ids.size > 1:
            # pair (id of the (k-1)-gram at i, id of word i+k-1) -> id of the k-gram at i
            codes = self._ids[:-1] * self._vocab_size + self.word_ids[self._n:]
            self._ids = np.unique(codes, return_inverse=True)[1].reshape(-1)
            self._n += 1
        if self._n < n:  # fewer words than n
            return np.empty(0, dtype=np.int64)
        return self._ids

    def frac_chars_top_ngram(self, n: int) -> float:
        """``rps_doc_frac_chars_top_{n}gram``."""
        ids = self.ids(n)
        if ids.size == 0 or self.total_chars == 0:
            return 0.0
        count_at = np.bincount(ids)[ids]          # (L-n+1,) count of the n-gram starting at i
        top = int(count_at.max())
        if top <= 1:
            return 0.0
        first = int(np.argmax(count_at == top))   # Counter.most_common: first seen wins ties
        chars = int(self.lengths[first:first + n].sum())
        return round(chars * top / self.total_chars, PRECISION)

    def frac_chars_dupe_ngrams(self, n: int) -> float:
        """``rps_doc_frac_chars_dupe_{n}grams``."""
        ids = self.ids(n)
        if ids.size == 0 or self.total_chars == 0:
            return 0.0
        starts = np.flatnonzero(np.bincount(ids)[ids] > 1)   # n-grams seen more than once
        if starts.size == 0:
            return 0.0
        # difference array: +1 where a duplicated n-gram starts, -1 after its last word
        edges = np.zeros(self.num_words + 1, dtype=np.int64)
        edges[starts] += 1
        edges[starts + n] -= 1
        covered = np.cumsum(edges[:-1]) > 0                   # (L,) word inside a dupe
        chars = int(self.lengths[covered].sum())
        return round(chars / self.total_chars, PRECISION)
