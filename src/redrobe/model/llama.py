"""Build the LLaMA model of the pipeline from params (``transformers.LlamaForCausalLM``).

The shape comes from the ``model`` section of params.yaml; the vocabulary size and the
special-token ids come from the trained tokenizer, so the saved model and tokenizer
agree and ``AutoModelForCausalLM`` / ``AutoTokenizer`` load them together:

    config = llama_config(params.model, vocab_size=len(tok), bos_id=tok.bos_token_id,
                          eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    model = build_model(config, seed=params.shared.seed)
    parameter_counts(model)  # {"total": ..., "embedding": ..., "non_embedding": ...}

The ``model`` section's architecture variants (FFN sharing, sliding-window attention)
are stored in the config and applied by ``build_model``: see :mod:`redrobe.model.variants`
(``save_model`` / ``load_model`` for saving and reloading them).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from redrobe.config import Model
from redrobe.model import variants


def llama_config(model: Model, vocab_size: int, bos_id: int | None, eos_id: int | None,
                 pad_id: int | None) -> LlamaConfig:
    """The HF config for ``model`` with the tokenizer's vocabulary and special ids."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=model.hidden_size,
        intermediate_size=model.intermediate_size,
        num_hidden_layers=model.num_layers,
        num_attention_heads=model.num_heads,
        num_key_value_heads=model.num_kv_heads,
        max_position_embeddings=model.max_seq_len,
        rope_theta=model.rope_theta,
        tie_word_embeddings=model.tie_embeddings,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        # No dropout: single-epoch pretraining on fresh tokens does not overfit
        # (LLaMA, Touvron et al. 2023, trains without it).
        attention_dropout=0.0,
        # Architecture variants, kept in config.json for load_model (redrobe.model.variants).
        **{variants.CONFIG_FFN_SHARING: model.ffn_sharing,
           variants.CONFIG_FFN_SHARE_GROUP: model.ffn_share_group,
           variants.CONFIG_ATTENTION: model.attention,
           variants.CONFIG_WINDOW: model.window},
    )


def build_model(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    """A freshly initialized model with the config's variants applied; the same seed
    gives the same weights (shared FFNs keep their group's first layer's initialization)."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return variants.apply_variants(model.float())


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Total, embedding and non-embedding parameter counts (each tensor counted once).

    ``non_embedding`` follows Kaplan et al. 2020 (§2.1): all vocabulary matrices
    (the input embedding and an untied output head) are excluded. ``lm_head`` is
    reported on its own (0 when tied) because it still costs matmul FLOPs, so an
    MFU estimate may add it back.
    """
    seen: set[int] = set()
    total = embedding = lm_head = 0
    input_embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    head: Any = output.weight if output is not None else None
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p is input_embedding:
            embedding += p.numel()
        elif p is head:
            lm_head += p.numel()
    return {"total": total, "embedding": embedding, "lm_head": lm_head,
            "non_embedding": total - embedding - lm_head}
