"""Math-reasoning task: arithmetic word problems, LoRA adaptation, exact-match accuracy.

    train, test = make_splits(train_size=256, test_size=32, seed=1234)
    test[0].text      # "Question: Tom has 3 apples and buys 5 more. How many apples does
                      #  Tom have? Answer: 8"
    score_answers(test, [p.answer_text for p in test])        # 1.0: the scorer on gold
    report = adapt_and_score("data/models/base", tokenizer, params.evaluate.math, seed=1234)
    report["base_accuracy"], report["lora_accuracy"]

Problems are generated from four templates, one per operation: addition, subtraction
(never negative), multiplication and a two-step add-then-subtract, with seeded random
names, items and operands. The test split is drawn first; a training problem is
rejected when its operand pair ``(a, b)`` appears in any test problem (whatever the
operation), so the splits share no problem and no number pair: a model can only
score by computing, not by recalling a test problem seen in training.

:func:`adapt_and_score` loads a fresh copy of a model, scores greedy answers on the
test split (the unadapted accuracy), wraps it with LoRA adapters (:mod:`redrobe.lora`),
trains them on the training problems with the pretraining loop
(:func:`redrobe.train.train_on_array`) and scores again. An answer is the first
integer after ``Answer:`` in the prompt's continuation; exact match against the
gold integer. Small models score near zero: the numbers are reported as measured.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redrobe.config import EvaluateMath
from redrobe.lora import apply_lora, load_model, trainable_parameters
from redrobe.train import TrainConfig, train_on_array

ANSWER_MARK = "Answer:"
ANSWER_RE = re.compile(r"Answer:\s*(-?\d+)")
OPERATIONS = ("add", "sub", "mul", "two_step")

NAMES = ("Tom", "Ana", "Sam", "Mia", "Leo", "Zoe", "Max", "Eva", "Ben", "Ivy")
ITEMS = ("apples", "books", "coins", "pens", "cards", "eggs", "shells", "stamps")

TEMPLATES = {
    "add": "{name} has {a} {item} and buys {b} more. How many {item} does {name} have?",
    "sub": "{name} has {a} {item} and gives away {b}. How many {item} are left?",
    "mul": "{name} has {a} bags with {b} {item} in each bag. How many {item} does {name} have?",
    "two_step": "{name} has {a} {item}, buys {b} more and then gives away {c}. "
                "How many {item} does {name} have now?",
}


@dataclass(frozen=True)
class Problem:
    op: str
    operands: tuple[int, ...]
    question: str
    answer: int

    @property
    def prompt(self) -> str:
        """What the model is given: the question and the answer mark."""
        return f"Question: {self.question} {ANSWER_MARK}"

    @property
    def answer_text(self) -> str:
        """The gold continuation of :attr:`prompt`."""
        return f" {self.answer}"

    @property
    def text(self) -> str:
        """The full training text."""
        return self.prompt + self.answer_text


def make_problem(op: str, operands: tuple[int, ...], rng: random.Random) -> Problem:
    """One word problem of operation ``op``; name and item drawn from ``rng``."""
    a, b, *rest = operands
    answer = {"add": a + b, "sub": a - b, "mul": a * b,
              "two_step": a + b - (rest[0] if rest else 0)}[op]
    question = TEMPLATES[op].format(name=rng.choice(NAMES), item=rng.choice(ITEMS),
                                    a=a, b=b, c=rest[0] if rest else 0)
    return Problem(op, operands, question, answer)


def _operands(op: str, rng: random.Random) -> tuple[int, ...]:
    if op == "mul":
        return rng.randint(2, 12), rng.randint(2, 12)
    a, b = rng.randint(2, 30), rng.randint(1, 20)
    if op == "sub":
        return max(a, b), min(a, b)            # never a negative count
    if op == "two_step":
        return a, b, rng.randint(1, a + b - 1)
    return a, b


def _draw(count: int, rng: random.Random, banned_pairs: set[tuple[int, ...]],
          seen: set[tuple[str, tuple[int, ...]]]) -> list[Problem]:
    problems: list[Problem] = []
    for attempt in range(count * 200):  # rejection sampling; fails loudly when space runs out
        if len(problems) == count:
            return problems
        # cycling per attempt keeps the operations balanced while each has room, and
        # lets the others fill in once the small multiplication space is used up
        op = OPERATIONS[attempt % len(OPERATIONS)]
        operands = _operands(op, rng)
        if (op, operands) in seen or operands[:2] in banned_pairs:
            continue
        seen.add((op, operands))
        problems.append(make_problem(op, operands, rng))
    if len(problems) < count:
        raise ValueError(f"cannot draw {count} distinct problems (got {len(problems)})")
    return problems


def make_splits(train_size: int, test_size: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """(train, test): disjoint problems and disjoint operand pairs, reproducible from ``seed``."""
    rng = random.Random(f"math-task-{seed}")
    seen: set[tuple[str, tuple[int, ...]]] = set()
    test = _draw(test_size, rng, set(), seen)
    train = _draw(train_size, rng, {p.operands[:2] for p in test}, seen)
    return train, test


def parse_answer(text: str) -> int | None:
    """The first integer after ``Answer:`` in ``text``, or None."""
    match = ANSWER_RE.search(text)
    return int(match.group(1)) if match else None


def score_answers(problems: Sequence[Problem], continuations: Sequence[str]) -> float:
    """Exact-match accuracy of ``prompt + continuation`` answers against the gold ones."""
    hits = sum(parse_answer(p.prompt + c) == p.answer for p, c in zip(problems, continuations))
    return hits / len(problems) if problems else 0.0


@torch.no_grad()
def generate_answers(model: torch.nn.Module, tokenizer: Any, problems: Sequence[Problem], *,
                     max_new_tokens: int, device: str = "cpu") -> list[str]:
    """Greedy continuation of each prompt (preceded by eos, the document separator).

    Prompts longer than the context left for the answer keep their end (the question's
    last words and the answer mark).
    """
    model.eval()
    room = model.config.max_position_embeddings - max_new_tokens
    out = []
    for problem in problems:
        ids = [tokenizer.eos_token_id, *tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]]
        x = torch.tensor([ids[-room:]], device=device)                      # (1, P)
        y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                           max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        out.append(tokenizer.decode(y[0, x.shape[1]:].tolist(), skip_special_tokens=True))
    return out


def pack(tokenizer: Any, problems: Sequence[Problem]) -> np.ndarray:
    """Token ids of the problems' full texts, each followed by eos."""
    ids: list[int] = []
    for p in problems:
        ids += tokenizer(p.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return np.asarray(ids, dtype=np.int64)


def adapt_and_score(model_dir: str | Path, tokenizer: Any, task: EvaluateMath, *, seed: int,
                    device: str = "cpu") -> dict[str, Any]:
    """Accuracy of the model in ``model_dir`` before and after LoRA adaptation on the task.

    The model is loaded afresh from ``model_dir``, so the caller's copy is untouched.
    The validation loss reported is on the test problems' full texts (no gradient).
    """
    train, test = make_splits(task.train_problems, task.test_problems, seed)
    model, _ = load_model(model_dir)
    model.to(device)
    base_out = generate_answers(model, tokenizer, test, max_new_tokens=task.max_new_tokens,
                                device=device)
    torch.manual_seed(seed)  # LoRA's A matrices are initialized randomly
    model = apply_lora(model, r=task.r, alpha=task.alpha, dropout=task.dropout,
                       target_modules=task.target_modules)
    config = TrainConfig.from_params(task, precision=task.precision, device=device, seed=seed)
    seq_len = model.config.max_position_embeddings
    result = train_on_array(model, pack(tokenizer, train), pack(tokenizer, test),
                            seq_len=seq_len, batch_size=task.batch_size, eval_batches=2,
                            config=config)
    lora_out = generate_answers(model, tokenizer, test, max_new_tokens=task.max_new_tokens,
                                device=device)
    return {"base_accuracy": score_answers(test, base_out),
            "lora_accuracy": score_answers(test, lora_out),
            "gold_accuracy": score_answers(test, [p.answer_text for p in test]),
            "n_test": len(test), "n_train": len(train), "steps": task.steps,
            "trainable_parameters": trainable_parameters(model)["trainable"],
            "initial_test_loss": result.initial_val.get("val"),
            "final_test_loss": result.final_val.get("val"),
            "final_train_loss": result.records[-1].loss,
            "examples": [{"prompt": p.prompt, "gold": p.answer, "base": b, "lora": lo}
                         for p, b, lo in list(zip(test, base_out, lora_out))[:3]]}
