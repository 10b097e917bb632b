"""Per-language rule thresholds by quantile matching, FineWeb-2's way.

    derived = derive_thresholds(english_texts, german_texts, "de", params.clean)
    overrides(derived)   # {"gopher_quality": {"min_words": 46, ...}, "fineweb": {...}}
                         # -> params.yaml clean.language_thresholds.de

The English thresholds were tuned on English. FineWeb-2 (Penedo et al. 2025,
docs/references.md "Many languages") sets each filter's threshold per language from
the distribution of the filtered statistic on reference text of that language instead
of reusing the English constant. This module does it by quantile matching: for one
threshold ``t_en`` and the statistic ``s`` it is compared with (a rule set's
``statistics(text)``, compared as its ``thresholds`` say, e.g. ``s < t`` removes),

1. ``q`` = the share of the English reference documents that ``s OP t_en`` removes;
2. the target threshold is the cut of the target language's reference distribution
   that removes the share closest to ``q`` of its documents.

So the rule removes the same share of the language's reference text as it removes of
English reference text, whatever the language's word lengths, stop-word counts or
line lengths. Candidate cuts lie in the gaps between consecutive distinct values of the
target distribution (every threshold in a gap removes the same documents, so how a
rule compares, ``<`` or ``<=``, and ties do not matter): the English value where it
falls in a gap, else the gap's midpoint, or for integer thresholds (word and sentence
counts) the gap's integer nearest the English value. Among cuts that remove equally
close shares, the one nearest the English threshold wins. Both sides are measured with the rule sets as
the clean stage builds them: English with the English profile and thresholds, the
target with its own profile (:mod:`redrobe.text.languages`) and its current params
(which fix what a statistic counts: n-gram sizes, C4's line filters). Texts are
normalized (``clean.normalization``) first, as the clean stage does.

Not derived: C4's line-level limits (``min_words_per_line``, ``max_word_length``,
applied per line, not per document), switches and the structural settings above, and
a statistic a language cannot have (Gopher's stop words without a stop-word list).
The reference corpora should be clean, representative text of each language
(FineWeb-2 used Wikipedia and other curated sources) of a few hundred documents or
more: with fewer, the tails that the thresholds cut are a handful of documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from redrobe.config import LANGUAGE_SECTIONS, Clean
from redrobe.text.base import FailureChecks
from redrobe.text.languages import ENGLISH, normalize_code, profile
from redrobe.text.normalize import normalize_unicode
from redrobe.text.rules import RULE_SETS

#: comparison of a statistic with its threshold that removes a document
_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class DerivedThreshold:
    """One threshold: the English value and the share of English reference documents
    it removes, the value for the target language and the share of target documents it
    removes. ``matched`` is false where the English share is 0 or 1 (nothing to match:
    ``value`` is the English value)."""

    rule_set: str
    key: str               # field of the rule set's section; "top_n_grams.2" for n-gram sizes
    english: float
    english_share: float
    value: float
    share: float
    matched: bool = True


def derive_thresholds(english: Iterable[str], target: Iterable[str], language: str, clean: Clean,
                      rule_sets: Sequence[str] = LANGUAGE_SECTIONS) -> list[DerivedThreshold]:
    """Every derivable threshold of ``rule_sets`` for ``language`` by quantile matching
    (module docstring), from English and target-language reference texts."""
    code = normalize_code(language)
    english_texts = [normalize_unicode(t, clean.normalization) for t in english]
    target_texts = [normalize_unicode(t, clean.normalization) for t in target]
    if not english_texts or not target_texts:
        raise ValueError("quantile matching needs English and target reference texts "
                         f"(got {len(english_texts)} English, {len(target_texts)} {code})")
    derived = []
    for name in rule_sets:
        en_rules = _rule_set(name, clean.for_language("en"), "en")
        target_rules = _rule_set(name, clean.for_language(code), code)
        en_stats = reference_statistics(en_rules, english_texts)
        target_stats = reference_statistics(target_rules, target_texts)
        for key, op in en_rules.thresholds.items():
            if key not in target_rules.thresholds:   # an n-gram size only English params list
                continue
            found = _derive_one(name, key, op, threshold_value(en_rules.config, key),
                                en_stats[key], target_stats[key])
            if found is not None:
                derived.append(found)
    return derived


def _rule_set(name: str, clean: Clean, code: str) -> FailureChecks:
    if name not in LANGUAGE_SECTIONS:
        raise ValueError(f"no per-language thresholds for rule set {name!r} "
                         f"(one of: {', '.join(LANGUAGE_SECTIONS)})")
    return RULE_SETS[name](getattr(clean, name), ENGLISH if code == "en" else profile(code))


def reference_statistics(rules: FailureChecks, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """threshold key -> (documents,) float64 statistic of each text."""
    rows = [rules.statistics(text) for text in texts]
    return {key: np.array([row[key] for row in rows], dtype=np.float64) for key in rules.thresholds}


def threshold_value(config: Any, key: str) -> float:
    """A threshold of a section by key (``top_n_grams.2`` reads a mapping entry)."""
    field, _, entry = key.partition(".")
    value = getattr(config, field)
    return value[entry] if entry else value


def _derive_one(rule_set: str, key: str, op: str, english: float, en_values: np.ndarray,
                target_values: np.ndarray) -> DerivedThreshold | None:
    target_values = target_values[~np.isnan(target_values)]
    if not np.isfinite(target_values).any():   # nothing to cut (no stop-word list ...)
        return None
    share = removed_share(en_values[~np.isnan(en_values)], english, op)
    if share in (0.0, 1.0):   # the English reference never reaches the threshold
        return DerivedThreshold(rule_set, key, english, share, english,
                                removed_share(target_values, english, op), matched=False)
    value = matched_threshold(target_values, share, op, english, integer=isinstance(english, int))
    return DerivedThreshold(rule_set, key, english, share, value, removed_share(target_values, value, op))


def removed_share(values: np.ndarray, threshold: float, op: str) -> float:
    """Share of ``values`` for which ``value OP threshold`` holds (the removed share)."""
    return float(_removed_counts(np.sort(values), np.array([threshold]), op)[0] / max(len(values), 1))


def _removed_counts(ordered: np.ndarray, thresholds: np.ndarray, op: str) -> np.ndarray:
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r} (known: {_OPS})")
    n = len(ordered)
    if op == "<":
        return np.searchsorted(ordered, thresholds, "left")
    if op == "<=":
        return np.searchsorted(ordered, thresholds, "right")
    if op == ">":
        return n - np.searchsorted(ordered, thresholds, "right")
    return n - np.searchsorted(ordered, thresholds, "left")


def matched_threshold(values: np.ndarray, share: float, op: str, english: float,
                      integer: bool = False) -> float:
    """The cut of ``values`` whose ``OP`` removes the share nearest ``share`` (ties: the
    cut nearest ``english``); an int for an integer threshold."""
    cuts = _cuts(values, english, integer, op)
    shares = _removed_counts(np.sort(values), cuts, op) / len(values)
    best = np.lexsort((np.abs(cuts - english), np.abs(shares - share)))[0]
    cut = float(cuts[best])
    return int(cut) if integer else round(cut, 6)


def _cuts(values: np.ndarray, english: float, integer: bool, op: str) -> np.ndarray:
    """One candidate threshold per gap between consecutive distinct finite values (and
    below the least, above the greatest): every threshold in a gap removes the same
    documents, so each gap is represented by the English value when it lies in the gap,
    else its midpoint (one step beyond an end); for integers, by the integer of the gap
    nearest the English value."""
    distinct = np.unique(values[np.isfinite(values)])
    low = np.concatenate(([-np.inf], distinct))
    high = np.concatenate((distinct, [np.inf]))
    if integer:   # x < t cuts gap (a, b) for t in a+1..b; x > t for t in a..b-1
        first, last = (low + 1, high) if op in ("<", ">=") else (low, high - 1)
        return np.clip(english, first, last)
    step = 1.0 if len(distinct) < 2 else float(np.min(np.diff(distinct)))
    middle = (np.concatenate(([distinct[0] - 2 * step], distinct))
              + np.concatenate((distinct, [distinct[-1] + 2 * step]))) / 2
    cuts = np.where((low < english) & (english < high), english, middle)
    if distinct[0] >= 0 and distinct[-1] <= 1:   # a share stays a share
        cuts = np.clip(cuts, 0.0, 1.0)
    return cuts


def overrides(derived: Iterable[DerivedThreshold]) -> dict[str, dict[str, Any]]:
    """``clean.language_thresholds.<language>`` for the matched thresholds: rule set ->
    section keys (n-gram sizes as nested mappings, as in params.yaml)."""
    out: dict[str, dict[str, Any]] = {}
    for d in (d for d in derived if d.matched):
        section = out.setdefault(d.rule_set, {})
        field, _, entry = d.key.partition(".")
        value = int(d.value) if isinstance(d.english, int) else float(d.value)
        if entry:
            section.setdefault(field, {})[entry] = value
        else:
            section[field] = value
    return out


def format_table(derived: Sequence[DerivedThreshold], language: str) -> str:
    """A plain-text table: threshold, English value and share removed, derived value and
    the share it removes of the target reference ("(kept)": not matched, the English value)."""
    rows = [("threshold", "english", "en removed", language, f"{language} removed")]
    rows += [(f"{d.rule_set}.{d.key}", _number(d.english), f"{d.english_share:.1%}",
              _number(d.value) + ("" if d.matched else " (kept)"), f"{d.share:.1%}") for d in derived]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) or not math.isfinite(value) else f"{value:g}"
