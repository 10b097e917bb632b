"""Text library: Unicode normalization, RedPajama-V2 text views and signals, rule sets.

- :mod:`redrobe.text.normalize`: ``normalize_unicode``, ``normalized_text``,
  ``normalized_words``, ``raw_words`` (shared with dedup).
- :mod:`redrobe.text.signals`: RedPajama-V2 n-gram repetition signals (``NgramIndex``).
- :mod:`redrobe.text.rpv2`: every RedPajama-V2 text signal as span lists, with JSON storage.
- :mod:`redrobe.text.langid`: offline language identification (py3langid by default; fastText
  lid.176, CLD3 and lingua backends).
- :mod:`redrobe.text.languages`: per-language profiles (stop words, words of scripts
  without spaces, sentence ends) that the rule sets and signals judge a document with.
- :mod:`redrobe.text.gopher`, :mod:`redrobe.text.c4`, :mod:`redrobe.text.fineweb`,
  :mod:`redrobe.text.code`: the rule sets and their reason constants.
- :mod:`redrobe.text.thresholds`: per-language thresholds by quantile matching (FineWeb-2).
- :mod:`redrobe.text.expressions`: user threshold expressions over stored signals as
  removal rules (the expression language itself is :mod:`redrobe.expressions`).
- :mod:`redrobe.text.rules`: the rule-set registry, presets and the ``Cleaner`` transform
  the clean stage runs (``Iterable[Document] -> Iterator[Outcome]``).

Pure library code: no tracking, no environment, no fixed paths.
"""
