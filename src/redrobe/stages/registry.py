"""The pipeline's stages in one place: each stage's command, module and params sections.

One frozen :class:`Stage` record per DVC stage, in pipeline order:

- ``name``: the stage in dvc.yaml, the ``redrobe <name>`` command and the stage module
  ``redrobe.stages.<name>`` (:attr:`Stage.entry`, which defines ``main(argv)``);
- ``params``: the params.yaml sections the stage reads. They are the ``params:`` dvc.yaml
  declares for the stage (a change to them reruns it) and the sections its MLflow run
  logs as params, so DVC and MLflow record the same settings.

Used by the CLI's dispatch (:mod:`redrobe.cli`), by :func:`redrobe.stages.common.execute`
when it opens the stage's MLflow run, and by tests/test_contract.py, which checks
dvc.yaml against it.

    STAGES["clean"].entry     # "redrobe.stages.clean"
    STAGES["clean"].params    # ("shared", "clean", "tracking")
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    params: tuple[str, ...]

    @property
    def entry(self) -> str:
        """The stage module's import name (its ``main(argv)`` runs the stage)."""
        return f"redrobe.stages.{self.name}"


#: name -> stage, in pipeline (dvc.yaml) order
STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("ingest", ("shared", "ingest", "tracking")),
    Stage("clean", ("shared", "clean", "tracking")),
    Stage("dedup", ("shared", "dedup", "tracking")),
    Stage("quality", ("shared", "quality", "tracking")),
    Stage("tokenize", ("shared", "tokenize", "tracking")),
    Stage("bucket", ("shared", "bucket", "tracking")),
    Stage("pretrain", ("shared", "model", "pretrain", "tracking")),
    Stage("lora", ("shared", "lora", "tracking")),
    Stage("evaluate", ("shared", "evaluate", "tracking")),
    Stage("report", ("tracking",)),
)}
