"""On-demand adaptation flow: LoRA on a given base model, then evaluate it.

    python -m flows.adapt                                  # the pipeline's base model
    python -m flows.adapt --base path/to/other/base        # any saved base model

Deployed by prefect.yaml as ``redrobe-adapt/adapt`` (no schedule; run it with
``prefect deployment run redrobe-adapt/adapt -p base=...``). Two ways, by ``base``:

- the base model the lora stage reads in dvc.yaml (``data/models/base``, the default):
  the ``lora`` and ``evaluate`` stages run through DVC (``dvc repro --single-item``),
  so DVC records them in dvc.lock and skips them when nothing changed;
- any other model directory: the two stages' own dvc.yaml commands run with
  ``--base <dir>`` and every output redirected under ``output`` (default
  ``data/adapt/<base dir as a slug>/``: ``lora/``, ``lora.json``, ``lora_curve.csv``,
  ``eval.json``), outside DVC's outs, so the pipeline's own LoRA model and metrics
  are untouched. DVC does not track these outputs; the MLflow parent run does.

Either way the inputs (deduplicated shards, validation token arrays) are the
pipeline's current DVC outputs, so the base model must use the pipeline's tokenizer
(checked before anything runs). The flow takes the run lock and publishes the
summary artifacts like the other flows (flows.common).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import State

from flows.common import cli, print_summary, run_stages
from tasks.dvc import stage_option, stage_outs

FLOW = "redrobe-adapt"
STAGES = ("lora", "evaluate")
DEFAULT_BASE = "data/models/base"  # the lora stage's --base in dvc.yaml (checked by tests)
ADAPT_ROOT = Path("data/adapt")
TOKENIZER_FILE = "tokenizer.json"


def slug(path: str) -> str:
    """A directory name for a base model path: ``runs/exp 1/base`` -> ``runs-exp-1-base``."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", str(path)).strip("-.") or "base"


def check_base(repo: Path, base: Path) -> None:
    """Fail clearly unless ``base`` is a saved model whose tokenizer is the pipeline's."""
    tokenizer = repo / stage_option(repo, "tokenize", "--output") / TOKENIZER_FILE
    for path in (base / "config.json", base / TOKENIZER_FILE, tokenizer):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (a base model is a directory written by "
                                    "save_pretrained with its tokenizer; the pipeline's "
                                    "tokenizer comes from `dvc repro tokenize`)")
    # Compare the BPE model (vocabulary and merges), not the bytes: formatting may differ.
    if _bpe(base / TOKENIZER_FILE) != _bpe(tokenizer):
        raise ValueError(f"{base / TOKENIZER_FILE}: not the pipeline's tokenizer ({tokenizer}); "
                         "the evaluation's token arrays would not match this model")


def _bpe(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")).get("model")


def check_output(repo: Path, output: Path) -> None:
    """Refuse an output directory that overlaps an output DVC owns."""
    out = (repo / output).resolve()
    for owned in stage_outs(repo):
        path = (repo / owned).resolve()
        if out == path or path in out.parents or out in path.parents:
            raise ValueError(f"{output}: overlaps the DVC output {owned}; choose a directory "
                             f"outside DVC's outs (default {ADAPT_ROOT}/<base slug>)")


def replacements(base: str, output: Path) -> dict[str, dict[str, str]]:
    """The options of the lora and evaluate commands that point at another base and outputs."""
    return {
        "lora": {"--base": base, "--output": str(output / "lora"),
                 "--curve": str(output / "lora_curve.csv"), "--metrics": str(output / "lora.json")},
        "evaluate": {"--base": base, "--lora": str(output / "lora"),
                     "--metrics": str(output / "eval.json")},
    }


@flow(name=FLOW, log_prints=True)
def adapt(base: str = DEFAULT_BASE, output: str = "", repo: str = ".") -> dict[str, Any] | State:
    """LoRA-adapt ``base`` and evaluate it (through DVC when it is the pipeline's base)."""
    root = Path(repo).resolve()
    base_dir = (root / base).resolve()
    tags = {"redrobe.base_model": str(base_dir)}
    if base_dir == (root / stage_option(root, "lora", "--base")).resolve():
        return run_stages(FLOW, STAGES, str(root), tags=tags)
    check_base(root, base_dir)
    out = Path(output) if output else ADAPT_ROOT / slug(base)
    check_output(root, out)
    return run_stages(FLOW, STAGES, str(root), replace=replacements(str(base_dir), out),
                      eval_file=str(out / "eval.json"), tags={**tags, "redrobe.adapt_output": str(out)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flows.adapt", description=__doc__.splitlines()[0])
    p.add_argument("--base", default=DEFAULT_BASE, help=f"base model directory (default: {DEFAULT_BASE})")
    p.add_argument("--output", default="",
                   help=f"output directory for another base (default: {ADAPT_ROOT}/<base slug>)")
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    args = p.parse_args(argv)
    return cli(adapt, print_summary, base=args.base, output=args.output, repo=args.repo)


if __name__ == "__main__":
    sys.exit(main())
