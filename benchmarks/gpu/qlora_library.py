"""GPU check: QLoRA through redrobe.lora on a tiny LLaMA (bitsandbytes NF4, peft, bf16).

    python benchmarks/gpu/qlora_library.py --device cuda --out qlora_library.json [--steps 40]
    python benchmarks/gpu/qlora_library.py --device cpu --quantization none --out x.json --steps 4

A tiny LLaMA (hidden 64, 2 layers, 4 heads / 2 kv heads, FFN 128, seq 64, vocab 128) is
saved with a 128-word tokenizer, then taken through the functions the lora stage uses:
:func:`redrobe.lora.load_model` with ``quantization="4bit"`` (NF4 weights on the GPU,
prepared for k-bit training), :func:`~redrobe.lora.apply_lora` (r = 8 on q/k/v/o),
:func:`redrobe.train.train_on_array` (bf16 on CUDA) and :func:`~redrobe.lora.save_lora`
with the full-precision base. Reported and checked:

- the projections became ``Linear4bit`` and the memory footprint against the fp32 model;
- trainable parameters = r (d_in + d_out) summed over the adapted matrices and layers;
- the loss curve (the validation loss must fall);
- on a probe batch, the merged fp32 export against the peft adapter on the fp32 base
  (both reloaded from disk: they must agree to 1e-5), and the merged export against the
  in-memory 4-bit model: their difference is the NF4 quantization error, non-zero and
  small, with the same next-token argmax almost everywhere.

``--quantization none`` runs the same path without bitsandbytes (on a CPU in the tests);
then the merged export must also equal the in-memory model.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from pretrain_mfu import precision_for, token_stream
from report import check_parser, check_record, write_check

from redrobe.config import Model
from redrobe.lora import (
    ADAPTER_DIR,
    MERGED_DIR,
    apply_lora,
    load_model,
    lora_parameter_count,
    quantization_problem,
    save_lora,
    trainable_parameters,
)
from redrobe.model import build_model, llama_config, save_model
from redrobe.train import TrainConfig, train_on_array

TINY = Model(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
             max_seq_len=64)
VOCAB, R, ALPHA = 128, 8, 16
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
AGREE = 1e-5             # merged vs peft: the same fp32 sum, folded or not
NF4_ERROR_BOUND = 0.1    # merged fp32 vs in-memory NF4: quantization error, not a bug
MIN_ARGMAX_AGREEMENT = 0.95


def tiny_tokenizer(vocab: int = VOCAB) -> Any:
    """A word-level tokenizer whose ids are exactly t0 .. t<vocab-1> (no training)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t2")
    tokenizer = Tokenizer(words)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="t0", eos_token="t1",
                                   unk_token="t2")


def save_base(path: Path) -> None:
    save_model(build_model(llama_config(TINY, VOCAB, bos_id=0, eos_id=1, pad_id=None), seed=0), path)
    tiny_tokenizer().save_pretrained(path)


def probe_batch(vocab: int = VOCAB, seq: int = TINY.max_seq_len) -> torch.Tensor:
    return torch.from_numpy(token_stream(2 * seq, vocab, 7)).reshape(2, seq)


@torch.no_grad()
def logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    return model(input_ids=x.to(device)).logits.float().cpu()


def export_agreement(base: Path, output: Path, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """max |Δlogit| of the merged export against the adapter on the fp32 base, both as
    a user loads them from disk; and the merged export's logits."""
    from peft import PeftModel

    merged = logits(load_model(output / MERGED_DIR)[0], x)
    adapted = logits(PeftModel.from_pretrained(load_model(base)[0], output / ADAPTER_DIR), x)
    return float((merged - adapted).abs().max()), merged


def quantized_targets(model: torch.nn.Module) -> dict[str, int]:
    """How many adapted projections (q/k/v/o of every layer) are bitsandbytes ``Linear4bit``."""
    targets = [m for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in TARGETS]
    return {"targets": len(targets),
            "linear4bit": sum(type(m).__name__ == "Linear4bit" for m in targets)}


def criteria_for(f: dict[str, Any], quantization: str) -> dict[str, bool]:
    criteria = {"trainable_equals_formula": f["trainable_parameters"] == f["trainable_parameters_formula"],
                "losses_finite": all(math.isfinite(x) for x in f["losses"]),
                "val_loss_fell": f["final_val_loss"] < f["initial_val_loss"],
                f"merged_vs_peft_at_most_{AGREE}": f["merged_vs_peft_max_abs"] <= AGREE,
                f"argmax_agreement_at_least_{MIN_ARGMAX_AGREEMENT}":
                    f["argmax_agreement"] >= MIN_ARGMAX_AGREEMENT}
    if quantization == "4bit":
        criteria["targets_linear4bit"] = f["linear4bit"] == f["targets"] > 0
        criteria["footprint_below_fp32"] = f["footprint_bytes"] < f["fp32_footprint_bytes"]
        nf4_error = f["merged_vs_in_memory_max_abs"]
        criteria[f"nf4_error_in_(0,{NF4_ERROR_BOUND})"] = 0 < nf4_error < NF4_ERROR_BOUND
    else:
        criteria[f"merged_vs_in_memory_at_most_{AGREE}"] = f["merged_vs_in_memory_max_abs"] <= AGREE
    return criteria


def adapt(base: Path, output: Path, quantization: str, device: str, steps: int) -> dict[str, Any]:
    """Load, adapt, train, save; the figures of every step on the way."""
    model, tokenizer = load_model(base, quantization)
    fp32 = load_model(base)[0]   # the footprint's reference, and the QLoRA export's base
    figures: dict[str, Any] = {**quantized_targets(model), "footprint_bytes": model.get_memory_footprint(),
                               "fp32_footprint_bytes": fp32.get_memory_footprint()}
    torch.manual_seed(0)
    peft = apply_lora(model, r=R, alpha=ALPHA, dropout=0.05, target_modules=TARGETS)
    counts = trainable_parameters(peft)   # before save_lora, whose merge removes the adapters
    figures.update(trainable_parameters=counts["trainable"], total_parameters=counts["total"],
                   trainable_parameters_formula=lora_parameter_count(peft.config, R, TARGETS))
    precision = precision_for("auto", device)
    config = TrainConfig(steps=steps, lr=1e-2, min_lr=1e-3, warmup_steps=max(1, steps // 10),
                         weight_decay=0.0, precision=precision, device=device, seed=0)
    seq, batch = TINY.max_seq_len, 8
    result = train_on_array(peft, token_stream(steps * batch * seq + 1, VOCAB, 0),
                            token_stream(2 * batch * (seq + 1), VOCAB, 1), seq_len=seq,
                            batch_size=batch, eval_batches=2, config=config)
    x = probe_batch()
    in_memory = logits(peft, x)
    full_base = fp32 if quantization == "4bit" else None
    if full_base is None:
        peft.to("cpu")  # as the stage does: the plain merge happens on the CPU
    save_lora(peft, tokenizer, output, full_precision_base=full_base)
    merged_vs_peft, merged = export_agreement(base, output, x)
    return {**figures, "precision": precision, "steps": steps, "losses": [r.loss for r in result.records],
            "initial_val_loss": result.initial_val["overall"], "final_val_loss": result.final_val["overall"],
            "merged_vs_peft_max_abs": merged_vs_peft,
            "merged_vs_in_memory_max_abs": float((merged - in_memory).abs().max()),
            "argmax_agreement": float((merged.argmax(-1) == in_memory.argmax(-1)).float().mean())}


def main(argv: list[str] | None = None) -> int:
    parser = check_parser(__doc__.splitlines()[0])
    parser.add_argument("--quantization", default="4bit", choices=("4bit", "none"))
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args(argv)
    problem = quantization_problem(args.quantization, cuda_available=torch.cuda.is_available())
    if problem is not None:
        raise SystemExit(f"qlora_library: {problem}")
    with tempfile.TemporaryDirectory(prefix="qlora-") as tmp:
        save_base(Path(tmp) / "base")
        figures = adapt(Path(tmp) / "base", Path(tmp) / "lora", args.quantization, args.device, args.steps)
    ran = (f"redrobe.lora on a tiny LLaMA, quantization {args.quantization}, LoRA r={R} on "
           f"{'/'.join(t[0] for t in TARGETS)}, {args.steps} {figures['precision']} steps on {args.device}")
    criteria = criteria_for(figures, args.quantization)
    write_check(args.out, check_record("qlora_library", ran, figures, criteria))
    return 0


if __name__ == "__main__":
    sys.exit(main())
