"""C4Rules against a line-by-line implementation of its definition (the exact reasons
per rule are in tests/text/test_rules.py).

    pytest tests/text/test_c4.py -q
"""

from __future__ import annotations

import random
import re

from redrobe.config import C4Params
from redrobe.text import c4
from redrobe.text.c4 import C4Rules


def _reference(text: str, cfg: C4Params) -> tuple[str | None, str]:
    """(reason, kept text): every line through every filter, in C4's order."""
    kept, sentences = [], 0
    for raw in text.splitlines():
        stripped = raw.strip()
        if any(len(w) > cfg.max_word_length for w in stripped.split()):
            continue
        line = re.sub(r"\[\d*]|\[edit]|\[citation needed]", "", stripped)
        if not line.endswith((".", "?", "!", '"', "'")) or line.endswith("..."):
            continue
        if len(stripped.split()) < cfg.min_words_per_line:
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            return c4.C4_LOREM_IPSUM, ""
        if "javascript" in lower:
            continue
        if "{" in line:
            return c4.C4_CURLY_BRACKET, ""
        if any(p in lower for p in c4.POLICY_SUBSTRINGS):
            continue
        sentences += len(re.findall(r"\b[^.!?]+[.!?]*", line))
        kept.append(line)
    if sentences < cfg.min_sentences:
        return c4.C4_TOO_FEW_SENTENCES, ""
    return None, "\n".join(kept)


def test_c4_equals_the_line_by_line_definition() -> None:
    cfg = C4Params(max_word_length=12)
    rules = C4Rules(cfg)
    rng = random.Random(17)
    pieces = ["The river runs.", "A b c d.", "one two", "[1]", "[edit]", "[citation needed]", "]", "...",
              "?", "!", '"', "'", " ", "  ", "\t", "Lorem ipsum", "{x}", "JavaScript", "our cookie policy",
              "uses cookies", "Terms of Use", "averyveryverylongword", "x. y. z.", "\u2028"]
    for _ in range(3000):
        lines = ["".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 8)))
                 for _ in range(rng.randint(0, 9))]
        text = rng.choice(["\n", "\r\n", "\n\n"]).join(lines)
        decision = rules.check(text)
        reason, kept = _reference(text, cfg)
        assert decision.reason == reason, text
        if reason is None:
            assert (decision.text if decision.text is not None else text) == kept, text


def test_a_citation_can_uncover_the_terminal_punctuation() -> None:
    lines = "\n".join(f"The valley has {w} old mills near the river.[{i}]" for i, w in
                      enumerate(["five", "six", "seven", "eight", "nine"]))
    decision = C4Rules(C4Params()).check(lines)
    assert decision.reason is None
    assert decision.text is not None and "[" not in decision.text and decision.text.count("\n") == 4
