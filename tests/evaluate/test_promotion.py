"""Promotion plans over plain registry state (redrobe.evaluate.gates): statuses, records, tags."""

import math

import pytest

from redrobe.evaluate.gates import (
    CANDIDATE_ALIAS,
    DISABLED,
    GATES_FAILED,
    MAX_BPB_GATE,
    NO_LOGGED_MODEL,
    PRODUCTION_ALIAS,
    REGISTERED,
    TRACKING_OFF,
    Incumbent,
    RegistryState,
    promotion,
    record_tags,
    skip_status,
    unregistered,
    version_tags,
)

GATES = dict(max_bits_per_byte=4.0, min_improvement=0.0)
PROVENANCE = {"weights_digest": "w" * 64, "val_digest": "v" * 64}


@pytest.mark.parametrize("register, tracking, model_id, status", [
    (False, True, "m-1", DISABLED), (False, False, None, DISABLED),
    (True, False, "m-1", TRACKING_OFF), (True, False, None, TRACKING_OFF),
    (True, True, None, NO_LOGGED_MODEL), (True, True, "m-1", None)])
def test_skip_status(register, tracking, model_id, status):
    assert skip_status(register, tracking, model_id) == status


@pytest.mark.parametrize("tags, this_version, expected", [
    ({"mean_bits_per_byte": "3.25"}, None, Incumbent("2", 3.25)),
    ({"mean_bits_per_byte": "3.25"}, "2", Incumbent("2", 3.25, is_this_model=True)),
    ({"mean_bits_per_byte": "not a number"}, "1", Incumbent("2", None)),
    ({}, None, Incumbent("2", None))])
def test_incumbent_from_registry_state(tags, this_version, expected):
    assert RegistryState("2", tags, this_version).incumbent() == expected
    assert RegistryState(None, {}, this_version).incumbent() is None


def test_first_model_is_registered_with_both_aliases():
    plan = promotion(3.5, RegistryState(), **GATES)
    assert plan.status == REGISTERED and plan.registers
    assert plan.aliases == [CANDIDATE_ALIAS, PRODUCTION_ALIAS]
    record = plan.record("base", "m-1", PROVENANCE, version="1")
    assert list(record) == ["model_name", "model_id", "version", "aliases", "incumbent",
                            "weights_digest", "val_digest", "status", "gates", "candidate",
                            "production"]
    assert record["version"] == "1" and record["incumbent"] is None
    assert record["aliases"] == [CANDIDATE_ALIAS, PRODUCTION_ALIAS]


def test_better_production_keeps_its_alias_and_is_recorded_with_its_val_digest():
    state = RegistryState("4", {"mean_bits_per_byte": "3.0", "val_digest": "old"})
    plan = promotion(3.2, state, **GATES)
    assert plan.status == REGISTERED and plan.aliases == [CANDIDATE_ALIAS]
    record = plan.record("base", "m-1", PROVENANCE, version="5")
    assert record["incumbent"] == {"version": "4", "mean_bits_per_byte": 3.0, "val_digest": "old"}
    assert record["production"] is False and record["candidate"] is True


def test_failed_gate_registers_nothing_but_records_the_incumbent():
    plan = promotion(4.5, RegistryState("4", {"mean_bits_per_byte": "3.0"}), **GATES)
    assert plan.status == GATES_FAILED and not plan.registers and plan.aliases == []
    record = plan.record("base", "m-1", PROVENANCE)
    assert record["version"] is None and record["aliases"] == []
    assert record["incumbent"] == {"version": "4", "mean_bits_per_byte": 3.0, "val_digest": None}
    assert [g["name"] for g in record["gates"]] == [MAX_BPB_GATE]


@pytest.mark.parametrize("mean", [3.0, 9.0, math.nan])
def test_unregistered_checks_the_candidate_gates_only(mean):
    plan = unregistered(DISABLED, mean, **GATES)
    record = plan.record("base", None, PROVENANCE)
    assert record["status"] == DISABLED and record["model_id"] is None
    assert record["candidate"] is (mean == 3.0) and record["production"] is False
    assert record["aliases"] == [] and record["incumbent"] is None and not plan.registers


def test_version_and_run_tags():
    assert version_tags(3.5, "run-1", PROVENANCE) == {
        "mean_bits_per_byte": 3.5, "eval_run_id": "run-1", **PROVENANCE}
    record = promotion(3.5, RegistryState(), **GATES).record("base", "m-1", PROVENANCE, "7")
    assert record_tags(record) == {
        "redrobe.registry.status": "registered", "redrobe.registry.model": "base",
        "redrobe.registry.version": "7", "redrobe.registry.aliases": "candidate,production",
        "redrobe.registry.gates": "max_bits_per_byte=pass,beats_production=pass"}
    assert record_tags(unregistered(TRACKING_OFF, 9.0, **GATES).record("base", None, PROVENANCE)) \
        == {"redrobe.registry.status": "tracking_off", "redrobe.registry.model": "base",
            "redrobe.registry.version": "", "redrobe.registry.aliases": "",
            "redrobe.registry.gates": "max_bits_per_byte=fail"}
