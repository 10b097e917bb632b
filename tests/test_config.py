"""params.yaml ↔ config dataclasses, and the all-problems-at-once error messages."""

import pytest

from redrobe.config import ConfigError, Params, load_params, params_from_dict


def test_params_yaml_matches_dataclass_defaults(repo_root):
    assert load_params(repo_root / "params.yaml") == Params()


def test_every_problem_is_reported_with_its_key_path():
    with pytest.raises(ConfigError) as err:
        params_from_dict({
            "clean": {"gopher_quality": {"min_words": "fifty"}, "bogus": 1},
            "pretrain": {"precision": "int3"},
            "nonsense": {},
        })
    problems = err.value.problems
    assert "clean.gopher_quality.min_words: expected int, got 'fifty'" in problems
    assert any(p.startswith("clean.bogus: unknown key") for p in problems)
    assert any(p.startswith("pretrain.precision: must be one of") for p in problems)
    assert any(p.startswith("nonsense: unknown key") for p in problems)
    assert len(problems) == 4


def test_value_checks_run_after_types():
    with pytest.raises(ConfigError) as err:
        params_from_dict({"dedup": {"minhash": {"bands": 20, "rows": 13}},
                          "shared": {"val_fraction": 0.9}})
    assert "dedup.minhash.bands: bands * rows must be <= num_perm" in err.value.problems
    assert "shared.val_fraction: must be in (0, 0.5)" in err.value.problems


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")


def test_int_is_accepted_for_float():
    assert params_from_dict({"pretrain": {"lr": 1}}).pretrain.lr == 1.0


def test_profiles_are_valid_params(repo_root):
    import yaml

    from redrobe.config import merge_profile

    base = yaml.safe_load((repo_root / "params.yaml").read_text())
    for profile in sorted((repo_root / "profiles").glob("*.yaml")):
        merged = merge_profile(base, yaml.safe_load(profile.read_text()))
        params_from_dict(merged, source=str(profile))
        assert merged["clean"] == base["clean"]  # a profile only overrides what it names
