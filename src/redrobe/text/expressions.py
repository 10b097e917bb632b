"""User threshold expressions over stored quality signals, as removal rules.

    rule = ExpressionRule("short_or_long", "rps_doc_word_count < 50 or rps_doc_word_count > 100000")
    rule.check_signals(signals)     # Decision: KEEP or remove("expr_short_or_long")
    evaluate(parse_signal_expression("mean(rps_lines_num_words) > 3"), signals)   # True/False

``signals`` is what :func:`redrobe.text.rpv2.compute_signals` returns (or
``rpv2.signals_from_json`` reads back from the ``quality_signals`` column) and the clean
stage stores: signal name -> list of ``[start, end, score]`` spans. A document-level
signal (``rps_doc_*``, ``redrobe_lang_score``) used by name is the score of its one
span; a line-level signal (``rps_lines_*``, one span per line) must be reduced with an
aggregate over its scores: ``mean``, ``sum``, ``min``, ``max`` or ``count`` (the number
of spans, i.e. lines).

The grammar is checked once, at params validation, by
:func:`redrobe.config.parse_signal_expression` (names of known signals, numbers,
comparisons, and/or/not, + - * /, the aggregates; anything else, such as calls,
attribute access or subscripts, is a ConfigError naming ``clean.expressions.<name>``).
Evaluation walks that checked tree; nothing is ever passed to ``eval``.

Undefined values are NaN and compare false: a missing/None score, ``mean``/``min``/
``max`` of no spans, and a division by zero. So ``x / y > 0.5`` never removes a
document with ``y == 0`` (but ``not (x / y <= 0.5)`` does).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from redrobe.config import EXPRESSION_PREFIX, parse_signal_expression
from redrobe.text.base import KEEP, Decision, remove
from redrobe.text.rpv2 import Signals, doc_score, line_scores

NAN = float("nan")
EXPRESSION_REASON_PREFIX = "expr_"


def expression_reason(name: str) -> str:
    """The removal reason of expression ``name``: ``expr_<name>``."""
    return EXPRESSION_REASON_PREFIX + name




def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else NAN


def _divide(a: float, b: float) -> float:
    return a / b if b else NAN


_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": _mean,
    "sum": math.fsum,
    "min": lambda v: min(v) if v else NAN,
    "max": lambda v: max(v) if v else NAN,
    "count": lambda v: float(len(v)),
}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: _divide}
_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne}


def evaluate(tree: ast.Expression, signals: Signals) -> Any:
    """Value of a checked expression tree (from ``parse_signal_expression``) on ``signals``."""
    return _eval(tree.body, signals)


def _eval(node: ast.AST, signals: Signals) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):  # a document-level signal: its one span's score
        return doc_score(signals, node.id)
    if isinstance(node, ast.Call):
        scores = line_scores(signals, node.args[0].id).tolist()  # type: ignore[attr-defined]
        return _AGGREGATES[node.func.id](scores)  # type: ignore[attr-defined]
    if isinstance(node, ast.BoolOp):
        values = (bool(_eval(v, signals)) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, signals)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, signals), _eval(node.right, signals))
    if isinstance(node, ast.Compare):  # chained, as Python: a < b < c
        left = _eval(node.left, signals)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, signals)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ValueError(f"unchecked expression node {type(node).__name__}")  # parse rejects these


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
