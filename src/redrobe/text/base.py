"""What a rule set returns, and the small helpers the rule sets share.

A rule set is a callable ``rule_set(doc) -> Decision`` with a ``name``. A decision
either keeps the document (``reason is None``; ``text`` set when the rule set edited it,
as C4 drops lines) or names the reason it is removed. Reasons are module-level
constants next to the rules that produce them, so stats and tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from redrobe.documents import Document


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


def ratio(part: float, whole: float) -> float:
    """``part / whole``, 0 for an empty whole (an empty document has no repeated lines)."""
    return part / whole if whole else 0.0
