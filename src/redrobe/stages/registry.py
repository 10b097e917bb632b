"""The pipeline's stages in one place: each stage's command, module and params sections.

One frozen :class:`Stage` record per DVC stage, in pipeline order:

- ``name``: the stage in dvc.yaml and the ``redrobe <name>`` command;
- ``module``: the stage module under :mod:`redrobe.stages` (it defines ``main(argv)``);
- ``params``: the params.yaml sections the stage reads. They are the ``params:`` dvc.yaml
  declares for the stage (a change to them reruns it) and the sections its MLflow run
  logs as params (:attr:`Stage.tracked`), so DVC and MLflow record the same settings.

Used by the CLI's dispatch (:mod:`redrobe.cli`), by :func:`redrobe.stages.common.execute`
when it opens the stage's MLflow run, and by tests/test_contract.py, which checks
dvc.yaml against it.

    STAGES["clean"].entry     # "redrobe.stages.clean"
    STAGES["clean"].tracked   # ("shared", "clean", "tracking")
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    params: tuple[str, ...]

    @property
    def entry(self) -> str:
        """The stage module's import name (its ``main(argv)`` runs the stage)."""
        return f"redrobe.stages.{self.module}"

    @property
    def tracked(self) -> tuple[str, ...]:
        """The params sections logged on the stage's MLflow run: those DVC tracks."""
        return self.params


#: name -> stage, in pipeline (dvc.yaml) order
STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("ingest", "ingest", ("shared", "ingest", "tracking")),
    Stage("clean", "clean", ("shared", "clean", "tracking")),
    Stage("dedup", "dedup", ("shared", "dedup", "tracking")),
    Stage("quality", "quality", ("shared", "quality", "tracking")),
    Stage("tokenize", "tokenize", ("shared", "tokenize", "tracking")),
    Stage("bucket", "bucket", ("shared", "bucket", "tracking")),
    Stage("pretrain", "pretrain", ("shared", "model", "pretrain", "tracking")),
    Stage("lora", "lora", ("shared", "lora", "tracking")),
    Stage("evaluate", "evaluate", ("shared", "evaluate", "tracking")),
    Stage("report", "report", ("tracking",)),
)}
