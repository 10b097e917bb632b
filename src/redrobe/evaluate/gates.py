"""Promotion gates: may an evaluated model become the `candidate`, or `production`, version?

Pure decisions over numbers and plain records; the evaluate stage reads the model
registry (:class:`RegistryState`: the current `production` version and its tags, the
version of the model under test), asks for a :class:`Promotion` and applies it
(registers the version with :func:`version_tags`, sets :attr:`Promotion.aliases`).

    decision = decide(3.9, max_bits_per_byte=8.0, min_improvement=0.0,
                      incumbent=Incumbent(version="2", mean_bits_per_byte=4.1))
    decision.candidate, decision.production, decision.aliases  # True, True, [candidate, production]
    decision.as_dict()["gates"]  # [{"name": "max_bits_per_byte", "passed": True, ...}, ...]

    state = RegistryState(production="2", production_tags={"mean_bits_per_byte": "4.1"})
    plan = promotion(3.9, state, max_bits_per_byte=8.0, min_improvement=0.0)
    plan.status, plan.registers, plan.aliases   # "registered", True, [candidate, production]
    plan.record("redrobe-base", model_id, provenance, version="3")   # eval.json's `registry`

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
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from typing_extensions import TypeIs

MAX_BPB_GATE = "max_bits_per_byte"
PRODUCTION_GATE = "beats_production"
CANDIDATE_ALIAS = "candidate"
PRODUCTION_ALIAS = "production"
#: the registry step's outcome (the ``status`` of the decision record)
REGISTERED, GATES_FAILED = "registered", "gates_failed"
DISABLED, TRACKING_OFF, NO_LOGGED_MODEL = "disabled", "tracking_off", "no_logged_model"
#: model-version tags: the version's score (read back from the incumbent), the run that
#: evaluated it, the digest of the validation data it was scored on
SCORE_TAG, EVAL_RUN_TAG, VAL_DIGEST_TAG = "mean_bits_per_byte", "eval_run_id", "val_digest"


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


# ------------------------------------------------------------------ promotion


def skip_status(register: bool, tracking: bool, model_id: str | None) -> str | None:
    """Why the registry is left alone, or None: ``disabled`` (``evaluate.register`` false),
    ``tracking_off``, or ``no_logged_model`` (no pretrain LoggedModel has the base weights'
    digest: the candidate gates are still evaluated and recorded)."""
    if not register:
        return DISABLED
    if not tracking:
        return TRACKING_OFF
    return NO_LOGGED_MODEL if model_id is None else None


@dataclass(frozen=True)
class RegistryState:
    """What the registered model holds, as read by the stage."""
    production: str | None = None   # the version holding the production alias
    production_tags: Mapping[str, str] = field(default_factory=dict)   # that version's tags
    this_version: str | None = None   # the version registered from the model under test

    def incumbent(self) -> Incumbent | None:
        """The production version with its recorded score (a tag that is not a number, e.g.
        set by hand, counts as unscored)."""
        if self.production is None:
            return None
        score = self.production_tags.get(SCORE_TAG)
        try:
            mean = float(score) if score is not None else None
        except ValueError:
            mean = None
        return Incumbent(self.production, mean, is_this_model=self.this_version == self.production)


@dataclass(frozen=True)
class Promotion:
    """The registry step's plan: ``status`` and the gates' decision, before any write."""
    status: str
    decision: Decision
    incumbent: Incumbent | None = None
    incumbent_val_digest: str | None = None

    @property
    def registers(self) -> bool:
        """Whether the model is registered as a version (then :attr:`aliases` point at it)."""
        return self.status == REGISTERED

    @property
    def aliases(self) -> list[str]:
        return self.decision.aliases if self.registers else []

    def record(self, model_name: str, model_id: str | None, provenance: Mapping[str, str],
               version: str | None = None) -> dict[str, Any]:
        """The decision record (eval.json's ``registry``); ``version``: the registered one."""
        incumbent = None if self.incumbent is None else {
            "version": self.incumbent.version,
            "mean_bits_per_byte": self.incumbent.mean_bits_per_byte,
            "val_digest": self.incumbent_val_digest}
        return {"model_name": model_name, "model_id": model_id, "version": version,
                "aliases": self.aliases, "incumbent": incumbent, **provenance,
                "status": self.status, **self.decision.as_dict()}


def unregistered(status: str, mean_bpb: float | None, *, max_bits_per_byte: float,
                 min_improvement: float) -> Promotion:
    """The plan when the registry is left alone (:func:`skip_status`): candidate gates only."""
    decision = decide(mean_bpb, incumbent=None, check_production=False,
                      max_bits_per_byte=max_bits_per_byte, min_improvement=min_improvement)
    return Promotion(status, decision)


def promotion(mean_bpb: float | None, state: RegistryState, *, max_bits_per_byte: float,
              min_improvement: float) -> Promotion:
    """Run every gate against the registry's ``state``: ``registered`` when the model may
    be the candidate (and production too when :attr:`Decision.production`), else
    ``gates_failed``."""
    incumbent = state.incumbent()
    decision = decide(mean_bpb, incumbent=incumbent, max_bits_per_byte=max_bits_per_byte,
                      min_improvement=min_improvement)
    val_digest = None if incumbent is None else state.production_tags.get(VAL_DIGEST_TAG)
    return Promotion(REGISTERED if decision.candidate else GATES_FAILED, decision, incumbent,
                     val_digest)


def version_tags(mean_bpb: float | None, run_id: str, provenance: Mapping[str, str]) -> dict[str, Any]:
    """The tags of a registered version: its score, the evaluating run, the provenance."""
    return {SCORE_TAG: mean_bpb, EVAL_RUN_TAG: run_id, **provenance}


def record_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """``redrobe.registry.*`` run tags summarising a decision record."""
    return {"redrobe.registry.status": record["status"],
            "redrobe.registry.model": record["model_name"],
            "redrobe.registry.version": record["version"] or "",
            "redrobe.registry.aliases": ",".join(record["aliases"]),
            "redrobe.registry.gates": ",".join(f"{g['name']}={'pass' if g['passed'] else 'fail'}"
                                               for g in record["gates"])}
