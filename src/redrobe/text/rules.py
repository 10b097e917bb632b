"""Rule-set registry and the clean transform: normalize, then apply a slice's rule sets.

    cleaner = Cleaner.for_slice("c4", params.clean)
    for outcome in cleaner(docs):          # Iterable[Document] -> Iterator[Outcome]
        outcome.status                     # "kept" | "removed" | "quarantined"

Rule sets per slice come from ``params.clean.rule_sets`` (books get repetition only,
github gets the code rules). An entry is a preset (``params.clean.presets``, expanded in
place), a rule set (:data:`RULE_SETS`) or ``expr:<name>`` (a user expression over the
quality signals, :mod:`redrobe.text.expressions`); see :meth:`redrobe.config.Clean.resolve`.
They run in the resolved order and the first one that removes a document names the
reason. A slice without an entry keeps every document (:attr:`Cleaner.rule_set_names`
is empty, and the stage metrics say so). A document whose processing raises is
quarantined with the error instead of stopping the stage.

Quality signals (RedPajama-V2, :mod:`redrobe.text.rpv2`) are computed once per
document, on the normalized text the rules see (before any rule edits lines), when
``store_signals`` is on or an expression needs them; with ``store_signals`` the outcome
carries them as the ``quality_signals`` JSON column plus a ``language`` column
(:mod:`redrobe.text.langid`, the same pass that scores ``redrobe_lang_score``), for kept
and removed documents alike.

The reason constants live with their rule sets (:mod:`redrobe.text.gopher`,
:mod:`redrobe.text.c4`, :mod:`redrobe.text.code`, :mod:`redrobe.text.fineweb`,
:func:`redrobe.text.expressions.expression_reason`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from redrobe.accounting import AccountingError
from redrobe.config import EXPRESSION_PREFIX, Clean
from redrobe.documents import Document, Status
from redrobe.text import rpv2
from redrobe.text.base import Decision, FailureChecks, RuleSet, SignalRule
from redrobe.text.c4 import C4Rules
from redrobe.text.code import CodeRules
from redrobe.text.expressions import ExpressionRule
from redrobe.text.fineweb import FineWebRules
from redrobe.text.gopher import GopherQualityRules, GopherRepetitionRules
from redrobe.text.normalize import normalize_unicode

if TYPE_CHECKING:
    from typing_extensions import TypeIs

#: rule-set name -> class; each is built from the params.clean field of the same name
RULE_SETS: dict[str, type[FailureChecks]] = {
    GopherQualityRules.name: GopherQualityRules,
    GopherRepetitionRules.name: GopherRepetitionRules,
    C4Rules.name: C4Rules,
    CodeRules.name: CodeRules,
    FineWebRules.name: FineWebRules,
}

#: an outcome's status (:class:`redrobe.documents.Status`)
KEPT, REMOVED, QUARANTINED = Status.KEPT, Status.REMOVED, Status.QUARANTINED
#: the columns ``store_signals`` adds to kept and removed documents
SIGNALS_COLUMN, LANGUAGE_COLUMN = "quality_signals", "language"
SIGNAL_COLUMNS = (SIGNALS_COLUMN, LANGUAGE_COLUMN)

Rule = RuleSet | SignalRule


def build_rule_sets(names: Sequence[str], clean: Clean) -> list[Rule]:
    """Instantiate resolved entries (rule-set names, ``expr:<name>``) from ``params.clean``."""
    unknown = [n for n in names if n not in RULE_SETS and not
               (n.startswith(EXPRESSION_PREFIX) and n[len(EXPRESSION_PREFIX):] in clean.expressions)]
    if unknown:
        raise ValueError(f"unknown rule set(s) {unknown} (known: {sorted(RULE_SETS)}, "
                         f"expr:<name> for {sorted(clean.expressions)})")
    return [ExpressionRule(n[len(EXPRESSION_PREFIX):], clean.expressions[n[len(EXPRESSION_PREFIX):]])
            if n.startswith(EXPRESSION_PREFIX) else RULE_SETS[n](getattr(clean, n)) for n in names]


@dataclass(frozen=True)
class Outcome:
    """What became of one document.

    ``doc`` is the cleaned document when kept, and the document exactly as read when
    removed or quarantined (nothing is lost: the removed shard holds the original).
    ``input_chars`` is the length of the text as read; ``chars_edited`` maps a rule set
    to the characters its edits removed from a kept document (C4 drops lines).
    """

    doc: Document
    input_chars: int = 0
    reason: str | None = None
    rule_set: str | None = None
    error: str | None = None
    chars_edited: dict[str, int] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)   # quality_signals, language

    @property
    def status(self) -> Status:
        if self.error is not None:
            return QUARANTINED
        return KEPT if self.reason is None else REMOVED


class Cleaner:
    """Unicode normalization, quality signals, then rule sets, as one document transform."""

    def __init__(self, normalization: str, rule_sets: Sequence[Rule],
                 store_signals: bool = False) -> None:
        self.normalization = normalization
        self.rule_sets = list(rule_sets)
        self.store_signals = store_signals
        self.needs_signals = store_signals or any(_reads_signals(r) for r in self.rule_sets)

    @classmethod
    def for_slice(cls, slice_name: str, clean: Clean) -> Cleaner:
        names = clean.resolve(clean.rule_sets.get(slice_name, []))
        return cls(clean.normalization, build_rule_sets(names, clean), clean.store_signals)

    @property
    def rule_set_names(self) -> list[str]:
        return [r.name for r in self.rule_sets]

    def __call__(self, docs: Iterable[Document]) -> Iterator[Outcome]:
        for doc in docs:
            try:
                yield self.clean(doc)
            except Exception as exc:  # a bad record is quarantined, never a crash
                chars = len(doc.text) if isinstance(doc.text, str) else 0
                yield Outcome(doc, chars, error=f"{type(exc).__name__}: {exc}")

    def clean(self, doc: Document) -> Outcome:
        """Normalize one document and run the rule sets on it (may raise)."""
        chars = len(doc.text)
        current = doc.with_text(normalize_unicode(doc.text, self.normalization))
        signals, columns = self.signals(current.text)
        edited: dict[str, int] = {}
        for rule_set in self.rule_sets:
            decision: Decision = (rule_set.check_signals(signals) if _reads_signals(rule_set)
                                  else rule_set(current))
            if decision.reason is not None:
                return Outcome(doc, chars, reason=decision.reason, rule_set=rule_set.name,
                               columns=columns)
            if decision.text is not None:
                edited[rule_set.name] = len(current.text) - len(decision.text)
                current = current.with_text(decision.text)
        return Outcome(current, chars, chars_edited=edited, columns=columns)

    def signals(self, text: str) -> tuple[rpv2.Signals, dict[str, str]]:
        """(signals the rules read, columns to store); one language-id pass for both."""
        if self.store_signals:
            signals, language = rpv2.compute_signals_with_language(text)
            return signals, {SIGNALS_COLUMN: rpv2.signals_to_json(signals), LANGUAGE_COLUMN: language}
        return (rpv2.compute_signals(text) if self.needs_signals else {}), {}


def _reads_signals(rule: Rule) -> TypeIs[SignalRule]:
    return getattr(rule, "needs_signals", False)


class CleanStats:
    """Per-slice and per-rule-set counts for the clean stage metrics (mergeable)."""

    def __init__(self) -> None:
        self.rule_sets_by_slice: dict[str, list[str]] = {}
        self.chars_removed: dict[str, Counter] = defaultdict(Counter)   # slice -> reason -> chars
        self.docs_removed: dict[str, Counter] = defaultdict(Counter)    # slice -> reason -> docs
        self.rule_set_totals: dict[str, Counter] = defaultdict(Counter)

    def start_slice(self, slice_name: str, rule_set_names: Sequence[str]) -> None:
        self.rule_sets_by_slice[slice_name] = list(rule_set_names)

    def add(self, slice_name: str, outcome: Outcome) -> None:
        names = self.rule_sets_by_slice[slice_name]
        if outcome.status == QUARANTINED:
            return
        # every rule set before the removing one saw the document and kept it
        checked = names if outcome.rule_set is None else names[:names.index(outcome.rule_set) + 1]
        for name in checked:
            self.rule_set_totals[name]["docs_checked"] += 1
        if outcome.status == REMOVED:
            assert outcome.rule_set is not None  # set with the reason by Cleaner.clean
            chars = outcome.input_chars
            self.chars_removed[slice_name][outcome.reason] += chars
            self.docs_removed[slice_name][outcome.reason] += 1
            self.rule_set_totals[outcome.rule_set]["docs_removed"] += 1
            self.rule_set_totals[outcome.rule_set]["chars_removed"] += chars
        for name, chars in outcome.chars_edited.items():
            self.rule_set_totals[name]["docs_edited"] += 1
            self.rule_set_totals[name]["chars_edited"] += chars

    def merge(self, other: CleanStats) -> None:
        self.rule_sets_by_slice.update(other.rule_sets_by_slice)
        for name, counts in other.chars_removed.items():
            self.chars_removed[name].update(counts)
        for name, counts in other.docs_removed.items():
            self.docs_removed[name].update(counts)
        for name, counts in other.rule_set_totals.items():
            self.rule_set_totals[name].update(counts)

    def as_dict(self) -> dict[str, Any]:
        keys = ("docs_checked", "docs_removed", "chars_removed", "docs_edited", "chars_edited")
        return {
            "slices": {name: {"rule_sets": rules,
                              "chars_removed_by_reason": dict(sorted(self.chars_removed[name].items()))}
                       for name, rules in sorted(self.rule_sets_by_slice.items())},
            "slices_without_rules": sorted(n for n, r in self.rule_sets_by_slice.items() if not r),
            "rule_sets": {name: {k: counts[k] for k in keys}
                          for name, counts in sorted(self.rule_set_totals.items())},
        }

    def removal_by_rule(self, accounting: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
        """What each rule removed, per slice: ``{slice: {reason: {docs, chars, doc_fraction,
        char_fraction}}}``, fractions of the slice's input documents and characters.

        ``accounting`` is the stage ledger's ``as_dict()``; its removal counts must equal
        these (raises AccountingError otherwise), so the table adds up to the ledger."""
        slices = accounting["slices"]
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for name in sorted(self.rule_sets_by_slice):
            counts = slices.get(name, {})
            ledger_counts = counts.get("removed_by_reason", {})
            if dict(self.docs_removed[name]) != ledger_counts:
                raise AccountingError(f"clean: {name}: removals by rule {dict(self.docs_removed[name])} "
                                      f"!= ledger {ledger_counts}")
            docs_in, chars_in = counts.get("in", 0), counts.get("chars_in", 0)
            out[name] = {reason: {"docs": docs, "chars": self.chars_removed[name][reason],
                                  "doc_fraction": round(docs / docs_in, 8) if docs_in else 0.0,
                                  "char_fraction": (round(self.chars_removed[name][reason] / chars_in, 8)
                                                    if chars_in else 0.0)}
                         for reason, docs in sorted(self.docs_removed[name].items())}
        return out
