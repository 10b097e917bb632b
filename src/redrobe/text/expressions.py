"""User threshold expressions over stored quality signals, as removal rules.

    rule = ExpressionRule("short_or_long", "rps_doc_word_count < 50 or rps_doc_word_count > 100000")
    rule.check_signals(signals)     # Decision: KEEP or remove("expr_short_or_long")

The language itself (which signals, the grammar, how a tree is evaluated, NaN rules)
is :mod:`redrobe.expressions`; params validation parses ``clean.expressions`` with it
once, so a bad expression is a ConfigError before any stage runs. This module makes a
named expression a rule of the clean stage: a document is removed, for reason
``expr_<name>``, when its expression is true on the document's signals.
"""

from __future__ import annotations

from redrobe.config import EXPRESSION_PREFIX
from redrobe.expressions import Signals, evaluate, parse_signal_expression
from redrobe.text.base import KEEP, Decision, remove

EXPRESSION_REASON_PREFIX = "expr_"


def expression_reason(name: str) -> str:
    """The removal reason of expression ``name``: ``expr_<name>``."""
    return EXPRESSION_REASON_PREFIX + name


class ExpressionRule:
    """One named expression as a rule: removes a document when the expression is true.

    It reads the document's stored signals (``check_signals``), never the text, so the
    Cleaner computes the signals once and every expression reuses them."""

    needs_signals = True

    def __init__(self, name: str, source: str) -> None:
        self.name = EXPRESSION_PREFIX + name        # as listed in clean.rule_sets
        self.reason = expression_reason(name)
        self.source = source
        self.tree = parse_signal_expression(source)

    def check_signals(self, signals: Signals) -> Decision:
        return remove(self.reason) if evaluate(self.tree, signals) else KEEP
