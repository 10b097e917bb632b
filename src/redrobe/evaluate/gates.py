"""Promotion gates: may an evaluated model become the `candidate`, or `production`, version?

Pure decisions over numbers; the evaluate stage fetches the numbers (this run's mean
bits per byte, the current `production` version's) and applies the decision to the
MLflow model registry.

    decision = decide(3.9, max_bits_per_byte=8.0, min_improvement=0.0,
                      incumbent=Incumbent(version="2", mean_bits_per_byte=4.1))
    decision.candidate, decision.production, decision.aliases  # True, True, [candidate, production]
    decision.as_dict()["gates"]  # [{"name": "max_bits_per_byte", "passed": True, ...}, ...]

Gates, in order:

- ``max_bits_per_byte``: the mean bits per byte over slices must not exceed the
  threshold. A model that spreads its probability uniformly over the 256 byte values
  costs exactly 8 bits per byte, so above 8.0 a model is worse than knowing nothing
  about the text (the usual bits-per-byte yardstick, The Pile, Gao et al. 2020, §3);
  NaN or a missing score fails.
- ``beats_production`` (only for the `production` alias): the mean must be lower than
  the current production version's by more than ``min_improvement`` bits per byte; it
  passes when there is no production version yet, and when the incumbent *is* this
  model (re-evaluating the production model keeps it in production). An incumbent with
  no recorded score cannot be beaten, so it stays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import TypeIs

MAX_BPB_GATE = "max_bits_per_byte"
PRODUCTION_GATE = "beats_production"
CANDIDATE_ALIAS = "candidate"
PRODUCTION_ALIAS = "production"


@dataclass(frozen=True)
class Incumbent:
    """The registered version currently holding the `production` alias."""
    version: str
    mean_bits_per_byte: float | None  # None: the version carries no recorded score
    is_this_model: bool = False       # the version was registered from the model under test


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    gates: tuple[GateResult, ...]
    candidate: bool    # every gate for the candidate alias passed
    production: bool   # ... and the production gate too

    @property
    def aliases(self) -> list[str]:
        return ([CANDIDATE_ALIAS] if self.candidate else []) + \
               ([PRODUCTION_ALIAS] if self.production else [])

    def as_dict(self) -> dict[str, Any]:
        """The verdicts; which aliases were actually set is the caller's to record."""
        return {"gates": [g.as_dict() for g in self.gates], "candidate": self.candidate,
                "production": self.production}


def _finite(value: float | None) -> TypeIs[float]:
    return value is not None and math.isfinite(value)


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if _finite(value) else str(value)


def max_bpb_gate(mean_bpb: float | None, max_bits_per_byte: float) -> GateResult:
    """Pass when the mean bits per byte is a finite number <= ``max_bits_per_byte``."""
    passed = _finite(mean_bpb) and mean_bpb <= max_bits_per_byte
    if not _finite(mean_bpb):
        detail = "no finite mean bits per byte"
    else:
        detail = f"mean bits/byte {_fmt(mean_bpb)} {'<=' if passed else '>'} {max_bits_per_byte}"
    return GateResult(MAX_BPB_GATE, passed, mean_bpb, max_bits_per_byte, detail)


def production_gate(mean_bpb: float | None, incumbent: Incumbent | None,
                    min_improvement: float) -> GateResult:
    """Pass when this model should hold `production` (see the module docstring)."""
    if incumbent is None:
        return GateResult(PRODUCTION_GATE, _finite(mean_bpb), None, None,
                          "no production version yet")
    if incumbent.is_this_model:
        return GateResult(PRODUCTION_GATE, True, incumbent.mean_bits_per_byte, None,
                          f"version {incumbent.version} (this model) is already production")
    if not _finite(incumbent.mean_bits_per_byte):
        return GateResult(PRODUCTION_GATE, False, None, None,
                          f"production version {incumbent.version} has no recorded mean bits/byte")
    threshold = incumbent.mean_bits_per_byte - min_improvement
    passed = _finite(mean_bpb) and mean_bpb < threshold
    detail = (f"mean bits/byte {_fmt(mean_bpb)} vs production version {incumbent.version}'s "
              f"{_fmt(incumbent.mean_bits_per_byte)} - min_improvement {min_improvement}: "
              f"{'better' if passed else 'not better'}")
    return GateResult(PRODUCTION_GATE, passed, incumbent.mean_bits_per_byte, threshold, detail)


def decide(mean_bpb: float | None, *, max_bits_per_byte: float, min_improvement: float,
           incumbent: Incumbent | None, check_production: bool = True) -> Decision:
    """Run the gates; the production gate only runs (and only matters) for a candidate.

    ``check_production=False`` evaluates the candidate gates alone (registration off).
    """
    quality = max_bpb_gate(mean_bpb, max_bits_per_byte)
    if not (quality.passed and check_production):
        return Decision((quality,), candidate=quality.passed, production=False)
    promote = production_gate(mean_bpb, incumbent, min_improvement)
    return Decision((quality, promote), candidate=True, production=promote.passed)
