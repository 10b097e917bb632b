"""Math word problems: disjoint splits, gold answers, the scorer, LoRA adaptation."""

from pathlib import Path

import pytest
import torch

from redrobe.config import EvaluateMath, Model
from redrobe.documents import file_digest
from redrobe.evaluate.math_task import (
    OPERATIONS,
    adapt_and_score,
    make_splits,
    pack,
    parse_answer,
    score_answers,
)
from redrobe.model import build_model, llama_config
from redrobe.tokenizer import save_tokenizer, train_tokenizer

TINY = Model(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64,
             max_seq_len=64)
GOLD = {"add": lambda a, b, *c: a + b, "sub": lambda a, b, *c: a - b,
        "mul": lambda a, b, *c: a * b, "two_step": lambda a, b, c: a + b - c}


def tiny_model_dir(path: Path, extra_texts: tuple[str, ...] = ()) -> Path:
    """A randomly initialized tiny LLaMA and a BPE trained on problems (+ extra texts)."""
    train, test = make_splits(200, 20, seed=99)
    tokenizer = train_tokenizer([p.text for p in train + test] + list(extra_texts),
                                vocab_size=320, min_frequency=2)
    torch.set_num_threads(1)
    model = build_model(llama_config(TINY, len(tokenizer), bos_id=tokenizer.bos_token_id,
                                     eos_id=tokenizer.eos_token_id,
                                     pad_id=tokenizer.pad_token_id), seed=3)
    model.save_pretrained(path)
    save_tokenizer(tokenizer, path)
    return path


def test_splits_share_no_problem_and_no_operand_pair():
    train, test = make_splits(300, 40, seed=7)
    assert len(train) == 300 and len(test) == 40
    assert not {p.text for p in train} & {p.text for p in test}
    assert not {p.operands[:2] for p in train} & {p.operands[:2] for p in test}
    assert len({(p.op, p.operands) for p in train + test}) == 340   # no duplicate at all
    assert {p.op for p in test} == set(OPERATIONS) == {p.op for p in train}


def test_splits_are_seeded():
    assert make_splits(50, 10, seed=1) == make_splits(50, 10, seed=1)
    assert make_splits(50, 10, seed=1) != make_splits(50, 10, seed=2)


def test_gold_answers_are_the_arithmetic_and_never_negative():
    train, test = make_splits(200, 20, seed=3)
    for p in train + test:
        assert p.answer == GOLD[p.op](*p.operands) >= 0
        assert all(str(n) in p.question for n in p.operands)
        assert p.text == p.prompt + f" {p.answer}" and p.prompt.endswith("Answer:")


def test_parse_answer_takes_the_first_integer_after_the_mark():
    assert parse_answer("Question: 3 and 4? Answer: 12 and 5") == 12
    assert parse_answer("Answer:-3") == -3
    assert parse_answer("Answer: eight") is None
    assert parse_answer("no mark 8") is None


def test_scorer_gives_full_marks_on_gold_and_counts_misses():
    _, test = make_splits(10, 8, seed=5)
    assert score_answers(test, [p.answer_text for p in test]) == 1.0
    wrong = [f" {p.answer + 1}" for p in test]
    assert score_answers(test, wrong) == 0.0
    half = [p.answer_text if i % 2 else w for i, (p, w) in enumerate(zip(test, wrong))]
    assert score_answers(test, half) == 0.5
    assert score_answers(test, [" I do not know"] * len(test)) == 0.0


def test_pack_ends_every_problem_with_eos(tmp_path):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(tmp_path / "m"))
    train, _ = make_splits(5, 2, seed=1)
    ids = pack(tokenizer, train)
    assert (ids == tokenizer.eos_token_id).sum() == 5 and ids[-1] == tokenizer.eos_token_id


def test_adapt_and_score_trains_lora_and_leaves_the_model_dir_alone(tmp_path):
    from transformers import AutoTokenizer
    model_dir = tiny_model_dir(tmp_path / "m")
    digest = file_digest(model_dir / "model.safetensors")
    task = EvaluateMath(train_problems=64, test_problems=8, steps=8, batch_size=4, lr=1e-2,
                        min_lr=1e-3, warmup_steps=1, max_new_tokens=4)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    report = adapt_and_score(model_dir, tokenizer, task, seed=1)
    assert report["n_test"] == 8 and report["n_train"] == 64 and report["gold_accuracy"] == 1.0
    for key in ("base_accuracy", "lora_accuracy"):
        assert report[key] in {k / 8 for k in range(9)}
    assert report["final_test_loss"] < report["initial_test_loss"]   # it learned the format
    assert report["trainable_parameters"] > 0
    assert file_digest(model_dir / "model.safetensors") == digest
    assert report == adapt_and_score(model_dir, tokenizer, task, seed=1)  # seeded: same on CPU


@pytest.mark.parametrize("bad", [{"steps": 0}, {"warmup_steps": 40}, {"target_modules": []}])
def test_math_params_are_validated(bad):
    from redrobe.config import ConfigError, params_from_dict
    with pytest.raises(ConfigError, match="evaluate.math"):
        params_from_dict({"evaluate": {"math": bad}})
