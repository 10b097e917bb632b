"""The contract: dvc.yaml ↔ CLI ↔ params.yaml ↔ config, declared code deps, layer rules."""

import ast
import contextlib
import importlib
import shlex
from pathlib import Path

import pytest
import yaml

from redrobe import cli, tracking
from redrobe.codedeps import import_closure, uncovered
from redrobe.config import SECTIONS
from redrobe.stages.registry import STAGES

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
#: modules allowed to touch mlflow, the environment or fixed paths (glue, not library)
GLUE = {"redrobe.tracking", "redrobe.cli", "redrobe.config_cli", "redrobe.lineage_cli",
        "redrobe.tables.runner",   # the runner drives dvc repro and MLflow runs, as cli does
        "redrobe.serve"}           # reads the MLflow / Prefect server settings, then execs the server


def test_stage_names_match_the_registry_and_cli():
    assert list(DVC) == list(STAGES)
    assert cli.STAGES is STAGES   # the CLI dispatches stage commands from the registry
    assert all(name == stage.name for name, stage in STAGES.items())


@pytest.mark.parametrize("stage", list(DVC))
def test_command_parses_with_the_stage_parser(stage):
    argv = shlex.split(DVC[stage]["cmd"])
    assert argv[:2] == ["redrobe", stage]
    module = importlib.import_module(STAGES[stage].entry)
    args = module.build_parser().parse_args(argv[2:])
    assert args.params == "params.yaml"
    metrics = [next(iter(m)) if isinstance(m, dict) else m for m in DVC[stage]["metrics"]]
    assert args.metrics in metrics


@pytest.mark.parametrize("stage", list(DVC))
def test_params_sections_exist(stage):
    assert set(DVC[stage]["params"]) <= set(SECTIONS)


@pytest.mark.parametrize("stage", list(DVC))
def test_registry_params_and_tracked_sections_are_the_dvc_params(stage):
    assert list(STAGES[stage].params) == DVC[stage]["params"]
    assert list(STAGES[stage].params) == DVC[stage]["params"]


@pytest.mark.parametrize("stage", list(DVC))
def test_stage_run_logs_the_dvc_params_to_mlflow(stage, monkeypatch):
    """The stage's own main, with its dvc.yaml command line, opens its MLflow run with
    exactly the params sections dvc.yaml declares (``run`` stubbed: nothing is computed)."""
    opened = []

    @contextlib.contextmanager
    def stage_run(name, params, experiment, pipeline_params=None):
        opened.append((name, list(params)))
        yield tracking.NullTracker()

    module = importlib.import_module(STAGES[stage].entry)
    monkeypatch.setattr(tracking, "stage_run", stage_run)
    monkeypatch.setattr(module, "run", lambda params, args, tracker: None)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.chdir(REPO)
    assert module.main(shlex.split(DVC[stage]["cmd"])[2:]) == 0
    assert opened == [(stage, DVC[stage]["params"])]


@pytest.mark.parametrize("stage", list(DVC))
def test_code_deps_cover_every_imported_module(stage):
    closure = import_closure(STAGES[stage].entry, SRC, REPO)
    missing = uncovered(closure, DVC[stage]["deps"],   # package markers with no logic need no dep
                        markers=("redrobe", "redrobe.stages"))
    assert not missing, f"stage {stage}: add to deps in dvc.yaml: {missing}"


def _library_modules():
    for path in sorted((SRC / "redrobe").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        if "stages" not in path.parts and name not in GLUE:
            yield path


@pytest.mark.parametrize("path", list(_library_modules()), ids=lambda p: str(p.relative_to(SRC)))
def test_library_layer_rules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "redrobe":
                names += [f"redrobe.{a.name}" for a in node.names]   # `from redrobe import stages`
            for name in names:
                assert name.split(".")[0] not in {"mlflow", "prefect", "dvc"}, f"{path}: imports {name}"
                assert not name.startswith("redrobe.stages"), f"{path}: imports stage glue {name}"
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            pytest.fail(f"{path}:{node.lineno}: library code must not read the environment")


def test_dvcignore_keeps_bytecode_out():
    assert "__pycache__/" in (REPO / ".dvcignore").read_text()


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(REPO)) for p in sorted((SRC / "redrobe").rglob("*.py"))
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    missing += [str(p.relative_to(REPO)) for d in ("flows", "tasks")
                for p in sorted((REPO / d).glob("*.py"))
                if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not missing
