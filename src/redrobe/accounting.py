"""Per-slice document accounting: in == out + removed + quarantined.

Every data stage keeps one :class:`Ledger`. Removals carry a named reason (the
constants live with the rules that produce them); quarantined records carry the
error. The ledger is written into ``data/metrics/<stage>.json`` and checked by
:meth:`Ledger.check` before the stage finishes, so a stage that loses a document
fails loudly instead of writing wrong counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SliceCounts:
    docs_in: int = 0
    docs_out: int = 0
    quarantined: int = 0
    removed: Counter = field(default_factory=Counter)
    chars_in: int = 0
    chars_out: int = 0

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    def add(self, other: SliceCounts) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.quarantined += other.quarantined
        self.removed.update(other.removed)
        self.chars_in += other.chars_in
        self.chars_out += other.chars_out

    def as_dict(self) -> dict[str, Any]:
        return {
            "in": self.docs_in,
            "out": self.docs_out,
            "removed": self.removed_total,
            "quarantined": self.quarantined,
            "removed_by_reason": dict(sorted(self.removed.items())),
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
        }


class AccountingError(RuntimeError):
    """Raised when a stage's counts do not add up."""


class Ledger:
    """Counts documents per slice as they enter and leave a stage."""

    def __init__(self) -> None:
        self.slices: dict[str, SliceCounts] = defaultdict(SliceCounts)

    def seen(self, slice_name: str, chars: int = 0) -> None:
        s = self.slices[slice_name]
        s.docs_in += 1
        s.chars_in += chars

    def kept(self, slice_name: str, chars: int = 0) -> None:
        s = self.slices[slice_name]
        s.docs_out += 1
        s.chars_out += chars

    def removed(self, slice_name: str, reason: str) -> None:
        self.slices[slice_name].removed[reason] += 1

    def quarantined(self, slice_name: str) -> None:
        self.slices[slice_name].quarantined += 1

    def merge(self, other: Ledger) -> None:
        """Add another ledger's counts (e.g. from a worker process)."""
        for name, counts in other.slices.items():
            self.slices[name].add(counts)

    def check(self) -> None:
        problems = [
            f"slice {name!r}: in={s.docs_in} != out={s.docs_out} + removed={s.removed_total}"
            f" + quarantined={s.quarantined}"
            for name, s in sorted(self.slices.items())
            if s.docs_in != s.docs_out + s.removed_total + s.quarantined
        ]
        if problems:
            raise AccountingError("document accounting does not add up: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        per_slice = {name: s.as_dict() for name, s in sorted(self.slices.items())}
        total = SliceCounts()
        for counts in self.slices.values():
            total.add(counts)
        return {"slices": per_slice, "total": total.as_dict()}


def check_accounting(metrics: dict[str, Any]) -> list[str]:
    """Return the slices of a metrics payload whose counts do not add up (for tests)."""
    bad = []
    for name, s in metrics.get("accounting", {}).get("slices", {}).items():
        if s["in"] != s["out"] + s["removed"] + s["quarantined"]:
            bad.append(name)
        if s["removed"] != sum(s["removed_by_reason"].values()):
            bad.append(name)
    return bad
