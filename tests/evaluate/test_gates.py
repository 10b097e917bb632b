"""Promotion gates: the exact verdicts on crafted scores (redrobe.evaluate.gates)."""

import math

import pytest

from redrobe.evaluate.gates import (
    CANDIDATE_ALIAS,
    MAX_BPB_GATE,
    PRODUCTION_ALIAS,
    PRODUCTION_GATE,
    Incumbent,
    decide,
    max_bpb_gate,
    production_gate,
)

GATES = dict(max_bits_per_byte=4.0, min_improvement=0.0)


@pytest.mark.parametrize("mean, passed", [(3.99, True), (4.0, True), (4.01, False),
                                          (None, False), (math.nan, False), (math.inf, False)])
def test_max_bits_per_byte_gate(mean, passed):
    gate = max_bpb_gate(mean, 4.0)
    assert gate.name == MAX_BPB_GATE and gate.passed is passed and gate.threshold == 4.0


def test_first_model_becomes_candidate_and_production():
    decision = decide(3.5, incumbent=None, **GATES)
    assert decision.candidate and decision.production
    assert decision.aliases == [CANDIDATE_ALIAS, PRODUCTION_ALIAS]
    assert [g.name for g in decision.gates] == [MAX_BPB_GATE, PRODUCTION_GATE]
    assert decision.as_dict()["gates"][1]["detail"] == "no production version yet"


def test_failed_quality_gate_registers_nothing():
    decision = decide(4.5, incumbent=None, **GATES)
    assert not decision.candidate and not decision.production and decision.aliases == []
    assert [g.name for g in decision.gates] == [MAX_BPB_GATE]  # production is not even asked


def test_production_needs_a_strictly_lower_score_by_min_improvement():
    incumbent = Incumbent(version="3", mean_bits_per_byte=3.0)
    assert decide(2.9, incumbent=incumbent, **GATES).production
    assert not decide(3.0, incumbent=incumbent, **GATES).production  # a tie keeps the incumbent
    stricter = dict(GATES, min_improvement=0.2)
    worse = decide(2.9, incumbent=incumbent, **stricter)
    assert worse.candidate and not worse.production and worse.aliases == [CANDIDATE_ALIAS]
    assert worse.gates[1].threshold == pytest.approx(2.8) and worse.gates[1].value == 3.0
    assert decide(2.7, incumbent=incumbent, **stricter).production


def test_re_evaluated_production_model_stays_production():
    gate = production_gate(3.4, Incumbent("2", 3.1, is_this_model=True), 0.0)
    assert gate.passed and "already production" in gate.detail


def test_unscored_incumbent_cannot_be_beaten():
    gate = production_gate(1.0, Incumbent("5", None), 0.0)
    assert not gate.passed and "no recorded mean" in gate.detail


def test_registration_off_checks_candidate_gates_only():
    decision = decide(3.0, incumbent=Incumbent("1", 9.0), check_production=False, **GATES)
    assert decision.candidate and not decision.production
    assert [g.name for g in decision.gates] == [MAX_BPB_GATE]
