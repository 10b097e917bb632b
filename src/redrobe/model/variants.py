"""Architecture variants of the LLaMA model: FFN weight sharing and sliding-window attention.

Both are chosen in the ``model`` section of params.yaml and recorded in the model's
``config.json`` (fields ``redrobe_ffn_sharing``, ``redrobe_ffn_share_group``,
``redrobe_attention``, ``redrobe_window``), so a saved model says what it is:

    config = llama_config(params.model, vocab_size=..., ...)   # writes the fields above
    model = build_model(config, seed=0)                          # applies them
    save_model(model, "data/models/base")                        # plain-transformers loadable
    model = load_model("data/models/base")                       # variants restored

FFN sharing (``ffn_sharing: all | groups``): consecutive layers of a group use ONE
``LlamaMLP`` module (the same object, so the same parameters; gradients of every layer
in the group accumulate into it), which removes ``(layers - groups) x MLP parameters``
(:func:`ffn_saving`). In the spirit of ALBERT's cross-layer sharing (Lan et al. 2020,
§3.1), which shares whole layers; here only the FFN is shared.

Sliding-window attention (``attention: sliding_window``): token t attends to positions
t-window+1 .. t (causal, ``window`` keys including itself; the convention of
transformers' ``sliding_window_overlay`` and Mistral 7B, Jiang et al. 2023, §2). It is
a transformers attention implementation registered under :data:`SLIDING_WINDOW`
(``AttentionInterface`` + ``AttentionMaskInterface``), so the model stays a plain
``LlamaForCausalLM`` with unchanged weight shapes. Training (no padding, no cache) runs
a blockwise kernel that computes only query blocks of ``window`` rows against the
``2 window - 1`` keys they can see: O(T x window) attention work instead of O(T^2)
(:func:`attention_pairs`). With a padding mask or a KV cache (generation) it builds
the windowed 4-D mask and runs transformers' SDPA path: same result, dense cost.

What a plain ``LlamaForCausalLM.from_pretrained`` gives (the weights are the same
tensors either way): FFN-shared models load as *untied copies* (same outputs, but the
sharing and its parameter saving are gone; further training updates each copy on its
own); sliding-window models load with *full* attention (different outputs once a
sequence is longer than the window). :func:`load_model` restores both.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AttentionMaskInterface, LlamaForCausalLM
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import (
    and_masks,
    causal_mask_function,
    sdpa_mask,
    sliding_window_overlay,
)

from redrobe.errors import InputError

#: the attention implementation name registered with transformers
SLIDING_WINDOW = "redrobe_sliding_window"
#: config.json fields (absent fields mean the defaults: no sharing, full attention)
CONFIG_FFN_SHARING = "redrobe_ffn_sharing"
CONFIG_FFN_SHARE_GROUP = "redrobe_ffn_share_group"
CONFIG_ATTENTION = "redrobe_attention"
CONFIG_WINDOW = "redrobe_window"


# --- FFN sharing ----------------------------------------------------------------------

def ffn_groups(num_layers: int, sharing: str, group: int) -> list[list[int]]:
    """Layer indices that share one MLP: consecutive runs (the last may be shorter)."""
    size = {"none": 1, "all": num_layers, "groups": group}[sharing]
    return [list(range(s, min(s + size, num_layers))) for s in range(0, num_layers, size)]


def model_ffn_groups(config: Any) -> list[list[int]]:
    """The FFN groups a config.json asks for (one layer per group when it says nothing)."""
    return ffn_groups(config.num_hidden_layers, getattr(config, CONFIG_FFN_SHARING, "none"),
                      getattr(config, CONFIG_FFN_SHARE_GROUP, 1))


def mlp_parameters(config: Any) -> int:
    """Parameters of one LlamaMLP: gate and up (d -> f) and down (f -> d), plus biases."""
    d, f = config.hidden_size, config.intermediate_size
    return 3 * d * f + (2 * f + d if getattr(config, "mlp_bias", False) else 0)


def ffn_saving(config: Any) -> int:
    """Parameters removed by the config's FFN sharing: (layers - groups) x MLP."""
    return (config.num_hidden_layers - len(model_ffn_groups(config))) * mlp_parameters(config)


def share_ffn(model: LlamaForCausalLM, groups: list[list[int]]) -> None:
    """Make every layer of a group use its first layer's MLP module (in place)."""
    layers = model.model.layers
    for group in groups:
        for i in group[1:]:
            layers[i].mlp = layers[group[0]].mlp


def _check_copies_equal(model: LlamaForCausalLM, groups: list[list[int]], where: str) -> None:
    """Before re-tying loaded copies: they must be identical, or tying would drop weights."""
    layers = model.model.layers
    for group in groups:
        lead = layers[group[0]].mlp.state_dict()
        for i in group[1:]:
            for name, tensor in layers[i].mlp.state_dict().items():
                if not torch.equal(tensor, lead[name]):
                    raise InputError(
                        f"{where}: model.layers.{i}.mlp.{name} differs from model.layers."
                        f"{group[0]}.mlp.{name}, but {CONFIG_FFN_SHARING} says they are shared "
                        "(trained untied, e.g. a merged per-layer LoRA?); load it with "
                        "LlamaForCausalLM.from_pretrained to keep the copies apart")


# --- sliding-window attention ---------------------------------------------------------

def register_attention() -> None:
    """Register the sliding-window attention and mask functions with transformers.

    transformers looks implementations up by name in its global registries; this
    (idempotent) call must run before a model uses :data:`SLIDING_WINDOW`.
    """
    AttentionInterface.register(SLIDING_WINDOW, sliding_window_attention)
    AttentionMaskInterface.register(SLIDING_WINDOW, sliding_window_mask)


def sliding_window_mask(batch_size: int, q_length: int, kv_length: int, q_offset: int = 0,
                        kv_offset: int = 0, mask_function: Any = causal_mask_function,
                        attention_mask: torch.Tensor | None = None, config: Any = None,
                        device: torch.device | str = "cpu", **kwargs: Any) -> torch.Tensor | None:
    """transformers mask hook: None where the blockwise kernel applies the window itself
    (plain causal self-attention over the whole sequence), else a windowed 4-D bool mask."""
    if (attention_mask is None and mask_function is causal_mask_function and q_offset == 0
            and kv_offset == 0 and q_length == kv_length):
        return None
    window = getattr(config, CONFIG_WINDOW)
    return sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length,
                     q_offset=q_offset, kv_offset=kv_offset,
                     mask_function=and_masks(mask_function, sliding_window_overlay(window)),
                     attention_mask=attention_mask, allow_is_causal_skip=False, device=device,
                     use_vmap=kwargs.get("use_vmap", False))


def sliding_window_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                             value: torch.Tensor, attention_mask: torch.Tensor | None,
                             dropout: float = 0.0, scaling: float | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers attention hook. query (B, H, T, D), key/value (B, Hkv, S, D) ->
    output (B, T, H, D) as transformers expects."""
    if attention_mask is not None:  # the mask already holds the window (sliding_window_mask)
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      dropout=dropout, scaling=scaling, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)   # (B, H, T, D)
    out = blockwise_window_attention(query, key, value, getattr(module.config, CONFIG_WINDOW),
                                     scaling=scaling, dropout=dropout)
    return out.transpose(1, 2).contiguous(), None


def blockwise_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                               scaling: float | None = None, dropout: float = 0.0) -> torch.Tensor:
    """Causal attention over the last ``window`` positions, computed block by block.

    q, k, v: (B, H, T, D). Query rows s..s+window-1 can only see keys s-window+1 ..
    s+window-1, so each block is one SDPA call on at most 2 window - 1 keys.
    """
    T = q.shape[2]
    if T <= window:  # every key in reach: plain causal attention
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True,
                                              scale=scaling)
    positions = torch.arange(T, device=q.device)
    blocks = []
    for s in range(0, T, window):
        e, ks = min(s + window, T), max(0, s - window + 1)
        qp, kp = positions[s:e, None], positions[None, ks:e]
        allowed = (kp <= qp) & (kp > qp - window)                     # (e-s, e-ks)
        blocks.append(F.scaled_dot_product_attention(
            q[:, :, s:e], k[:, :, ks:e], v[:, :, ks:e], attn_mask=allowed, dropout_p=dropout,
            scale=scaling))                                           # (B, H, e-s, D)
    return torch.cat(blocks, dim=2)                                    # (B, H, T, D)


def attention_pairs(seq_len: int, window: int | None) -> dict[str, int]:
    """(query, key) score entries per head for one sequence.

    ``computed``: what the kernel multiplies (full: dense T x T, an upper bound, since a
    causal flash kernel may skip blocks above the diagonal, down to about T^2 / 2; sliding
    window: the blocks of :func:`blockwise_window_attention`); ``kept``: the entries the
    mask keeps, what an ideal kernel would compute. Attention FLOPs of one layer's forward pass
    = 4 x (heads x head_dim) x pairs (QK^T and AV, 2 FLOPs per multiply-add).
    """
    if window is None or window >= seq_len:
        return {"computed": seq_len * seq_len, "kept": seq_len * (seq_len + 1) // 2}
    computed = sum((min(s + window, seq_len) - s) * (min(s + window, seq_len) - max(0, s - window + 1))
                   for s in range(0, seq_len, window))
    kept = sum(min(t + 1, window) for t in range(seq_len))
    return {"computed": computed, "kept": kept}


# --- applying, saving, loading --------------------------------------------------------

def apply_variants(model: LlamaForCausalLM, loaded_from: str | None = None) -> LlamaForCausalLM:
    """Tie the shared FFNs and switch the attention as the model's config says (in place).

    A fresh model's group keeps its first layer's MLP (the others' initializations are
    dropped); a model ``loaded_from`` a directory must hold equal copies (InputError if not).
    """
    groups = model_ffn_groups(model.config)
    if any(len(g) > 1 for g in groups):
        if loaded_from is not None:
            _check_copies_equal(model, groups, loaded_from)
        share_ffn(model, groups)
    if getattr(model.config, CONFIG_ATTENTION, "full") == "sliding_window":
        register_attention()
        model.set_attn_implementation(SLIDING_WINDOW)
    return model


def save_model(model: LlamaForCausalLM, path: str | os.PathLike) -> None:
    """``save_pretrained`` with shared FFNs written as untied copies.

    transformers refuses to save tensors shared outside its own tied-weight keys (the
    input embedding / lm_head); copies keep the file loadable by any
    ``LlamaForCausalLM.from_pretrained``, and ``config.json`` still says which layers share.
    """
    shared = {f"model.layers.{i}.mlp." for g in model_ffn_groups(model.config) for i in g[1:]}
    state = {k: (v.clone() if any(k.startswith(p) for p in shared) else v)
             for k, v in model.state_dict().items()}
    model.save_pretrained(path, state_dict=state)


def load_model(path: str | os.PathLike, **kwargs: Any) -> LlamaForCausalLM:
    """Load a saved model with its variants (shared FFNs re-tied, sliding-window attention).

    ``kwargs`` go to ``from_pretrained`` (default ``dtype=torch.float32``). InputError if
    the directory is unreadable or its shared-FFN copies differ.
    """
    kwargs.setdefault("dtype", torch.float32)
    try:
        model = LlamaForCausalLM.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from exc
    return apply_variants(model, loaded_from=str(path))
