"""What a rule set returns, and the small helpers the rule sets share.

A rule set is a callable ``rule_set(doc) -> Decision`` with a ``name``. A decision
either keeps the document (``reason is None``; ``text`` set when the rule set edited it,
as C4 drops lines) or names the reason it is removed. A :class:`SignalRule` (a user
expression) decides from the document's stored quality signals instead of its text:
``rule.check_signals(signals) -> Decision``; the Cleaner computes the signals once. Reasons are module-level
constants next to the rules that produce them, so stats and tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Protocol

from redrobe.documents import Document
from redrobe.text.languages import ENGLISH, LanguageProfile


@dataclass(frozen=True, slots=True)
class Decision:
    """Keep (``reason is None``), possibly with replacement ``text``, or remove for ``reason``."""

    reason: str | None = None
    text: str | None = None

    @property
    def keep(self) -> bool:
        return self.reason is None


KEEP = Decision()


def remove(reason: str) -> Decision:
    return Decision(reason=reason)


class RuleSet(Protocol):
    """A named rule set built from its params section."""

    name: str

    def __call__(self, doc: Document) -> Decision: ...


class SignalRule(Protocol):
    """A named rule that reads RedPajama-V2 signals (name -> [[start, end, score], ...])."""

    name: str
    needs_signals: bool

    def check_signals(self, signals: dict[str, list[list[Any]]]) -> Decision: ...


def first_failure(failures: Iterator[str]) -> Decision:
    """KEEP, or remove for the first reason a lazy sequence of failed checks yields (so
    the checks after it never run). Rule sets whose ``reasons(text)`` lists every failed
    check share that sequence with ``check(text)``."""
    reason = next(failures, None)
    return KEEP if reason is None else remove(reason)


class FailureChecks:
    """Base of the named rule sets (every entry of ``text.rules.RULE_SETS``): built from
    their params section, their checks are one lazy sequence, ``_failures(text)``,
    yielding a reason for each check that fails, in check order: :meth:`check` stops at
    the first, :meth:`reasons` runs them all. A rule set that edits the text it keeps
    (C4 drops lines) overrides :meth:`check` to return the edited text.

    ``profile`` is the language the rule set judges (:mod:`redrobe.text.languages`:
    words, stop words, sentence ends); the default is today's English behaviour. Rule
    sets whose checks depend on it set ``language_aware``. ``thresholds`` maps each
    threshold a rule set can derive per language (:mod:`redrobe.text.thresholds`) to the
    comparison of :meth:`statistics` with it that removes a document, e.g.
    ``{"min_words": "<"}``: ``statistics(text)["min_words"] < config.min_words`` removes."""

    name: str
    language_aware: ClassVar[bool] = False
    thresholds: dict[str, str] = {}   # per instance where the config names them (n-gram sizes)

    def __init__(self, config: Any, profile: LanguageProfile = ENGLISH) -> None:
        self.config = config
        self.profile = profile

    def __call__(self, doc: Document) -> Decision:
        return self.check(doc.text)

    def check(self, text: str) -> Decision:
        """KEEP, or remove for the first check that fails."""
        return first_failure(self._failures(text))

    def reasons(self, text: str) -> list[str]:
        """Every check that fails, each judged on its own, in check order (the first is
        what :meth:`check` reports): per-rule removal counts, as FineWeb App. E.4 Table 2
        counts each rule alone."""
        return list(self._failures(text))

    def _failures(self, text: str) -> Iterator[str]:
        raise NotImplementedError

    def statistics(self, text: str) -> dict[str, float]:
        """The value each of :attr:`thresholds` is compared with, for one text."""
        raise NotImplementedError


def ratio(part: float, whole: float) -> float:
    """``part / whole``, 0 for an empty whole (an empty document has no repeated lines)."""
    return part / whole if whole else 0.0
