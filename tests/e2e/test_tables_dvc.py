"""`redrobe reproduce` through DVC, in a git repo copied from this checkout.

The table's variants are DVC stages: a second run reruns nothing, and changing one rule
set's threshold reruns that rule set's variant (and the table) only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pipeline_repo import git_repo, set_params, sh

pytestmark = pytest.mark.e2e
TABLE = "rule-removal"


def _ran(log: str) -> list[str]:
    """Stage names DVC ran, in order ("Running stage 'data/tables/tiny/dvc.yaml:corpus':")."""
    return [line.split("'")[1].rsplit(":", 1)[-1] for line in log.splitlines()
            if line.startswith("Running stage")]


def _reproduce(root: Path) -> str:
    return sh(["redrobe", "reproduce", TABLE, "--scale", "tiny"], root)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = git_repo(tmp_path_factory.mktemp("tables") / "repo")
    return root, _reproduce(root)


def test_first_run_builds_the_table_through_dvc(repo):
    root, log = repo
    stages = yaml.safe_load((root / "data/tables/tiny/dvc.yaml").read_text())["stages"]
    ran = _ran(log)   # DVC's order: inputs first, the variants (any order), the table last
    assert ran[:2] == ["corpus", "tokenizer"] and ran[-1] == TABLE
    assert sorted(ran[2:-1]) == sorted(s for s in stages if s.startswith(f"{TABLE}-"))
    markdown = (root / f"data/tables/tiny/{TABLE}.md").read_text()
    assert markdown in log and "## Claims" in markdown
    assert (root / "data/tables/tiny/dvc.lock").is_file()


def test_rerun_with_nothing_changed_runs_nothing(repo):
    root, _ = repo
    log = _reproduce(root)
    assert _ran(log) == []


def test_a_changed_threshold_reruns_only_its_variant(repo):
    root, _ = repo
    set_params(root, {"clean": {"fineweb": {"short_line_thr": 0.5}}})
    log = _reproduce(root)
    assert _ran(log) == [f"{TABLE}-fineweb", TABLE]
