"""Every registered table end to end at the tiny scale, through the runner, on the real
tiny sample corpus (ingest of the pinned distributions): structure and arithmetic."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from redrobe.tables import TABLES, get_spec, runner

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny-scale layout with its corpus and tokenizer built once for every table."""
    root = tmp_path_factory.mktemp("tables")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "profiles", root / "profiles")
    cache = REPO / ".cache" / "dists"
    cache.mkdir(parents=True, exist_ok=True)
    # tables that read pinned archives themselves (tokenizer-fertility) find them where
    # they are in the repo: <cwd>/.cache/dists
    (root / ".cache").symlink_to(REPO / ".cache", target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("REDROBE_TRACKING", "off")
        layout = runner.Layout(Path("data/tables"), "tiny")
        runner.prepare("params.yaml", layout)
        runner.build_corpus(layout, str(cache))
        runner.build_tokenizer(layout)
        yield root, layout


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TABLES))
def test_table_runs_and_renders_at_tiny_scale(tiny, name, monkeypatch):
    root, layout = tiny
    monkeypatch.chdir(root)
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    spec = get_spec(name)
    ctx = runner.context(spec, layout)
    for variant in runner.table_variants(spec, ctx):
        result = runner.run_variant(spec, layout, variant.name)
        assert json.loads(layout.result(spec, variant.name).read_text()) == result
    table, markdown = runner.render(spec, layout)
    assert table.rows and table.claims
    assert all(c.verdict in ("holds", "does not hold", "not checked") for c in table.claims)
    assert markdown.startswith(f"# {table.title}") and "## What differs from the paper" in markdown
    rows = list(csv.DictReader(io.StringIO(layout.output(spec, "csv").read_text())))
    assert len(rows) == len(table.rows) and list(rows[0]) == table.columns
    summary = json.loads(layout.output(spec, "json").read_text())
    assert summary["table"] == name and len(summary["claims"]) == len(table.claims)
    # the rendered outputs are a function of the variants' results: rendering twice agrees
    assert runner.render(spec, layout)[1] == markdown
