"""A fused training forward for the pipeline's LLaMA: the same model, fewer and larger kernels.

``next_token_loss(model, windows)`` computes exactly what transformers'
``LlamaForCausalLM`` forward followed by a mean cross-entropy computes (the same
parameters, so checkpoints, exports and LoRA are unaffected), in fewer kernels and
far less memory:

- the lm_head and the cross-entropy are fused and chunked over rows
  (:func:`linear_cross_entropy`): the (tokens x vocabulary) logits never exist whole,
  nor do their log-softmax and gradient copies. Each chunk of at most ``CE_CHUNK_BYTES``
  logits is computed, turned into its loss and, when training, into its gradients on
  the spot. At a 32k vocabulary, two training steps of 8 x 256 tokens need 642 MB above
  the built model instead of 1180 MB, optimizer state included
  (``benchmarks/train_vs_trainer.py --memory``);
- one matmul for q, k and v and one for gate and up, on the concatenated weights (the
  concatenation copies the small weight matrices, not activations), and RoPE on q and k
  at once;
- ``torch.nn.functional.rms_norm`` instead of five elementwise ops per norm.

On the 2-core dev machine it is 1.03x faster than transformers' forward (best of 4
rounds, within the noise), once the allocator keeps freed memory
(:mod:`redrobe.train.host`): what it buys is memory.

    from redrobe.model import fused
    if fused.supports(model):               # a plain LlamaForCausalLM (see supports)
        loss = fused.next_token_loss(model, windows)   # windows: (B, T + 1) token ids
        loss.backward()

Sliding-window models run :func:`redrobe.model.variants.blockwise_window_attention`,
as their transformers forward does; FFN-shared layers simply reuse one MLP's weights.
Anything else (peft-wrapped or quantized projections, biases, another activation, a
DeepSpeed engine) is not supported, and the caller uses the transformers forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import LlamaForCausalLM
from transformers.integrations.sdpa_attention import repeat_kv
from transformers.models.llama.modeling_llama import rotate_half

from redrobe.model import variants

#: fp32 logits per cross-entropy chunk: small against a step's activations, large enough
#: that the chunk's matmul runs at full speed (smaller chunks measured slower)
CE_CHUNK_BYTES = 64 << 20
_ATTENTION = ("sdpa", "eager", variants.SLIDING_WINDOW)


def supports(model: torch.nn.Module) -> bool:
    """Whether :func:`next_token_loss` computes this model's forward exactly: a
    ``LlamaForCausalLM`` whose projections are plain bias-free ``nn.Linear`` layers
    (no LoRA, no quantization), SiLU gating and a known attention implementation."""
    if not isinstance(model, LlamaForCausalLM):
        return False
    config = model.config
    if (config.hidden_act != "silu" or getattr(config, "pretraining_tp", 1) != 1
            or config._attn_implementation not in _ATTENTION):
        return False
    linears = [model.lm_head]
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        linears += [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
                    mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    return all(type(m) is torch.nn.Linear and m.bias is None for m in linears)


def next_token_loss(model: LlamaForCausalLM, windows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting ``windows[:, 1:]`` from ``windows[:, :-1]``."""
    x, y = windows[:, :-1], windows[:, 1:]
    hidden = final_hidden(model, x)                                  # (B, T, d)
    return linear_cross_entropy(hidden.flatten(0, 1), model.lm_head.weight, y.flatten())


def final_hidden(model: LlamaForCausalLM, x: torch.Tensor) -> torch.Tensor:
    """The last norm's output for token ids ``x`` (B, T), as ``model.model`` computes it."""
    base = model.model
    h = base.embed_tokens(x)
    positions = torch.arange(x.shape[1], device=x.device)[None]
    cos, sin = base.rotary_emb(h, positions)
    recompute = model.training and activation_checkpointing(model)
    for layer in base.layers:
        if recompute:
            h = checkpoint(decoder_layer, layer, h, cos, sin, use_reentrant=False)
        else:
            h = decoder_layer(layer, h, cos, sin)
    return rms_norm(h, base.norm)


def activation_checkpointing(model: LlamaForCausalLM) -> bool:
    """Whether the model's gradient (activation) checkpointing is on (transformers 5
    renamed the flag; the old name warns)."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return bool(model.is_activation_checkpointing)
    return bool(getattr(model, "is_gradient_checkpointing", False))


def decoder_layer(layer: torch.nn.Module, h: torch.Tensor, cos: torch.Tensor,
                  sin: torch.Tensor) -> torch.Tensor:
    """One pre-norm block: h + attention(norm(h)), then + SwiGLU(norm(h))."""
    h = h + attention(layer.self_attn, rms_norm(h, layer.input_layernorm), cos, sin)
    mlp = layer.mlp
    gate_up = rms_norm(h, layer.post_attention_layernorm) @ torch.cat(
        [mlp.gate_proj.weight, mlp.up_proj.weight]).t()
    gate, up = gate_up.chunk(2, dim=-1)
    return h + mlp.down_proj(F.silu(gate) * up)


def attention(attn: torch.nn.Module, a: torch.Tensor, cos: torch.Tensor,
              sin: torch.Tensor) -> torch.Tensor:
    """Causal self-attention of normed input ``a`` (B, T, d) with one qkv matmul."""
    config, d = attn.config, attn.head_dim
    B, T, _ = a.shape
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    qkv = a @ torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]).t()
    qkv = qkv.view(B, T, heads + 2 * kv_heads, d).transpose(1, 2)    # (B, all heads, T, d)
    qk = qkv[:, :heads + kv_heads]
    qk = qk * cos[:, None] + rotate_half(qk) * sin[:, None]          # RoPE on q and k at once
    q, k = qk.split([heads, kv_heads], dim=1)
    v = qkv[:, heads + kv_heads:]
    dropout = attn.attention_dropout if attn.training else 0.0
    if config._attn_implementation == variants.SLIDING_WINDOW:
        groups = heads // kv_heads
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        out = variants.blockwise_window_attention(
            q, k, v, getattr(config, variants.CONFIG_WINDOW), scaling=attn.scaling,
            dropout=dropout)
    else:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True,
                                             scale=attn.scaling, enable_gqa=heads != kv_heads)
    return attn.o_proj(out.transpose(1, 2).reshape(B, T, heads * d))


def rms_norm(h: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    """``LlamaRMSNorm`` in one kernel (normalised in fp32, as transformers does)."""
    out = F.rms_norm(h.float(), (h.shape[-1],), eps=norm.variance_epsilon)
    return norm.weight * out.to(h.dtype)


def ce_chunk_rows(vocab: int) -> int:
    """Rows per cross-entropy chunk: ``CE_CHUNK_BYTES`` of fp32 logits."""
    return max(1, CE_CHUNK_BYTES // (4 * vocab))


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor,
                         targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` (N, V) against ``targets`` (N,), chunked.

    With gradients enabled the gradients are computed in the same pass (the loss is the
    last op of a training step, so the backward only has to scale them).
    """
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(h, weight, targets)
    rows, total = ce_chunk_rows(weight.shape[0]), h.new_zeros((), dtype=torch.float32)
    for s in range(0, len(targets), rows):
        log_probs = torch.log_softmax((h[s:s + rows] @ weight.t()).float(), dim=-1)
        total += log_probs.gather(1, targets[s:s + rows, None]).sum()
    return -total / len(targets)


class _LinearCrossEntropy(torch.autograd.Function):
    """Loss and (unscaled) gradients of mean cross-entropy over chunks of rows.

    Per chunk: p = softmax(h W^T); loss -= log p[target]; with g = p - onehot(target),
    dL/dh = g W and dL/dW = g^T h (before the 1/N of the mean and the incoming grad).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        n, rows = len(targets), ce_chunk_rows(weight.shape[0])
        grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device)
        need_w = ctx.needs_input_grad[1]
        grad_w = torch.zeros(weight.shape if need_w else (0,), dtype=torch.float32,
                             device=h.device)
        w32 = weight.float()
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for s in range(0, n, rows):
            hc, tc = h[s:s + rows], targets[s:s + rows]
            log_probs = torch.log_softmax((hc @ weight.t()).float(), dim=-1)
            total -= log_probs.gather(1, tc[:, None]).sum()
            g = log_probs.exp_()                                   # softmax, in place
            g[torch.arange(len(tc), device=g.device), tc] -= 1.0
            torch.mm(g, w32, out=grad_h[s:s + rows])
            if need_w:
                grad_w.addmm_(g.t(), hc.float())
        ctx.save_for_backward(grad_h, grad_w)
        ctx.n, ctx.dtypes = n, (h.dtype, weight.dtype)
        return total / n

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        scale = grad_loss / ctx.n
        grad_weight = (grad_w * scale).to(ctx.dtypes[1]) if grad_w.numel() else None
        return (grad_h * scale).to(ctx.dtypes[0]), grad_weight, None
