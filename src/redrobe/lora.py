"""LoRA adaptation of the base model on one slice (Hu et al. 2021), with peft.

The adaptation task is continued language modelling on the training split of one
slice (``params.lora.slice``). Its documents are streamed, tokenized with the base
model's tokenizer and packed (each followed by eos) into a token buffer just big
enough for the planned steps, so memory does not grow with the slice. Training uses
the pretraining loop unchanged (:func:`redrobe.train.train_on_array`); only the
adapter parameters require gradients, so only they are updated:

    model = apply_lora(base, r=8, alpha=16, dropout=0.05, target_modules=["q_proj", "v_proj"])
    buffers = token_buffers(docs, tokenizer, eos_id, is_val, train_tokens=..., val_tokens=...)
    result = train_on_array(model, buffers.train, buffers.val, seq_len=256, batch_size=8,
                            eval_batches=4, config=config)
    save_lora(model, tokenizer, "data/models/lora")  # adapter/ (peft) + merged/ (plain HF)

``<output>/adapter`` loads with ``PeftModel.from_pretrained(base, <output>/adapter)``;
``<output>/merged`` (``merge_and_unload``: W + BA/r*alpha folded into W) loads with
``AutoModelForCausalLM`` and ``AutoTokenizer`` like the base model.

QLoRA (Dettmers et al. 2023) freezes the base in 4-bit NF4 with bf16 compute; it needs
bitsandbytes (``pip install redrobe[gpu]``) and a CUDA GPU:

    problem = quantization_problem("4bit", cuda_available=torch.cuda.is_available())
    model, tokenizer = load_model("data/models/base", quantization="4bit")  # + kbit prep
    model = apply_lora(model, ...)
    save_lora(model, tokenizer, out, full_precision_base=load_model(base)[0])

The adapter is trained against the quantized base, but the merged export folds it into
the full-precision base weights, so ``merged/`` stays a plain fp32 checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from redrobe.documents import Document
from redrobe.errors import InputError
from redrobe.model import variants

ADAPTER_DIR = "adapter"   # <output>/adapter: peft adapter weights and config only
MERGED_DIR = "merged"     # <output>/merged: base + adapter folded in, with the tokenizer
TASK_FILE = "task.json"   # <output>/task.json: which slice the adapter was trained on

NO_CUDA_FOR_4BIT = ("lora.quantization=4bit needs a CUDA GPU (bitsandbytes); "
                    "this machine has none")
NO_BITSANDBYTES = ("lora.quantization=4bit needs bitsandbytes, which is not installed "
                   "(pip install 'redrobe[gpu]')")


def projection_shapes(config: Any) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each linear projection of a LLaMA decoder layer (the matrices
    LoRA can adapt; a rank r is only a low rank while r <= min(d_in, d_out))."""
    d, ffn = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    return {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
            "gate_proj": (d, ffn), "up_proj": (d, ffn), "down_proj": (ffn, d)}


def lora_parameter_count(config: Any, r: int, target_modules: Sequence[str]) -> int:
    """Trainable parameters LoRA adds to a LLaMA: sum of r * (d_in + d_out) x layers.

    Computed from the model config alone, so it checks the count peft actually made.
    """
    shapes = projection_shapes(config)
    unknown = sorted(set(target_modules) - set(shapes))
    if unknown:
        raise ValueError(f"no LLaMA projection named {unknown}; known: {sorted(shapes)}")
    per_layer = sum(r * (shapes[m][0] + shapes[m][1]) for m in target_modules)
    return per_layer * config.num_hidden_layers


def quantization_problem(quantization: str, *, cuda_available: bool) -> str | None:
    """Why ``quantization`` cannot run here, or None when it can."""
    if quantization == "none":
        return None
    if not cuda_available:
        return NO_CUDA_FOR_4BIT
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return NO_BITSANDBYTES
    return None


def nf4_config() -> Any:
    """QLoRA's quantization: 4-bit NormalFloat weights, bf16 compute (QLoRA §3)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_compute_dtype=torch.bfloat16)


def load_model(path: str | os.PathLike,
               quantization: str = "none") -> tuple[torch.nn.Module, Any]:
    """A saved causal LM and its tokenizer (a pretrain output or a merged LoRA model).

    ``quantization="4bit"`` loads the weights as NF4 on the first CUDA device and
    prepares them for k-bit training (frozen base, fp32 norms and embeddings).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if quantization == "4bit":
        kwargs = {"dtype": torch.bfloat16, "quantization_config": nf4_config(),
                  "device_map": {"": 0}}
    try:
        # redrobe's loader re-applies the architecture variants (shared FFNs, sliding
        # window) that a plain from_pretrained would drop; 4-bit goes through transformers
        model = (AutoModelForCausalLM.from_pretrained(str(path), **kwargs) if quantization == "4bit"
                 else variants.load_model(path, **kwargs))
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load the model and tokenizer ({exc})") from exc
    if quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        # no gradient checkpointing: the loop decides that, not the loader
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, tokenizer


def apply_lora(model: torch.nn.Module, *, r: int, alpha: int, dropout: float,
               target_modules: Sequence[str]) -> PeftModel:
    """Wrap ``model`` with LoRA adapters; only the adapters are trainable.

    peft initializes B = 0, so the wrapped model starts exactly at the base model.
    """
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=list(target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def trainable_parameters(model: torch.nn.Module) -> dict[str, Any]:
    """Trainable and total parameter counts and the trainable fraction.

    For LoRA each adapted d_out x d_in matrix adds r * (d_in + d_out) trainable
    parameters (LoRA paper §4.1; docs/references.md, "Paper tables").
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "fraction": trainable / total}


@dataclass(frozen=True)
class TokenBuffers:
    """Packed token ids of the slice's training and validation documents."""

    train: np.ndarray
    val: np.ndarray
    train_docs: int
    val_docs: int


class _Packer:
    """Appends documents' tokens (each + eos) until ``cap`` tokens are held."""

    def __init__(self, cap: int) -> None:
        self.cap, self.size, self.docs = cap, 0, 0
        self.parts: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.size >= self.cap

    def add(self, ids: list[int], eos_id: int) -> None:
        part = np.asarray([*ids, eos_id], dtype=np.int64)[: self.cap - self.size]
        self.parts.append(part)
        self.size += len(part)
        self.docs += 1

    def array(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int64)


def token_buffers(docs: Iterable[Document], tokenizer: Any, eos_id: int,
                  is_val: Callable[[Document], bool], *, train_tokens: int,
                  val_tokens: int) -> TokenBuffers:
    """Stream ``docs`` once, packing training and validation documents (``is_val``)
    separately.

    Reading stops as soon as both buffers are full, so at most ``train_tokens`` +
    ``val_tokens`` ids are held whatever the size of the slice.
    """
    packers = {False: _Packer(train_tokens), True: _Packer(val_tokens)}
    for doc in docs:
        packer = packers[is_val(doc)]
        if not packer.full:
            packer.add(tokenizer(doc.text, add_special_tokens=False)["input_ids"], eos_id)
        if all(p.full for p in packers.values()):
            break
    return TokenBuffers(train=packers[False].array(), val=packers[True].array(),
                        train_docs=packers[False].docs, val_docs=packers[True].docs)


def save_lora(model: PeftModel, tokenizer: Any, output: str | os.PathLike, *,
              full_precision_base: torch.nn.Module | None = None) -> torch.nn.Module:
    """Save the adapter alone, then merge it into the base weights and save the result.

    Returns the merged model. ``model`` is consumed: merging rewrites its base weights.
    With ``full_precision_base`` (QLoRA) the saved adapter is merged into that model
    instead, so the export is not a re-quantized 4-bit checkpoint.
    """
    output = Path(output)
    for config in model.peft_config.values():
        # peft keeps target_modules as a set, whose order follows the string hash seed:
        # a sorted list makes adapter_config.json byte-identical across runs.
        config.target_modules = sorted(config.target_modules)
    model.save_pretrained(output / ADAPTER_DIR)
    if full_precision_base is not None:
        model = PeftModel.from_pretrained(full_precision_base, output / ADAPTER_DIR)
    merged = model.merge_and_unload()
    variants.save_model(merged, output / MERGED_DIR)   # shared FFNs as copies (loadable anywhere)
    tokenizer.save_pretrained(output / MERGED_DIR)
    return merged
