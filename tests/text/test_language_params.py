"""clean.language_rules and clean.language_thresholds: validation with key paths, merging.

    pytest tests/text/test_language_params.py -q
"""

from __future__ import annotations

import pytest

from redrobe.config import Clean, ConfigError, params_from_dict
from redrobe.text.rules import Cleaner


def problems(language_thresholds: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        params_from_dict({"clean": {"language_thresholds": language_thresholds}})
    return caught.value.problems


def test_every_bad_override_is_reported_with_its_key_path() -> None:
    found = problems({
        "DE": {"gopher_quality": {"min_words": 10}},
        "fr": {"gopher": {}, "c4": {"min_sentences": -1, "bogus": 1},
               "gopher_repetition": {"top_n_grams": {"2": 1.5, "x": 0.1}},
               "gopher_quality": {"min_words": 10, "max_words": 5}},
        "it": {"fineweb": {"new_line_ratio": "high"}},
    })
    assert found == [
        "clean.language_thresholds.DE: must be an ISO 639 language code (2 or 3 lower-case letters, "
        "e.g. de, zh, yue)",
        "clean.language_thresholds.fr.gopher: not a rule set with thresholds "
        "(one of: gopher_quality, gopher_repetition, c4, fineweb)",
        "clean.language_thresholds.fr.c4.bogus: unknown key (known: filter_curly_bracket, "
        "filter_javascript_lines, filter_lorem_ipsum, filter_policy_lines, max_word_length, "
        "min_sentences, min_words_per_line)",
        "clean.language_thresholds.fr.gopher_repetition.top_n_grams.2: must be in [0, 1]",
        "clean.language_thresholds.fr.gopher_repetition.top_n_grams.x: key must be an n-gram size "
        "(an integer >= 1)",
        "clean.language_thresholds.fr.gopher_quality.min_words: must be >= 0 and <= max_words",
        "clean.language_thresholds.it.fineweb.new_line_ratio: expected float, got 'high'",
    ]


def test_an_override_that_is_not_a_mapping_is_a_type_error() -> None:
    assert problems({"de": {"fineweb": 3}}) == [
        "clean.language_thresholds.de.fineweb: expected a mapping, got 3"]
    assert problems({"de": ["gopher_quality"]}) == [
        "clean.language_thresholds.de: expected a mapping, got ['gopher_quality']"]


def test_overrides_merge_deeply_over_the_sections() -> None:
    clean = params_from_dict({"clean": {
        "gopher_repetition": {"dup_line_frac": 0.25},
        "language_thresholds": {"de": {"gopher_repetition": {"top_n_grams": {"2": 0.3}}},
                                "ja": {"c4": {"min_sentences": 3}}}}}).clean
    german = clean.for_language("de")
    assert german.gopher_repetition.top_n_grams == {"2": 0.3, "3": 0.18, "4": 0.16}
    assert german.gopher_repetition.dup_line_frac == 0.25   # the section as set, not the default
    assert german.c4 is clean.c4 and german.gopher_quality is clean.gopher_quality
    japanese = clean.for_language("ja")   # replaced: the defaults for ja are gone
    assert japanese.c4.min_sentences == 3 and japanese.gopher_quality == clean.gopher_quality
    assert clean.for_language("fr") is clean


def test_scripts_without_spaces_default_to_character_word_lengths() -> None:
    clean = Clean()
    for code in ("zh", "yue", "wuu", "ja", "th", "lo", "km", "my"):
        quality = clean.for_language(code).gopher_quality
        assert (quality.min_mean_word_length, quality.max_mean_word_length) == (1.0, 5.0)
        assert quality.min_words == clean.gopher_quality.min_words
    assert clean.for_language("en") is clean and clean.language_rules


def test_language_rules_off_builds_no_language_rules() -> None:
    assert Cleaner.for_slice("c4", Clean(language_rules=False)).languages is None
    assert Cleaner.for_slice("c4", Clean()).languages is not None
    assert not Cleaner.for_slice("github", Clean(store_signals=False)).needs_language   # code rules only
