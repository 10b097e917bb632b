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

Languages (``clean.language_rules``, on by default): the document's language is
identified once (:mod:`redrobe.text.langid`, the pass that also scores
``redrobe_lang_score``), or taken from its ``language`` and ``language_score`` columns
when ingest routed it by language (:func:`given_language`: one language per document
in every stage), and the slice's rule sets and the signals judge it with that
language's profile (:mod:`redrobe.text.languages`: words, stop words, sentence ends)
and thresholds (``clean.language_thresholds``, :meth:`redrobe.config.Clean.for_language`).
English, and every language without a profile or thresholds of its own, run the very
rule sets built from the sections as they stand, i.e. the rules as they were before
languages were known. Each outcome carries the language, and :class:`CleanStats` counts
documents in, kept and removed per slice, language and reason.

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
from redrobe.text import langid, rpv2
from redrobe.text.base import Decision, FailureChecks, RuleSet, SignalRule
from redrobe.text.c4 import C4Rules
from redrobe.text.code import CodeRules
from redrobe.text.expressions import ExpressionRule
from redrobe.text.fineweb import FineWebRules
from redrobe.text.gopher import GopherQualityRules, GopherRepetitionRules
from redrobe.text.languages import ENGLISH, LanguageProfile, normalize_code, profile
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
SIGNALS_COLUMN, LANGUAGE_COLUMN = "quality_signals", langid.LANGUAGE_COLUMN
SIGNAL_COLUMNS = (SIGNALS_COLUMN, LANGUAGE_COLUMN)
#: the columns a document routed by language brings from ingest (kept through clean)
LANGUAGE_COLUMNS = (LANGUAGE_COLUMN, langid.LANGUAGE_SCORE_COLUMN)


def given_language(doc: Document) -> tuple[str, float] | None:
    """(code, score) of the language ingest routed ``doc`` by (its ``language`` and
    ``language_score`` columns), or None for a document that was not routed."""
    code = doc.extra.get(LANGUAGE_COLUMN)
    if not isinstance(code, str) or not code:
        return None
    return code, float(doc.extra.get(langid.LANGUAGE_SCORE_COLUMN) or 0.0)

Rule = RuleSet | SignalRule


def build_rule_sets(names: Sequence[str], clean: Clean,
                    language: LanguageProfile = ENGLISH) -> list[Rule]:
    """Instantiate resolved entries (rule-set names, ``expr:<name>``) from ``params.clean``,
    judging with ``language``'s profile (default: English, the rules as published)."""
    unknown = [n for n in names if n not in RULE_SETS and not
               (n.startswith(EXPRESSION_PREFIX) and n[len(EXPRESSION_PREFIX):] in clean.expressions)]
    if unknown:
        raise ValueError(f"unknown rule set(s) {unknown} (known: {sorted(RULE_SETS)}, "
                         f"expr:<name> for {sorted(clean.expressions)})")
    return [ExpressionRule(n[len(EXPRESSION_PREFIX):], clean.expressions[n[len(EXPRESSION_PREFIX):]])
            if n.startswith(EXPRESSION_PREFIX) else RULE_SETS[n](getattr(clean, n), language)
            for n in names]


class LanguageRules:
    """A slice's rule sets per language: built with the language's profile and with
    ``clean.language_thresholds.<code>`` merged into their sections, on first use.

    A language with neither a profile nor thresholds of its own (English, an
    unsupported language) has none (``None``): the Cleaner's rule sets, built from the
    sections as they stand, judge it exactly as without languages."""

    def __init__(self, names: Sequence[str], clean: Clean) -> None:
        self.names, self.clean = list(names), clean
        self._built: dict[str, list[Rule]] = {}

    def rules(self, code: str) -> list[Rule] | None:
        key = normalize_code(code)
        language = profile(key)
        if language is ENGLISH and key not in self.clean.language_thresholds:
            return None
        if key not in self._built:
            self._built[key] = build_rule_sets(self.names, self.clean.for_language(key), language)
        return self._built[key]


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
    language: str | None = None   # identified language, when the cleaner needed it

    @property
    def status(self) -> Status:
        if self.error is not None:
            return QUARANTINED
        return KEPT if self.reason is None else REMOVED


class Cleaner:
    """Unicode normalization, quality signals, then rule sets, as one document transform.

    With ``languages`` (:class:`LanguageRules`) each document is judged by its
    identified language's rule sets and its signals use that language's lists; without
    it every document gets ``rule_sets`` and English lists."""

    def __init__(self, normalization: str, rule_sets: Sequence[Rule],
                 store_signals: bool = False, languages: LanguageRules | None = None) -> None:
        self.normalization = normalization
        self.rule_sets = list(rule_sets)
        self.store_signals = store_signals
        self.languages = languages
        self.needs_signals = store_signals or any(_reads_signals(r) for r in self.rule_sets)
        # the language is identified when something reads it: stored columns, signals
        # (redrobe_lang_score), or rule sets that judge per language
        self.needs_language = self.needs_signals or (languages is not None and any(
            getattr(r, "language_aware", False) for r in self.rule_sets))

    @classmethod
    def for_slice(cls, slice_name: str, clean: Clean) -> Cleaner:
        names = clean.resolve(clean.rule_sets.get(slice_name, []))
        rule_sets = build_rule_sets(names, clean)
        languages = LanguageRules(names, clean) if clean.language_rules else None
        return cls(clean.normalization, rule_sets, clean.store_signals, languages)

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
        given = given_language(doc)
        language: str | None
        if given is not None:
            language, score = given
        elif self.needs_language:
            language, score = langid.identify(current.text)
        else:
            language, score = None, 0.0
        signals, columns = self.signals(current.text, language, score)
        edited: dict[str, int] = {}
        for rule_set in self.rules_for(language):
            decision: Decision = (rule_set.check_signals(signals) if _reads_signals(rule_set)
                                  else rule_set(current))
            if decision.reason is not None:
                return Outcome(doc, chars, reason=decision.reason, rule_set=rule_set.name,
                               columns=columns, language=language)
            if decision.text is not None:
                edited[rule_set.name] = len(current.text) - len(decision.text)
                current = current.with_text(decision.text)
        return Outcome(current, chars, chars_edited=edited, columns=columns, language=language)

    def rules_for(self, language: str | None) -> list[Rule]:
        """The rule sets that judge a document of ``language`` (None: not identified)."""
        own = None if self.languages is None or language is None else self.languages.rules(language)
        return self.rule_sets if own is None else own

    def signals(self, text: str, language: str | None = None,
                score: float = 0.0) -> tuple[rpv2.Signals, dict[str, str]]:
        """(signals the rules read, columns to store) for a text whose language and its
        probability were identified (:meth:`clean` does it once for rules and signals)."""
        if not self.needs_signals:
            return {}, {}
        if language is None:   # a caller that did not identify it
            language, score = langid.identify(text)
        lists = profile(language) if self.languages is not None else ENGLISH
        signals = rpv2.signals_for(text, lists, score)
        if not self.store_signals:
            return signals, {}
        return signals, {SIGNALS_COLUMN: rpv2.signals_to_json(signals), LANGUAGE_COLUMN: language}


def _reads_signals(rule: Rule) -> TypeIs[SignalRule]:
    return getattr(rule, "needs_signals", False)


#: the language a document is counted under when it was not identified (quarantined
#: before, or its slice's rules never needed it): ISO 639-2 "undetermined"
UNDETERMINED = langid.UNDETERMINED
#: per-language document counts (``CleanStats.language_docs`` fields)
LANGUAGE_COUNTS = ("docs_in", "docs_kept", "docs_removed", "docs_quarantined")


def _language_key(slice_name: str, language: str) -> str:
    # one flat "<slice>|<language>" key: counters stay {key: Counter}, as the stage's
    # cache entry stores them (slice names and language codes never hold "|")
    return f"{slice_name}|{language}"


class CleanStats:
    """Per-slice and per-rule-set counts for the clean stage metrics (mergeable)."""

    def __init__(self) -> None:
        self.rule_sets_by_slice: dict[str, list[str]] = {}
        self.chars_removed: dict[str, Counter] = defaultdict(Counter)   # slice -> reason -> chars
        self.docs_removed: dict[str, Counter] = defaultdict(Counter)    # slice -> reason -> docs
        self.rule_set_totals: dict[str, Counter] = defaultdict(Counter)
        # "<slice>|<language>" -> LANGUAGE_COUNTS / reason -> docs
        self.language_docs: dict[str, Counter] = defaultdict(Counter)
        self.language_reasons: dict[str, Counter] = defaultdict(Counter)

    def start_slice(self, slice_name: str, rule_set_names: Sequence[str]) -> None:
        self.rule_sets_by_slice[slice_name] = list(rule_set_names)

    def add(self, slice_name: str, outcome: Outcome) -> None:
        names = self.rule_sets_by_slice[slice_name]
        self._add_language(slice_name, outcome)
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

    def _add_language(self, slice_name: str, outcome: Outcome) -> None:
        key = _language_key(slice_name, normalize_code(outcome.language or UNDETERMINED))
        self.language_docs[key]["docs_in"] += 1
        self.language_docs[key][f"docs_{outcome.status.value}"] += 1
        if outcome.status == REMOVED:
            self.language_reasons[key][outcome.reason] += 1

    def merge(self, other: CleanStats) -> None:
        self.rule_sets_by_slice.update(other.rule_sets_by_slice)
        for attr in ("chars_removed", "docs_removed", "rule_set_totals", "language_docs",
                     "language_reasons"):
            mine = getattr(self, attr)
            for name, counts in getattr(other, attr).items():
                mine[name].update(counts)

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

    def removal_by_language(self, accounting: dict[str, Any]) -> dict[str, Any]:
        """Documents in, kept, removed and quarantined per language, with the removals by
        reason: ``{"slices": {slice: {language: row}}, "total": {language: row}}``, a row
        being ``{docs_in, docs_kept, docs_removed, docs_quarantined, removed_fraction,
        removed_by_reason}``. Languages are identifier codes as profiles key them
        (:func:`~redrobe.text.languages.normalize_code`), ``und`` where none was identified.

        Each slice's rows must add up to the ledger's (``accounting``: the stage ledger's
        ``as_dict()``); raises AccountingError otherwise."""
        slices: dict[str, dict[str, Counter]] = defaultdict(dict)
        for key, counts in self.language_docs.items():
            slice_name, language = key.split("|", 1)
            slices[slice_name][language] = counts + Counter(
                {f"reason:{r}": n for r, n in self.language_reasons[key].items()})
        for name, rows in slices.items():
            _check_language_counts(name, rows, accounting["slices"].get(name, {}))
        total: dict[str, Counter] = defaultdict(Counter)
        for rows in slices.values():
            for language, counts in rows.items():
                total[language].update(counts)
        return {"slices": {name: _language_rows(rows) for name, rows in sorted(slices.items())},
                "total": _language_rows(total)}


def _check_language_counts(slice_name: str, rows: dict[str, Counter], ledger: dict[str, Any]) -> None:
    summed = sum(rows.values(), Counter())
    got = (summed["docs_in"], summed["docs_removed"], summed["docs_quarantined"])
    expected = (ledger.get("in", 0), ledger.get("removed", 0), ledger.get("quarantined", 0))
    if got != expected:
        raise AccountingError(f"clean: {slice_name}: documents per language (in, removed, quarantined) "
                              f"{got} != ledger {expected}")


def _language_rows(rows: dict[str, Counter]) -> dict[str, dict[str, Any]]:
    out = {}
    for language, counts in sorted(rows.items()):
        row: dict[str, Any] = {field: counts[field] for field in LANGUAGE_COUNTS}
        row["removed_fraction"] = round(row["docs_removed"] / row["docs_in"], 8) if row["docs_in"] else 0.0
        row["removed_by_reason"] = {key[len("reason:"):]: n for key, n in sorted(counts.items())
                                    if key.startswith("reason:")}
        out[language] = row
    return out
