"""The signal-expression language: conditions over stored RedPajama-V2 quality signals.

    tree = parse_signal_expression("rps_doc_word_count < 50 or mean(rps_lines_num_words) < 3")
    evaluate(tree, signals)   # True / False

An expression is a condition over the signals in :data:`QUALITY_SIGNALS`: signal
names, numbers, comparisons (chained as in Python), ``and``/``or``/``not``,
``+ - * /`` and the aggregates :data:`EXPRESSION_AGGREGATES` of one signal. Anything
else (other calls, attribute access, subscripts, strings) is rejected by
:func:`parse_signal_expression`, which checks the tree node by node and never
evaluates it, so ``__import__('os')`` is refused before anything can run.
:func:`evaluate` walks a checked tree; nothing is ever passed to ``eval``. An
expression longer than :data:`MAX_EXPRESSION_CHARS` or deeper than
:data:`MAX_EXPRESSION_DEPTH` is refused the same way (a ValueError, not a RecursionError).

``signals`` is what :func:`redrobe.text.rpv2.compute_signals` returns (or
``rpv2.signals_from_json`` reads back from the ``quality_signals`` column): signal
name -> list of ``[start, end, score]`` spans. A document-level signal
(``rps_doc_*``, ``redrobe_lang_score``) used by name is the score of its one span; a
line-level signal (``rps_lines_*``, one span per line) must be reduced with an
aggregate over its scores: ``mean``, ``sum``, ``min``, ``max`` or ``count`` (the number
of spans, i.e. lines).

Undefined values are NaN and compare false: a missing/None score, ``mean``/``min``/
``max`` of no spans, and a division by zero. So ``x / y > 0.5`` never removes a
document with ``y == 0`` (but ``not (x / y <= 0.5)`` does).

This module is the whole language and depends on the standard library only:
:mod:`redrobe.config` parses ``clean.expressions`` with it at params validation (each
problem becomes a ConfigError naming ``clean.expressions.<name>``), and
:mod:`redrobe.text.expressions` turns a parsed expression into a removal rule.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: RedPajama-V2 quality signals the clean stage stores (docs/references.md, "RedPajama-V2
#: quality signals"; ccnet_* need cc_net and are not computed) plus redrobe's language
#: score; redrobe.text.rpv2 computes exactly these (a test keeps them equal).
#: ``rps_lines_*`` have one span per line.
QUALITY_SIGNALS: tuple[str, ...] = (
    "rps_doc_word_count", "rps_doc_mean_word_length", "rps_doc_frac_unique_words",
    "rps_doc_unigram_entropy", "rps_doc_stop_word_fraction", "rps_doc_symbol_to_word_ratio",
    "rps_doc_frac_no_alph_words", "rps_doc_frac_all_caps_words",
    "rps_doc_frac_lines_end_with_ellipsis", "rps_doc_curly_bracket", "rps_doc_lorem_ipsum",
    "rps_doc_num_sentences",
    *(f"rps_doc_frac_chars_top_{n}gram" for n in (2, 3, 4)),
    *(f"rps_doc_frac_chars_dupe_{n}grams" for n in range(5, 11)),
    "rps_lines_ending_with_terminal_punctution_mark", "rps_lines_start_with_bulletpoint",
    "rps_lines_num_words", "rps_lines_javascript_counts", "rps_lines_numerical_chars_fraction",
    "rps_lines_uppercase_letter_fraction",
    "redrobe_lang_score",
)
LINE_SIGNAL_PREFIX = "rps_lines_"
#: aggregates an expression may apply to a signal's span scores
EXPRESSION_AGGREGATES = ("mean", "sum", "min", "max", "count")

#: signal name -> ``[start, end, score]`` spans (score: int, float or None)
Signals = Mapping[str, Sequence[Sequence[Any]]]

NAN = float("nan")

#: the longest expression and the deepest tree accepted: far beyond any real filter, and
#: small enough that parsing, checking and evaluating (recursive walks) never exhaust the
#: interpreter's stack, so an over-deep expression is a clear error, not a RecursionError
MAX_EXPRESSION_CHARS = 4096
MAX_EXPRESSION_DEPTH = 64

# ----------------------------------------------------------------------------- parsing

_EXPRESSION_OPERATORS = (ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Add, ast.Sub, ast.Mult,
                         ast.Div, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def parse_signal_expression(source: str) -> ast.Expression:
    """Parse a threshold expression over :data:`QUALITY_SIGNALS`, allowing only signal
    names, numbers, comparisons, and/or/not, + - * / and the aggregates
    (:data:`EXPRESSION_AGGREGATES`) of one signal. Raises ValueError saying what is not
    allowed. Nothing is ever evaluated here: the tree is checked node by node, so
    ``__import__('os')`` or ``x.attr`` is rejected before anything can run."""
    if not isinstance(source, str):
        raise ValueError(f"expected an expression string, got {source!r}")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"longer than {MAX_EXPRESSION_CHARS} characters ({len(source)})")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression ({exc.msg}): {source!r}") from None
    except (RecursionError, MemoryError):   # the parser's own nesting limits
        raise ValueError(f"nested too deeply to parse (at most {MAX_EXPRESSION_DEPTH} levels)") from None
    _check_depth(tree.body)
    _check_node(tree.body)
    if not isinstance(tree.body, (ast.Compare, ast.BoolOp)) and not (
            isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)):
        raise ValueError(f"must be a condition (a comparison, and/or/not): {source!r}")
    return tree


def _check_depth(root: ast.AST) -> None:
    """Refuse a tree deeper than MAX_EXPRESSION_DEPTH; iterative, so any depth is measured."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise ValueError(f"nested deeper than {MAX_EXPRESSION_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _check_node(node: ast.AST) -> None:
    if isinstance(node, ast.Constant):
        _check_constant(node)
    elif isinstance(node, ast.Name):
        _check_document_signal(node.id)
    elif isinstance(node, ast.Call):
        _check_aggregate(node)
    elif isinstance(node, (ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Compare)):
        _check_children(node)
    else:
        raise ValueError(f"{type(node).__name__} is not allowed: {ast.unparse(node)!r}")


def _check_constant(node: ast.Constant) -> None:
    # bool is an int subclass: True would otherwise pass as the number 1
    if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
        raise ValueError(f"only numbers are allowed as constants, got {node.value!r}")


def _check_document_signal(name: str) -> None:
    _check_signal_name(name)
    if name.startswith(LINE_SIGNAL_PREFIX):
        raise ValueError(f"{name} has one score per line: use an aggregate, "
                         f"e.g. mean({name}) ({', '.join(EXPRESSION_AGGREGATES)})")


def _check_aggregate(node: ast.Call) -> None:
    if not (isinstance(node.func, ast.Name) and node.func.id in EXPRESSION_AGGREGATES
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Name)):
        raise ValueError(f"only {'/'.join(EXPRESSION_AGGREGATES)}(<signal>) calls are allowed, "
                         f"got {ast.unparse(node)!r}")
    _check_signal_name(node.args[0].id)   # any signal: a document-level one has one span


def _check_children(node: ast.AST) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _EXPRESSION_OPERATORS):
            continue
        if isinstance(child, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop)):
            raise ValueError(f"operator {type(child).__name__} is not allowed: {ast.unparse(node)!r}")
        _check_node(child)


def _check_signal_name(name: str) -> None:
    if name not in QUALITY_SIGNALS:
        raise ValueError(f"unknown signal {name!r} (known: {', '.join(QUALITY_SIGNALS)})")


# ----------------------------------------------------------------------------- evaluation

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
    """Value of a checked expression tree (from :func:`parse_signal_expression`) on ``signals``."""
    return _eval(tree.body, signals)


def _eval(node: ast.AST, signals: Signals) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):  # a document-level signal: its one span's score
        return doc_score(signals, node.id)
    if isinstance(node, ast.Call):
        return _AGGREGATES[node.func.id](line_scores(signals, node.args[0].id))  # type: ignore[attr-defined]
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
    if isinstance(node, ast.Compare):
        return _compare(node, signals)
    raise ValueError(f"unchecked expression node {type(node).__name__}")  # parse rejects these


def _compare(node: ast.Compare, signals: Signals) -> bool:
    # chained, as Python: a < b < c is a < b and b < c, each operand evaluated once
    left = _eval(node.left, signals)
    for op, comparator in zip(node.ops, node.comparators):
        right = _eval(comparator, signals)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def doc_score(signals: Signals, name: str) -> float:
    """Score of a document-level signal (one span); NaN where it is undefined (None).

    Here rather than in :mod:`redrobe.text.rpv2` (which re-exports it) so that validating
    params does not import numpy and the text library."""
    spans = signals[name]
    if len(spans) != 1:
        raise ValueError(f"{name} has {len(spans)} spans; doc_score needs a document-level signal")
    score = spans[0][2]
    return math.nan if score is None else float(score)


def line_scores(signals: Signals, name: str) -> list[float]:
    """Scores of a signal's spans as floats, NaN where undefined (as ``rpv2.line_scores``)."""
    return [math.nan if span[2] is None else float(span[2]) for span in signals[name]]
