"""params.yaml ↔ config dataclasses, and the all-problems-at-once error messages."""

import pytest

from redrobe.config import RPV2_EXAMPLE_EXPRESSIONS, ConfigError, Params, load_params, params_from_dict


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


# ----------------------------------------------------------------------------- hostile params

@pytest.mark.parametrize(("raw", "key"), [
    ({"evaluate": {"humaneval": {"timeout_s": float("inf")}}}, "evaluate.humaneval.timeout_s"),
    ({"pretrain": {"lr": float("nan")}}, "pretrain.lr"),
    ({"pretrain": {"grad_clip": float("-inf")}}, "pretrain.grad_clip"),
    ({"quality": {"max_removal_rate": {"clean": float("nan")}}}, "quality.max_removal_rate.clean"),
    ({"clean": {"gopher_repetition": {"top_n_grams": {"2": float("inf")}}}},
     "clean.gopher_repetition.top_n_grams.2"),
    ({"pretrain": {"lr": 10 ** 400}}, "pretrain.lr"),   # an int too large for a float
])
def test_non_finite_floats_are_refused_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        params_from_dict(raw)
    assert [p.split(":")[0] for p in err.value.problems] == [key]
    assert "must be a finite number" in err.value.problems[0]


def test_yaml_inf_and_nan_are_config_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("evaluate:\n  humaneval:\n    timeout_s: .inf\nshared:\n  val_fraction: .nan\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert err.value.problems == ["shared.val_fraction: must be a finite number, got nan",
                                  "evaluate.humaneval.timeout_s: must be a finite number, got inf"]


@pytest.mark.parametrize(("text", "error"), [
    ("pretrain:\n  lr: " + "9" * 5000 + "\n", "ValueError: Exceeds the limit"),
    ("tables: " + "[" * 5000 + "]" * 5000 + "\n", "RecursionError"),
])
def test_unloadable_yaml_is_a_config_error(tmp_path, text, error):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=f"params.yaml: not valid YAML: {error}"):
        load_params(tmp_path / "params.yaml")


def test_signal_ranges_allow_infinity_but_not_nan():
    """The one float field declared infinite: .inf means "no bound" there."""
    ranges = {"rps_doc_word_count": [0, float("inf")], "redrobe_lang_score": [float("-inf"), 1]}
    assert params_from_dict({"quality": {"signal_ranges": ranges}}).quality.signal_ranges == ranges
    with pytest.raises(ConfigError) as err:
        params_from_dict({"quality": {"signal_ranges": {"rps_doc_word_count": [0, float("nan")]}}})
    assert err.value.problems == ["quality.signal_ranges.rps_doc_word_count[1]: must be a number "
                                  "or .inf/-.inf, got nan"]


def test_unknown_keys_of_mixed_types_name_the_section():
    with pytest.raises(ConfigError) as err:
        params_from_dict({"shared": {1: "x", "a": "y", None: 2}, 7: {}, "dedup": {"exact": True}})
    assert err.value.problems[0].startswith("7: unknown key")
    assert [p.split(":")[0] for p in err.value.problems[1:]] == ["shared.1", "shared.None", "shared.a"]


@pytest.mark.parametrize("source", [
    "rps_doc_word_count < " + "(1 + " * 150 + "1" + ")" * 150,  # nested parentheses
    "not " * 900 + "rps_doc_word_count < 3",                   # a chain of unary operators
    "rps_doc_word_count" + " + 1" * 900 + " < 3",              # a long left-nested sum
    "-" * 3000 + "1 < 3",                                      # deeper than the parser allows
    "rps_doc_word_count < 3 or " * 2000 + "1 < 2",             # longer than allowed
])
def test_an_over_deep_expression_is_a_config_error_naming_the_key(source):
    with pytest.raises(ConfigError) as err:
        params_from_dict({"clean": {"expressions": {**RPV2_EXAMPLE_EXPRESSIONS, "deep": source}}})
    (problem,) = err.value.problems
    assert problem.startswith("clean.expressions.deep: ")
    assert any(word in problem for word in ("deeper", "deeply", "longer", "nested"))


# ----------------------------------------------------------------------------- routing by language

def test_routing_params_report_each_problem_with_its_key_path():
    with pytest.raises(ConfigError) as err:
        params_from_dict({"ingest": {
            "language_id": "guess",
            "languages": {"wikipedia": {"keep": ["en", "German", "en"], "min_score": 1.5},
                          "books": {"keep": []},
                          "arxiv": {"keep": ["en"], "bogus": 1}}}})
    problems = err.value.problems
    assert any(p.startswith("ingest.language_id: must be one of") for p in problems)
    assert "ingest.languages.arxiv.bogus: unknown key (known: keep, min_score)" in problems
    with pytest.raises(ConfigError) as err:
        params_from_dict({"ingest": {"languages": {
            "wikipedia": {"keep": ["en", "German", "en"], "min_score": 1.5},
            "books": {"keep": []}, "arxiv": {"keep": ["en"]}, "Wiki": {"keep": ["de"]}}}})
    problems = err.value.problems
    assert "ingest.languages.wikipedia.min_score: must be in [0, 1]" in problems
    assert any(p.startswith("ingest.languages.wikipedia.keep[1]: must be an ISO 639 language code")
               for p in problems)
    assert "ingest.languages.wikipedia.keep: lists a language twice" in problems
    assert "ingest.languages.books.keep: must list at least one language code" in problems
    assert any(p.startswith("ingest.languages.Wiki: must be a slice name") for p in problems)
    assert len(problems) == 5   # a routed slice outside shared.slices is simply not ingested


def test_routing_is_per_slice_and_off_when_no_slice_is_listed():
    params = params_from_dict({"ingest": {"languages": {}, "sample": {"multilingual": 0}}})
    assert params.ingest.languages == {} and params.ingest.sample.multilingual == 0
    routing = Params().ingest.languages["wikipedia"]
    assert "en" in routing.keep and 0 <= routing.min_score <= 1


def test_language_id_choices_are_the_identifier_backends():
    import typing

    from redrobe.config import Ingest
    from redrobe.text.langid import BACKENDS

    assert typing.get_args(typing.get_type_hints(Ingest)["language_id"]) == BACKENDS
