"""FineWeb quality rules: each reason on a crafted document, datatrove's boundaries, clean doc kept.

    pytest tests/text/test_fineweb.py -q
"""

from __future__ import annotations

import pytest

from redrobe.config import Clean, FineWebParams
from redrobe.documents import Document
from redrobe.text import fineweb
from redrobe.text.base import KEEP
from redrobe.text.rules import build_rule_sets

# five distinct sentences, one per line, each well over 30 characters
PROSE_LINES = "\n".join([  # noqa: FLY002 - one sentence per source line reads best
    "The history of the river valley is long and varied.",
    "Farmers settled along the banks and built small villages with stone walls.",
    "Over the centuries, the towns grew into market centres that traded grain.",
    "Travellers described the landscape as green and quiet, with orchards.",
    "Today the valley is known for its walking trails and its old mills.",
])


def reason(text: str, **overrides) -> str | None:
    return fineweb.FineWebRules(FineWebParams(**overrides)).check(text).reason


def sentence(i: int) -> str:
    """A distinct line of more than 30 characters ending in a full stop."""
    return f"Line number {i} of a long and perfectly ordinary paragraph."


def test_clean_prose_is_kept_by_the_registered_rule_set() -> None:
    (rules,) = build_rule_sets(["fineweb"], Clean())
    assert rules(Document("d", PROSE_LINES, "common_crawl")) == KEEP


def test_line_punct_ratio() -> None:
    text = "\n".join(f"a heading without any final punctuation mark {i}" for i in range(10))
    assert reason(text) == fineweb.FINEWEB_LINE_PUNCT_RATIO


def test_line_punct_ratio_boundary_is_inclusive_as_in_datatrove() -> None:
    # 3 of 25 lines end in punctuation: 0.12 <= 0.12 removes; 4 of 25 keeps
    unpunctuated = [f"a heading without any final punctuation mark {i}" for i in range(22)]
    three = "\n".join([sentence(i) for i in range(3)] + unpunctuated)
    four = "\n".join([sentence(i) for i in range(4)] + unpunctuated[:21])
    assert reason(three) == fineweb.FINEWEB_LINE_PUNCT_RATIO
    assert reason(four) is None


def test_line_punct_exclude_zero_lets_unpunctuated_text_through() -> None:
    text = "\n".join(f"a heading without any final punctuation mark {i}" for i in range(10))
    assert reason(text, line_punct_exclude_zero=True) is None


def test_short_line_ratio() -> None:
    text = "\n".join(f"Short line {i}." for i in range(11)) + "\n" + PROSE_LINES   # 11/16 short
    assert reason(text) == fineweb.FINEWEB_SHORT_LINE_RATIO


def test_short_line_length_counts_lines_of_exactly_the_limit() -> None:
    text = "\n".join([f"{i:02d}" + "y" * 27 + "." for i in range(7)] + [sentence(i) for i in range(3)])
    assert all(len(line) == 30 for line in text.split("\n")[:7])
    assert reason(text) == fineweb.FINEWEB_SHORT_LINE_RATIO       # 7/10 >= 0.67
    assert reason(text, short_line_length=29) is None


def test_char_dup_ratio() -> None:
    text = PROSE_LINES + "\n" + PROSE_LINES.split("\n")[0]      # one line repeated once
    assert reason(text) == fineweb.FINEWEB_CHAR_DUP_RATIO
    assert reason(text, char_duplicates_ratio=0.5) is None


def test_empty_lines_are_not_duplicates() -> None:
    text = PROSE_LINES.replace("\n", "\n\n")
    assert reason(text, short_line_thr=1.0) is None


def test_list_ratio() -> None:
    # each line: one long word and a full stop (2 tokens): ~0.5 newlines per word
    text = "\n".join(f"Antidisestablishmentarianism{i:03d}." for i in range(40))
    assert reason(text) == fineweb.FINEWEB_LIST_RATIO
    assert reason(text, new_line_ratio=0.6) is None


def test_checks_run_in_datatrove_order() -> None:
    # short, unpunctuated and duplicated: the punctuation check names it
    assert reason("menu\nmenu\nmenu") == fineweb.FINEWEB_LINE_PUNCT_RATIO


@pytest.mark.parametrize("text", ["", "\n\n\n"])
def test_empty_documents_are_removed_not_crashing(text: str) -> None:
    assert reason(text) == fineweb.FINEWEB_LINE_PUNCT_RATIO
