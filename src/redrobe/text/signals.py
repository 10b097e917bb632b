"""RedPajama-V2 repetition signals over a document's normalized words.

    index = NgramIndex(normalized_words(text))
    index.frac_chars_top_ngram(2)     # rps_doc_frac_chars_top_2gram
    index.frac_chars_dupe_ngrams(5)   # rps_doc_frac_chars_dupe_5grams

Definitions, as RedPajama-V2 computes them (core/quality_signals/repetitions.py; see
docs/references.md, "RedPajama-V2 quality signals"):

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
Python, and equal ids mean exactly equal n-grams (no hash collisions). Both signals
only need the n-grams that occur more than once, and ``words[i:i+n]`` can repeat only
if ``words[i:i+n-1]`` does, so the chain for the signals carries just the positions of
repeated n-grams: each step sorts a shrinking subset (for prose, a few percent of the
words by n = 5) instead of all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

PRECISION = 8  # decimals, as RedPajama-V2 rounds its signals


class NgramIndex:
    """Word n-gram identities of one document, for n = 1, 2, ... on demand."""

    def __init__(self, words: Sequence[str]) -> None:
        self.num_words = len(words)
        # position of each word's first occurrence, in one C-level pass (setdefault
        # keeps the first position it was given), then ranked: dense ids, first seen 0
        first: dict[str, int] = {}
        first_at = np.fromiter(map(first.setdefault, words, itertools.count()), dtype=np.int64,
                               count=self.num_words)                           # (L,)
        rank = np.cumsum(first_at == np.arange(self.num_words)) - 1
        self.word_ids = rank[first_at]                                         # (L,)
        # ``first`` lists the distinct words in first-seen order, i.e. by id
        self.lengths = np.fromiter(map(len, first), dtype=np.int64, count=len(first))[self.word_ids]
        self.total_chars = int(self.lengths.sum())
        self._vocab_size = max(len(first), 1)
        self._n, self._ids = 1, self.word_ids
        self._repeated: dict[int, tuple[np.ndarray, np.ndarray]] = {}

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

    def repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ids)``: the ascending start positions of the n-grams that occur more
        than once, and ids with ``ids[a] == ids[b]`` iff those two n-grams are equal."""
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        if n not in self._repeated:
            if n == 1:
                starts, ids = np.arange(self.num_words), self.word_ids
            else:
                prev_starts, prev_ids = self.repeated(n - 1)
                if prev_starts.size == 0:   # nothing repeats at n - 1: nothing at n
                    self._repeated[n] = prev_starts, prev_ids
                    return prev_starts, prev_ids
                # a repeated n-gram extends a repeated (n-1)-gram that has a next word
                inside = prev_starts < self.num_words - n + 1
                starts = prev_starts[inside]
                codes = prev_ids[inside] * self._vocab_size + self.word_ids[starts + n - 1]
                ids = np.unique(codes, return_inverse=True)[1].reshape(-1)
            keep = np.bincount(ids)[ids] > 1 if ids.size else np.zeros(0, dtype=bool)
            self._repeated[n] = (starts[keep], ids[keep])
        return self._repeated[n]

    def frac_chars_top_ngram(self, n: int) -> float:
        """``rps_doc_frac_chars_top_{n}gram``."""
        starts, ids = self.repeated(n)
        if ids.size == 0 or self.total_chars == 0:
            return 0.0
        count_at = np.bincount(ids)[ids]          # count of the n-gram starting at starts[k]
        top = int(count_at.max())
        # Counter.most_common: the first seen wins a tie (starts are ascending)
        first = int(starts[np.argmax(count_at == top)])
        chars = int(self.lengths[first:first + n].sum())
        return round(chars * top / self.total_chars, PRECISION)

    def frac_chars_dupe_ngrams(self, n: int) -> float:
        """``rps_doc_frac_chars_dupe_{n}grams``."""
        starts, _ = self.repeated(n)
        if starts.size == 0 or self.total_chars == 0:
            return 0.0
        # difference array: +1 where a duplicated n-gram starts, -1 after its last word
        edges = np.zeros(self.num_words + 1, dtype=np.int64)
        edges[starts] += 1
        edges[starts + n] -= 1
        covered = np.cumsum(edges[:-1]) > 0                   # (L,) word inside a dupe
        chars = int(self.lengths[covered].sum())
        return round(chars / self.total_chars, PRECISION)
