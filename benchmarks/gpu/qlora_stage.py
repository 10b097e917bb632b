"""GPU check: the `redrobe lora` stage with ``lora.quantization: 4bit`` on the stage test inputs.

    python benchmarks/gpu/qlora_stage.py --device cuda --out qlora_stage.json

Builds the inputs the stage tests use (tests/stages/llm_fixtures.py: tiny shards,
tokenizer, buckets and params), pretrains the base with `redrobe pretrain`, then runs
`redrobe lora` with ``lora.quantization`` set (4bit: QLoRA) and ``lora.precision: auto``
(the base is pretrained with ``pretrain.compile: false``, to stay within the time limit).
Checked: the stage exits 0 on the expected device (bf16 on CUDA), ``lora.json`` has the
trainable-parameter count equal to its formula, records the quantization, and the merged
export agrees with the adapter on the fp32 base to 1e-5 (both loaded from disk).
``--device cpu --quantization none`` runs the same on a CPU.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from qlora_library import AGREE, export_agreement
from report import REPO, check_parser, check_record, load_module, write_check

from redrobe.stages import lora, pretrain


def criteria_for(f: dict[str, Any], device: str, quantization: str) -> dict[str, bool]:
    criteria = {"pretrain_exit_0": f["pretrain_exit_code"] == 0, "lora_exit_0": f["lora_exit_code"] == 0}
    if f["lora_exit_code"] != 0:
        return criteria
    criteria.update({
        "trainable_equals_formula": f["trainable_parameters"] == f["trainable_parameters_formula"],
        "quantization_recorded": f["quantization"] == quantization,
        "ran_on_device": f["device"] == device.split(":")[0],
        f"merged_vs_peft_at_most_{AGREE}": f["merged_vs_peft_max_abs"] <= AGREE})
    if device.startswith("cuda"):
        criteria["precision_bf16"] = f["precision"] == "bf16"
    return criteria


def check_params(params: Path, quantization: str) -> Path:
    """The fixture's params with the quantization under check and the lora precision left
    to the hardware (as params.yaml does). The base is pretrained without torch.compile,
    which "auto" would turn on under CUDA: compiling would take most of the time limit."""
    data = yaml.safe_load(params.read_text())
    data["lora"].update(quantization=quantization, precision="auto")
    data["pretrain"]["compile"] = False
    path = params.with_name("params-qlora.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    return path


def run_stages(root: Path, quantization: str) -> dict[str, Any]:
    fx = load_module(REPO / "tests" / "stages" / "llm_fixtures.py")
    written = fx.write_inputs(root)
    paths = {**written, "params": check_params(written["params"], quantization)}
    base, out, metrics = root / "base", root / "lora", root / "metrics"
    figures: dict[str, Any] = {"pretrain_exit_code": pretrain.main(fx.pretrain_argv(paths, base, metrics))}
    if figures["pretrain_exit_code"] != 0:
        return {**figures, "lora_exit_code": None}
    figures["lora_exit_code"] = lora.main(fx.lora_argv(paths, base, out, metrics))
    if figures["lora_exit_code"] != 0:
        return figures
    m = json.loads((metrics / "lora.json").read_text())
    keys = ("device", "precision", "quantization", "trainable_parameters", "trainable_parameters_formula",
            "final_train_loss", "initial_val_loss", "final_val_loss", "steps")
    x = torch.randint(4, 300, (2, 32), generator=torch.Generator().manual_seed(0))
    return {**figures, **{k: m[k] for k in keys}, "merged_vs_peft_max_abs": export_agreement(base, out, x)[0]}


def main(argv: list[str] | None = None) -> int:
    parser = check_parser(__doc__.splitlines()[0])
    parser.add_argument("--quantization", default="4bit", choices=("4bit", "none"))
    args = parser.parse_args(argv)
    os.environ["REDROBE_TRACKING"] = "off"   # a check, not an experiment: no MLflow run
    with tempfile.TemporaryDirectory(prefix="qlora-stage-") as tmp:
        figures = run_stages(Path(tmp), args.quantization)
    ran = (f"redrobe pretrain + redrobe lora (quantization {args.quantization}, precision auto) "
           f"on the stage test inputs (tests/stages/llm_fixtures.py), {args.device}")
    criteria = criteria_for(figures, args.device, args.quantization)
    write_check(args.out, check_record("qlora_stage", ran, figures, criteria))
    return 0


if __name__ == "__main__":
    sys.exit(main())
