"""`redrobe tokenize` end to end on tmp dirs: gate, training split only, cap, accounting, rerun."""

import json
import random

import pytest
import yaml

from redrobe.accounting import check_accounting
from redrobe.curriculum.split import is_validation
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.stages.tokenize import GATE_FILE, HELDOUT_VALIDATION, OVER_MAX_TRAIN_DOCS, main
from redrobe.tokenizer import load_tokenizer

SEED, FRACTION = 1234, 0.05
WORDS = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from",
         "river", "stone", "light"]
SECRET = "qzxvkjwy"  # occurs only in validation documents


def first_validation_id(prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(10_000) if is_validation(f"{prefix}{i}", FRACTION, SEED))


@pytest.fixture
def setup(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(0)
    layout = {("books", 0): 40, ("books", 1): 30, ("c4", 0): 50}
    for (slice_name, index), n in layout.items():
        with ShardWriter(shard_path(tmp_path / "dedup", slice_name, index)) as w:
            for i in range(n):
                body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 40)))
                w.write(Document(id=f"{slice_name}/{index}/{i}", text=body, source=slice_name))
            if index == 0:  # a validation document full of a word nothing else contains
                w.write(Document(id=first_validation_id(f"{slice_name}/val"),
                                 text=f" {SECRET}" * 50, source=slice_name))
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / GATE_FILE).write_text(json.dumps({"success": True}))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())

    def run(name: str = "tok", **tokenize):
        path = tmp_path / f"{name}.yaml"
        section = {"vocab_size": 320, "min_frequency": 2, "max_train_docs": 100_000, **tokenize}
        path.write_text(yaml.safe_dump({**params, "tokenize": section}))
        code = main(["--params", str(path), "--input", "dedup", "--gate", "quality",
                     "--output", f"{name}/out", "--metrics", f"{name}/metrics.json"])
        metrics = json.loads((tmp_path / name / "metrics.json").read_text()) if code == 0 else None
        return code, tmp_path / name / "out", metrics

    return run


def test_trains_on_the_training_split_only(setup):
    code, out, metrics = setup()
    assert code == 0 and not (out / ".work").exists()   # the sample's work files are gone
    tok = load_tokenizer(out)
    assert len(tok) == metrics["vocab_size"] <= metrics["vocab_size_target"] == 320
    # the held-out word was never seen: it stays split into many small pieces
    assert len(tok.encode(SECRET, add_special_tokens=False)) >= 4
    assert len(tok.encode(" river", add_special_tokens=False)) == 1
    acc = metrics["accounting"]
    assert check_accounting(metrics) == []
    assert (acc["slices"]["books"]["in"], acc["slices"]["c4"]["in"]) == (71, 51)
    for slice_name, counts in acc["slices"].items():
        held = counts["removed_by_reason"][HELDOUT_VALIDATION]
        assert held == metrics["validation"][slice_name]["docs"] >= 1
        assert counts["out"] == counts["in"] - held
    assert metrics["train_docs"] == acc["total"]["out"] and metrics["capped"] is False
    for slice_name, bpt in metrics["bytes_per_token"].items():
        v = metrics["validation"][slice_name]
        assert bpt == pytest.approx(v["bytes"] / v["tokens"], abs=1e-6) and bpt > 1.0


CHINESE = "我们的语言是一种功能强大的语言。"


def _chinese_slice(root, language_column: bool) -> None:
    """20 identical Chinese documents in slice `wikipedia`, with or without clean's column."""
    extra = ("language",) if language_column else ()
    with ShardWriter(shard_path(root / "dedup", "wikipedia", 0), extra_columns=extra) as w:
        for i in range(20):
            w.write(Document(id=f"wikipedia/{i}", text=CHINESE, source="wikipedia",
                             extra={"language": "zh"} if language_column else {}))


def test_fertility_per_language_of_the_validation_documents(setup, tmp_path):
    _chinese_slice(tmp_path, language_column=True)
    code, _, metrics = setup()
    assert code == 0
    fertility, validation = metrics["fertility"], metrics["validation"]
    assert set(fertility) == {"und", "zh"}      # no language column: und
    assert fertility["zh"]["docs"] == validation["wikipedia"]["docs"] >= 1
    assert fertility["und"]["docs"] == validation["books"]["docs"] + validation["c4"]["docs"]
    assert sum(f["tokens"] for f in fertility.values()) == sum(v["tokens"] for v in validation.values())
    zh = fertility["zh"]
    assert zh["words"] == 14 * zh["docs"] and zh["chars"] == len(CHINESE) * zh["docs"]
    assert set(zh) == {"docs", "words", "chars", "tokens", "tokens_per_word", "tokens_per_char"}
    assert zh["tokens_per_word"] == pytest.approx(zh["tokens"] / zh["words"], abs=1e-6)
    assert zh["tokens_per_char"] == pytest.approx(zh["tokens"] / zh["chars"], abs=1e-6)


def test_fertility_changes_no_other_output(setup, tmp_path):
    """The language column only adds `fertility`: tokenizer files and every other
    metrics key are the same with and without it."""
    _chinese_slice(tmp_path, language_column=False)
    _, plain, without = setup("a")
    _chinese_slice(tmp_path, language_column=True)
    _, tagged, with_column = setup("b")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (plain / name).read_bytes() == (tagged / name).read_bytes()
    assert set(without["fertility"]) == {"und"} and "zh" in with_column["fertility"]
    drop = {"fertility", "wall_seconds"}
    assert {k: v for k, v in without.items() if k not in drop} == \
        {k: v for k, v in with_column.items() if k not in drop}


def test_cap_keeps_exactly_max_train_docs_from_every_slice(setup):
    code, _, metrics = setup(max_train_docs=40)
    assert code == 0 and metrics["capped"] is True and metrics["train_docs"] == 40
    slices = metrics["accounting"]["slices"]
    assert all(s["out"] >= 5 for s in slices.values())  # a sample, not the first slice only
    assert sum(s["removed_by_reason"][OVER_MAX_TRAIN_DOCS] for s in slices.values()) == 122 - 40 - \
        sum(s["removed_by_reason"][HELDOUT_VALIDATION] for s in slices.values())
    assert check_accounting(metrics) == []


def test_rerun_is_byte_identical(setup):
    _, first, _ = setup("a")
    _, second, _ = setup("b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and "tokenizer.json" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize("gate", [{"success": False}, None, "not json"])
def test_refuses_a_failed_or_missing_gate(setup, tmp_path, capsys, gate):
    path = tmp_path / "quality" / GATE_FILE
    if gate is None:
        path.unlink()
    else:
        path.write_text(gate if isinstance(gate, str) else json.dumps(gate))
    code, out, _ = setup()
    assert code == 1 and not out.exists()
    assert "quality/validation.json" in capsys.readouterr().err


def test_missing_input_is_one_clear_error(setup, tmp_path, capsys):
    (tmp_path / "dedup").rename(tmp_path / "elsewhere")
    code, _, _ = setup()
    assert code == 1 and "dedup: no shards" in capsys.readouterr().err
