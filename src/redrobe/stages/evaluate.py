"""`redrobe evaluate`: held-out perplexity and bits per byte per slice, and generation speed.

    redrobe evaluate --params params.yaml --buckets data/processed/buckets \
        --base data/models/base --lora data/models/lora --metrics data/metrics/eval.json

Scores the base model and the LoRA merged model (``<lora>/merged``) on every slice's
validation array of the bucket stage (at most ``evaluate.max_tokens_per_slice``
tokens each, windows of the model's ``max_position_embeddings``), times greedy
generation, and writes eval.json:
``{"models": {"base": {...}, "lora": {...}}, "lora_slice": ..., "delta_bits_per_byte": {...},
"registry": {...}}``.

Tracking: the scores are logged as ``eval.<model>.<slice>.<metric>`` metrics (and
``eval.<model>.mean_bits_per_byte``, ``eval.lora_delta.<slice>.bits_per_byte``) on this
run, linked to the models' MLflow LoggedModels, and copied onto the pipeline's parent
run. Then the promotion gates of :mod:`redrobe.evaluate.gates` decide whether the base
model (the LoggedModel of the pretrain run whose ``weights_digest`` tag is the sha256
of ``<base>/model.safetensors``) becomes a version of the registered model
``evaluate.model_name`` with alias ``candidate``, and ``production``. The decision
(every gate with its value, threshold and verdict; version; aliases set) is the
``registry`` entry of eval.json, ``registry/decision.json`` on the run and
``redrobe.registry.*`` tags on the run and its parent. A failed gate does not fail the
stage: the model is simply not registered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers.utils import SAFE_WEIGHTS_NAME

from redrobe.config import Params
from redrobe.curriculum.layout import INDEX_FILE, open_tokens, read_index
from redrobe.documents import file_digest
from redrobe.errors import InputError
from redrobe.evaluate import deltas, evaluate_model
from redrobe.evaluate.gates import PRODUCTION_ALIAS, Incumbent, decide
from redrobe.lora import MERGED_DIR, TASK_FILE, load_model
from redrobe.stages import common, devices
from redrobe.tracking import WEIGHTS_TAG


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("evaluate", __doc__.splitlines()[0])
    p.add_argument("--buckets", required=True, help="bucket stage output (val-<slice>.bin)")
    p.add_argument("--base", required=True, help="pretrained model directory")
    p.add_argument("--lora", required=True, help="lora stage output (merged/, task.json)")
    return p


def validation_arrays(root: str) -> dict[str, np.ndarray]:
    try:
        index = read_index(root)
        return {s: open_tokens(root, index, v["file"]) for s, v in sorted(index["val"].items())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{Path(root) / INDEX_FILE}: unreadable validation arrays "
                         f"({type(exc).__name__}: {exc})") from exc


def lora_task(root: str) -> dict[str, Any]:
    path = Path(root) / TASK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the LoRA task description ({exc})") from exc


def eval_metrics(models: dict[str, Any], delta: dict[str, float]) -> dict[str, dict[str, float]]:
    """Tracking names per model: ``{"base": {"eval.base.books.bits_per_byte": ...}, ...}``.

    The ``lora_delta`` group holds the LoRA-minus-base bits per byte per slice.
    """
    out: dict[str, dict[str, float]] = {}
    for name, entry in sorted(models.items()):
        group = {f"eval.{name}.{s}.{k}": v for s, scores in sorted(entry["slices"].items())
                 for k, v in scores.items() if k in ("bits_per_byte", "perplexity", "tokens")}
        group[f"eval.{name}.mean_bits_per_byte"] = entry["mean_bits_per_byte"]
        group[f"eval.{name}.generation_tokens_per_s"] = entry["generation_tokens_per_s"]
        out[name] = {k: v for k, v in group.items() if v is not None}
    out["lora_delta"] = {f"eval.lora_delta.{s}.bits_per_byte": d for s, d in sorted(delta.items())}
    return out


def registry_tags(record: dict[str, Any]) -> dict[str, str]:
    return {"redrobe.registry.status": record["status"],
            "redrobe.registry.model": record["model_name"],
            "redrobe.registry.version": record["version"] or "",
            "redrobe.registry.aliases": ",".join(record["aliases"]),
            "redrobe.registry.gates": ",".join(f"{g['name']}={'pass' if g['passed'] else 'fail'}"
                                               for g in record["gates"])}


def promote(params: Params, mean_bpb: float | None, model_id: str | None, tracker: Any,
            provenance: dict[str, str]) -> dict[str, Any]:
    """Run the gates and apply them to the model registry; return the decision record.

    Status: ``registered``, ``gates_failed``, ``disabled`` (evaluate.register false),
    ``tracking_off`` or ``no_logged_model`` (no pretrain LoggedModel has the base weights'
    digest in this experiment: the candidate gates are still evaluated and recorded).
    """
    ep = params.evaluate
    gate_args = dict(max_bits_per_byte=ep.max_bits_per_byte, min_improvement=ep.min_improvement)
    record = {"model_name": ep.model_name, "model_id": model_id, "version": None, "aliases": [],
              "incumbent": None, **provenance}
    if not ep.register or not tracker.enabled or model_id is None:
        status = ("disabled" if not ep.register else
                  "tracking_off" if not tracker.enabled else "no_logged_model")
        decision = decide(mean_bpb, incumbent=None, check_production=False, **gate_args)
        return {**record, "status": status, **decision.as_dict()}

    registry = tracker.registry(ep.model_name)
    incumbent = _incumbent(registry, registry.version_of(model_id, provenance[WEIGHTS_TAG]))
    decision = decide(mean_bpb, incumbent=incumbent, **gate_args)
    record["incumbent"] = None if incumbent is None else {
        "version": incumbent.version, "mean_bits_per_byte": incumbent.mean_bits_per_byte,
        "val_digest": registry.version_tags(incumbent.version).get("val_digest")}
    if not decision.candidate:
        return {**record, "status": "gates_failed", **decision.as_dict()}
    version = registry.register(model_id, {"mean_bits_per_byte": mean_bpb,
                                           "eval_run_id": tracker.run_id, **provenance})
    registry.set_aliases(version, decision.aliases)
    return {**record, "status": "registered", "version": version, **decision.as_dict(),
            "aliases": decision.aliases}


def _incumbent(registry: Any, this_version: str | None) -> Incumbent | None:
    """The production version, if any; ``this_version``: the model under test's, if registered."""
    version = registry.aliases().get(PRODUCTION_ALIAS)
    if version is None:
        return None
    score = registry.version_tags(version).get("mean_bits_per_byte")
    try:
        mean = float(score) if score is not None else None
    except ValueError:  # a hand-set tag that is not a number: treat as unscored
        mean = None
    return Incumbent(version, mean, is_this_model=this_version == version)


def run(params: Params, args: argparse.Namespace, tracker: Any) -> dict[str, Any]:
    ep = params.evaluate
    val = validation_arrays(args.buckets)
    task = lora_task(args.lora)
    devices.torch_setup(ep.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    models, dirs = {}, {"base": Path(args.base), "lora": Path(args.lora) / MERGED_DIR}
    for name, path in dirs.items():
        model, tokenizer = load_model(path)
        models[name] = evaluate_model(
            model.to(device), tokenizer, val, seq_len=model.config.max_position_embeddings,
            max_tokens=ep.max_tokens_per_slice, batch_size=ep.batch_size, prompt=ep.gen_prompt,
            gen_tokens=ep.gen_tokens, device=device)
        del model
    delta = deltas(models["base"], models["lora"])

    digests = {name: file_digest(path / SAFE_WEIGHTS_NAME) for name, path in dirs.items()}
    model_ids = {name: tracker.find_logged_model(WEIGHTS_TAG, d) for name, d in digests.items()}
    metrics = eval_metrics(models, delta)
    for group, values in metrics.items():
        tracker.log_metrics(values, model_id=model_ids.get(group))
        tracker.log_parent_metrics(values)
    provenance = {WEIGHTS_TAG: digests["base"],
                  "val_digest": file_digest(Path(args.buckets) / INDEX_FILE)}
    record = promote(params, models["base"]["mean_bits_per_byte"], model_ids["base"], tracker,
                     provenance)
    tracker.log_dict(record, "registry/decision.json")
    tracker.set_tags(registry_tags(record))
    tracker.set_parent_tags(registry_tags(record))
    print(f"redrobe evaluate: registry {record['status']}"
          + (f": {ep.model_name} version {record['version']} aliases {record['aliases']}"
             if record["version"] else ""))
    return common.metrics_payload(
        "evaluate", models=models, lora_slice=task["slice"], delta_bits_per_byte=delta,
        registry=record, max_tokens_per_slice=ep.max_tokens_per_slice, device=device,
        threads=torch.get_num_threads())


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("evaluate", argv, build_parser, run, ("shared", "evaluate", "tracking"))
