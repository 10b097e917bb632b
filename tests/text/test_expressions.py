"""Signal expressions: evaluation, aggregates, NaN rules, and rejection of anything unsafe.

    pytest tests/text/test_expressions.py -q
"""

from __future__ import annotations

import math

import pytest

from redrobe.config import ConfigError, Params, params_from_dict
from redrobe.expressions import QUALITY_SIGNALS, evaluate, parse_signal_expression
from redrobe.text.expressions import ExpressionRule, expression_reason

# a three-line document's signals, in the stored span form
SIGNALS = {
    "rps_doc_word_count": [[0, 60, 12.0]],
    "rps_doc_mean_word_length": [[0, 60, 4.5]],
    "rps_doc_frac_chars_top_2gram": [[0, 60, 0.0]],
    "rps_lines_num_words": [[0, 20, 4.0], [21, 40, 6.0], [41, 60, 2.0]],
    "rps_lines_ending_with_terminal_punctution_mark": [[0, 20, 1.0], [21, 40, 0.0], [41, 60, 0.0]],
    "rps_lines_start_with_bulletpoint": [],
    "redrobe_lang_score": [[0, 60, None]],
}


def value(source: str):
    return evaluate(parse_signal_expression(source), SIGNALS)


@pytest.mark.parametrize("source, expected", [
    ("rps_doc_word_count < 50", True),
    ("rps_doc_word_count < 50 and rps_doc_mean_word_length > 5", False),
    ("rps_doc_word_count > 100 or rps_doc_mean_word_length > 4", True),
    ("not rps_doc_word_count < 50", False),
    ("10 < rps_doc_word_count <= 12", True),            # chained, as Python
    ("10 < rps_doc_word_count < 12", False),
    ("rps_doc_word_count * rps_doc_mean_word_length == 54", True),
    ("(rps_doc_word_count - 2) / 5 == 2", True),
    ("-rps_doc_word_count < -11.5", True),
    ("rps_doc_frac_chars_top_2gram != 0", False),
])
def test_document_signals_arithmetic_and_logic(source: str, expected: bool) -> None:
    assert value(source) is expected


@pytest.mark.parametrize("source, expected", [
    ("mean(rps_lines_num_words) == 4", True),
    ("sum(rps_lines_num_words) == 12", True),
    ("min(rps_lines_num_words) == 2 and max(rps_lines_num_words) == 6", True),
    ("count(rps_lines_num_words) == 3", True),
    ("mean(rps_lines_ending_with_terminal_punctution_mark) < 0.5", True),
    ("sum(rps_lines_ending_with_terminal_punctution_mark) / count(rps_lines_num_words) > 0.3", True),
    ("mean(rps_doc_word_count) == 12", True),            # an aggregate of one span is its score
])
def test_aggregates_over_line_signals(source: str, expected: bool) -> None:
    assert value(source) is expected


def test_undefined_values_are_nan_and_never_remove() -> None:
    assert math.isnan(value_of("mean(rps_lines_start_with_bulletpoint)"))       # no lines
    assert value("mean(rps_lines_start_with_bulletpoint) > 0.9") is False
    assert value("count(rps_lines_start_with_bulletpoint) == 0") is True
    assert value("sum(rps_lines_start_with_bulletpoint) == 0") is True
    assert value("redrobe_lang_score < 0.5") is False                           # a None score
    assert value("rps_doc_word_count / rps_doc_frac_chars_top_2gram > 1") is False  # x / 0


def value_of(source: str) -> float:
    """The numeric value of an arithmetic sub-expression (wrapped to pass the grammar)."""
    tree = parse_signal_expression(f"({source}) == 0")
    return evaluate(type(tree)(body=tree.body.left), SIGNALS)


def test_expression_rule_reason_and_decision() -> None:
    rule = ExpressionRule("short_or_long", "rps_doc_word_count < 50 or rps_doc_word_count > 100000")
    assert rule.name == "expr:short_or_long" and rule.reason == expression_reason("short_or_long")
    assert rule.check_signals(SIGNALS).reason == "expr_short_or_long"
    assert rule.check_signals({**SIGNALS, "rps_doc_word_count": [[0, 60, 500.0]]}).keep


def test_missing_signal_raises_so_the_document_is_quarantined() -> None:
    rule = ExpressionRule("x", "rps_doc_num_sentences < 3")
    with pytest.raises(KeyError):
        rule.check_signals(SIGNALS)


@pytest.mark.parametrize("source, message", [
    ("__import__('os').system('true')", "calls are allowed"),
    ("rps_doc_word_count.real > 1", "Attribute is not allowed"),
    ("rps_doc_word_count[0] > 1", "Subscript is not allowed"),
    ("open('x') == 1", "calls are allowed"),
    ("mean(rps_lines_num_words, 2) > 1", "calls are allowed"),
    ("mean(x=rps_lines_num_words) > 1", "calls are allowed"),
    ("mean(rps_doc_word_count + 1) > 1", "calls are allowed"),
    ("(lambda: 1)() == 1", "calls are allowed"),
    ("[1][0] == 1", "not allowed"),
    ("rps_doc_word_count ** 2 > 1", "Pow is not allowed"),
    ("rps_doc_word_count // 2 > 1", "FloorDiv is not allowed"),
    ("rps_doc_word_count in (1, 2)", "In is not allowed"),
    ("rps_doc_word_count > 'a'", "only numbers"),
    ("rps_doc_word_count > True", "only numbers"),
    ("rps_doc_word_count if 1 else 2", "IfExp is not allowed"),
    ("rps_doc_word_count + 1", "must be a condition"),
    ("rps_doc_wordcount < 50", "unknown signal 'rps_doc_wordcount'"),
    ("mean(nope) > 1", "unknown signal 'nope'"),
    ("rps_lines_num_words > 3", "use an aggregate"),
    ("rps_doc_word_count <", "not a valid expression"),
    ("(rps_doc_word_count := 1) > 0", "NamedExpr is not allowed"),
    ("rps_doc_word_count > 1 > 0 < f'{1}'", "JoinedStr is not allowed"),
])
def test_unsafe_or_unknown_expressions_are_rejected(source: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_signal_expression(source)


def test_config_validation_names_the_params_key() -> None:
    raw = {"clean": {"expressions": {"evil": "__import__('os').system('rm -rf /')",
                                     "typo": "mean(rps_lines_num_wrds) < 2",
                                     "ok": "rps_doc_word_count < 50"},
                     "rule_sets": {"c4": ["c4", "expr:missing"]}}}
    with pytest.raises(ConfigError) as info:
        params_from_dict(raw)
    problems = "\n".join(info.value.problems)
    assert "clean.expressions.evil: only mean/sum/min/max/count(<signal>) calls" in problems
    assert "clean.expressions.typo: unknown signal 'rps_lines_num_wrds'" in problems
    assert "clean.rule_sets.c4: 'expr:missing': no expression 'missing'" in problems
    assert "clean.expressions.ok" not in problems


def test_default_expressions_are_valid_and_cover_known_signals_only() -> None:
    for source in Params().clean.expressions.values():
        parse_signal_expression(source)
    assert len(set(QUALITY_SIGNALS)) == len(QUALITY_SIGNALS)


def test_known_signals_are_exactly_what_rpv2_computes() -> None:
    from redrobe.expressions import LINE_SIGNAL_PREFIX
    from redrobe.text import rpv2

    assert set(QUALITY_SIGNALS) == set(rpv2.SIGNAL_NAMES)
    assert {n for n in QUALITY_SIGNALS if n.startswith(LINE_SIGNAL_PREFIX)} == set(rpv2.LINE_SIGNALS)
    signals = rpv2.compute_signals("Ten words here.\n\u2022 A bullet line with words.")
    assert evaluate(parse_signal_expression("mean(rps_lines_start_with_bulletpoint) == 0.5"), signals)
    assert evaluate(parse_signal_expression("rps_doc_word_count == 9"), signals)
