"""Per-language thresholds by quantile matching (FineWeb-2) and `redrobe language-thresholds`.

    pytest tests/text/test_thresholds.py -q
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from redrobe import thresholds_cli
from redrobe.config import Clean, params_from_dict
from redrobe.text.thresholds import (
    DerivedThreshold,
    derive_thresholds,
    format_table,
    matched_threshold,
    overrides,
    removed_share,
)
from text.test_languages import ZH  # tests/ is on sys.path (its conftest)

RNG = np.random.default_rng(7)


def english_doc(words: int, seed: int) -> str:
    """English-looking prose of ``words`` words (stop words included)."""
    vocab = [
        "the", "river", "and", "the", "valley", "have", "a", "long", "history", "of", "farming",
        "with", "stone", "walls", "that", "people", "built", "to", "keep", "the", "water", "out",
        "of", "their", "fields"]
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(vocab, size=words)) + "."


def chinese_doc(chars: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    pool = [c for c in ZH if "\u4e00" <= c <= "\u9fff"]
    return "".join(rng.choice(pool, size=chars)) + "。"


@pytest.mark.parametrize("op, threshold, share", [("<", 3, 0.3), ("<=", 3, 0.4), (">", 7, 0.2),
                                                  (">=", 7, 0.3)])
def test_removed_share_follows_the_comparison(op: str, threshold: float, share: float) -> None:
    assert removed_share(np.arange(10, dtype=float), threshold, op) == pytest.approx(share)


def test_integer_threshold_removes_the_same_share_of_the_target() -> None:
    # English: 0..99 and "< 10" removes 10 %; the target counts twice as high
    share = removed_share(np.arange(100.0), 10, "<")
    value = matched_threshold(np.arange(0.0, 200.0, 2.0), share, "<", english=10, integer=True)
    # 19 and 20 both cut after 18; the one nearer the English 10 is chosen
    assert value == 19 and isinstance(value, int)
    assert removed_share(np.arange(0.0, 200.0, 2.0), value, "<") == pytest.approx(0.1)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_float_threshold_is_a_cut_between_target_values(op: str) -> None:
    english = RNG.normal(4.5, 1.0, 2000)
    target = RNG.normal(1.6, 0.3, 1500)
    t_en = 3.0 if op in ("<", "<=") else 6.0
    share = removed_share(english, t_en, op)
    value = matched_threshold(target, share, op, english=t_en)
    assert abs(removed_share(target, value, op) - share) <= 1 / len(target)
    assert not np.isin(value, target)   # a midpoint: strictness and ties do not matter


def test_shares_stay_shares() -> None:
    value = matched_threshold(np.array([0.0, 0.0, 0.5, 1.0]), 0.0, "<=", english=0.12)
    assert 0.0 <= value <= 1.0


def test_deriving_english_from_english_keeps_each_share() -> None:
    texts = [english_doc(int(n), i) for i, n in enumerate(RNG.integers(5, 200, 300))]
    derived = derive_thresholds(texts, texts, "en", Clean(), ["gopher_quality"])
    by_key = {d.key: d for d in derived}
    assert by_key["min_words"].matched and 0 < by_key["min_words"].english_share < 1
    for d in derived:
        assert d.share == pytest.approx(d.english_share, abs=1 / len(texts)), d.key
    assert by_key["min_words"].value == 50


def test_chinese_min_words_matches_the_english_share_in_characters() -> None:
    english = [english_doc(int(n), i) for i, n in enumerate(RNG.integers(5, 200, 400))]
    chinese = [chinese_doc(int(n), i) for i, n in enumerate(RNG.integers(10, 600, 400))]
    derived = {d.key: d for d in derive_thresholds(english, chinese, "zh", Clean(), ["gopher_quality"])}
    words = derived["min_words"]
    assert words.matched and words.value > 100   # characters, not words: a higher count
    assert words.share == pytest.approx(words.english_share, abs=0.01)
    assert not derived["max_words"].matched and derived["max_words"].value == 100_000   # never reached


def test_a_threshold_the_english_reference_never_reaches_is_kept() -> None:
    texts = [english_doc(80, i) for i in range(50)]
    derived = {d.key: d for d in derive_thresholds(texts, texts, "de", Clean(), ["gopher_repetition"])}
    top = derived["top_n_grams.2"]
    assert (top.english_share, top.matched, top.value) == (0.0, False, 0.2)
    assert "gopher_repetition" not in overrides(derived.values()) or \
        "top_n_grams" not in overrides(derived.values())["gopher_repetition"]


def test_overrides_nest_ngram_sizes_and_keep_integer_types() -> None:
    derived = [DerivedThreshold("gopher_quality", "min_words", 50, 0.1, 120, 0.1),
               DerivedThreshold("gopher_repetition", "top_n_grams.2", 0.2, 0.01, 0.31, 0.01),
               DerivedThreshold("fineweb", "line_punct_thr", 0.12, 0.0, 0.12, 0.0, matched=False)]
    assert overrides(derived) == {"gopher_quality": {"min_words": 120},
                                  "gopher_repetition": {"top_n_grams": {"2": 0.31}}}
    table = format_table(derived, "zh")
    assert "gopher_repetition.top_n_grams.2" in table and "0.12 (kept)" in table


def test_derivation_needs_texts_and_known_rule_sets() -> None:
    with pytest.raises(ValueError, match="reference texts"):
        derive_thresholds([], ["x"], "de", Clean())
    with pytest.raises(ValueError, match="no per-language thresholds"):
        derive_thresholds(["x"], ["y"], "de", Clean(), ["code"])


# ------------------------------------------------------------------------------ CLI
def write_corpora(root: Path) -> tuple[Path, Path, Path]:
    english, chinese = root / "en", root / "zh"
    english.mkdir()
    chinese.mkdir()
    for i, n in enumerate(RNG.integers(5, 200, 120)):
        (english / f"{i}.txt").write_text(english_doc(int(n), i), encoding="utf-8")
    with gzip.open(chinese / "docs.jsonl.gz", "wt", encoding="utf-8") as out:
        for i, n in enumerate(RNG.integers(10, 600, 120)):
            out.write(json.dumps({"text": chinese_doc(int(n), i), "language": "zh"}) + "\n")
        out.write(json.dumps({"text": english_doc(50, 0), "language": "en"}) + "\n")   # skipped
    # a clean-stage-like shard: only its zh rows are zh reference
    mixed = root / "mixed.parquet"
    pq.write_table(pa.table({"text": [chinese_doc(300, 1), english_doc(40, 2)],
                             "language": ["zh", "en"]}), mixed)
    return english, chinese, mixed


def test_cli_prints_overrides_that_params_accept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    english, chinese, mixed = write_corpora(tmp_path)
    code = thresholds_cli.main(["--language", "zh", "--english", str(english),
                                "--reference", str(chinese), str(mixed),
                                "--params", str(Path(__file__).parents[2] / "params.yaml"),
                                "--rule-sets", "gopher_quality", "c4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "120 English and 121 zh reference documents" in err
    found = yaml.safe_load(out)
    assert set(found) == {"zh"} and isinstance(found["zh"]["gopher_quality"]["min_words"], int)
    params = params_from_dict({"clean": {"language_thresholds": found}})
    derived_words = found["zh"]["gopher_quality"]["min_words"]
    assert params.clean.for_language("zh").gopher_quality.min_words == derived_words


def test_cli_reads_parquet_by_language_and_writes_a_file(tmp_path: Path) -> None:
    english, _, mixed = write_corpora(tmp_path)
    assert thresholds_cli.read_texts([str(mixed)], "zh") == [pq.read_table(mixed).column("text")[0].as_py()]
    target = tmp_path / "zh.yaml"
    assert thresholds_cli.main(["--language", "zh", "--english", str(english), "--reference", str(mixed),
                                "--rule-sets", "fineweb", "--output", str(target),
                                "--params", str(Path(__file__).parents[2] / "params.yaml")]) == 0
    assert set(yaml.safe_load(target.read_text(encoding="utf-8"))) == {"zh"}


def test_cli_reports_a_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = thresholds_cli.main(["--language", "de", "--english", str(tmp_path / "nope"),
                                "--reference", str(tmp_path), "--params",
                                str(Path(__file__).parents[2] / "params.yaml")])
    assert code == 2 and "no such file" in capsys.readouterr().err
