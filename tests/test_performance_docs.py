"""docs/performance.md is rendered from benchmarks/results/*.json and must not go stale.

The page is written by benchmarks/render_docs.py (``make docs``, and every benchmark script
after it writes its JSON). These tests fail when a results file has no section in the
committed page or the page differs from a fresh render, and check on a temporary copy
that both failures are really detected. No benchmark runs here: rendering takes
milliseconds.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from bench_scripts import load_script

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
DOC = REPO / "docs" / "performance.md"


render_docs = load_script("render_docs")


def _sections(text: str) -> set[str]:
    return set(re.findall(r"^## ([\w.-]+)(?::|$)", text, flags=re.MULTILINE))


@pytest.fixture
def tmp_results(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the results and a page rendered from it."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    doc = tmp_path / "performance.md"
    render_docs.render(results, doc, BENCH)
    return results, doc


def test_every_results_file_has_a_section() -> None:
    stems = {p.stem for p in RESULTS.glob("*.json")}
    assert stems, "no benchmarks/results/*.json"
    missing = stems - _sections(DOC.read_text(encoding="utf-8"))
    assert not missing, f"docs/performance.md lacks sections for {sorted(missing)}: run `make docs`"


def test_page_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render_docs.render_text(), \
        "docs/performance.md is stale: run `make docs` (.venv/bin/python benchmarks/render_docs.py)"
    assert render_docs.check() == []


def test_renderers_accept_the_committed_results() -> None:
    # A renderer that fails falls back to a generic section; the committed results must not need it.
    assert render_docs.FALLBACK_NOTE not in render_docs.render_text()


def test_rendering_is_deterministic() -> None:
    assert render_docs.render_text() == render_docs.render_text()


def test_new_results_file_is_reported(tmp_results: tuple[Path, Path]) -> None:
    results, doc = tmp_results
    assert render_docs.check(results, doc, BENCH) == []
    (results / "zz_new_bench.json").write_text(json.dumps({"ratio": 1.25, "cpu": {"cores": 3}}))
    problems = render_docs.check(results, doc, BENCH)
    assert any("no section for benchmarks/results/zz_new_bench.json" in p for p in problems)
    assert any("stale" in p for p in problems)
    render_docs.render(results, doc, BENCH)
    text = doc.read_text(encoding="utf-8")
    assert "zz_new_bench" in _sections(text)
    assert "| `cpu.cores` | 3 |" in text and "| `ratio` | 1.250 |" in text
    assert render_docs.check(results, doc, BENCH) == []


def test_changed_number_makes_the_page_stale(tmp_results: tuple[Path, Path]) -> None:
    results, doc = tmp_results
    data = json.loads((results / "minhash.json").read_text())
    data["throughput"]["ratio"] = 123.4
    (results / "minhash.json").write_text(json.dumps(data))
    problems = render_docs.check(results, doc, BENCH)
    assert len(problems) == 1 and "stale" in problems[0]
    assert "**123.4×**" in render_docs.render_text(results, BENCH)


def test_check_command_exits_1_when_stale(tmp_results: tuple[Path, Path], capsys) -> None:
    results, doc = tmp_results
    args = ["--check", "--results", str(results), "--output", str(doc)]
    assert render_docs.main(args) == 0
    doc.write_text(doc.read_text(encoding="utf-8").replace("## minhash:", "## minhash (edited):"))
    assert render_docs.main(args) == 1
    assert "no section for benchmarks/results/minhash.json" in capsys.readouterr().err


def test_the_testing_page_block_follows_test_time_json(tmp_results: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    results, doc = tmp_results
    page = tmp_path / "testing.md"
    page.write_text(f"# Testing\n\n{render_docs.BLOCK_BEGIN}\n{render_docs.BLOCK_END}\nafter\n")
    run = {"commit": "abc", "total_s": 600.0, "pytest_s": 500.0, "passed": 3, "exit_code": 0,
           "load_average_at_start": [0.1, 0.2, 0.3],
           "durations": [{"seconds": 9.5, "when": "call", "test": "tests/test_x.py::test_y"}]}
    data = {"cpu": "cpu", "avx512": False, "cpus": 2, "runs": {"before": run}}
    (results / "test_time.json").write_text(json.dumps(data))
    render_docs.render(results, doc, BENCH, page)
    assert render_docs.check(results, doc, BENCH, page) == []
    text = page.read_text()
    assert "10.0 min" in text and "tests/test_x.py::test_y" in text and text.endswith("after\n")
    data["runs"]["after"] = run | {"commit": "def", "total_s": 300.0}
    (results / "test_time.json").write_text(json.dumps(data))
    render_docs.render(results, doc, BENCH)          # a copy's results never touch a page
    assert any("generated block is stale" in p for p in render_docs.check(results, doc, BENCH, page))
    render_docs.render(results, doc, BENCH, page)
    words = " ".join(page.read_text().split())
    assert "takes 0.50 of the time" in words and "(pytest) take 1.00" in words


def test_every_benchmark_script_regenerates_the_page() -> None:
    writers = [p for p in BENCH.glob("*.py")
               if p.name != "render_docs.py" and "results" in p.read_text(encoding="utf-8")]
    assert writers
    call = "from render_docs import render"
    lacking = [p.name for p in writers if call not in p.read_text(encoding="utf-8")]
    assert not lacking, f"benchmark scripts that do not call render_docs.render(): {lacking}"
