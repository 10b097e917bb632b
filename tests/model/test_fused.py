"""The fused training forward equals transformers' forward: loss and every gradient, for
the default model, GQA, tied embeddings, shared FFNs, sliding-window attention and
gradient checkpointing; chunked cross-entropy equals F.cross_entropy; models it does
not cover (LoRA, biases) are refused so the loop falls back to transformers."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch.utils.checkpoint import checkpoint
from transformers import LlamaForCausalLM

from redrobe.config import Model
from redrobe.model import build_model, fused, llama_config
from redrobe.train.loop import enable_gradient_checkpointing

TINY = Model(hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=4, intermediate_size=48,
             max_seq_len=64)
VOCAB = 97


def tiny(**changes) -> LlamaForCausalLM:
    config = llama_config(dataclasses.replace(TINY, **changes), VOCAB, bos_id=0, eos_id=1,
                          pad_id=3)
    return build_model(config, seed=0)


def transformers_loss(model: LlamaForCausalLM, windows: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=windows[:, :-1], use_cache=False).logits
    return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())


def loss_and_grads(loss_fn, model, windows):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model, windows)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("changes", [
    {},
    {"num_kv_heads": 2},
    {"tie_embeddings": True},
    {"ffn_sharing": "all"},
    {"attention": "sliding_window", "window": 8},
], ids=["default", "gqa", "tied", "ffn-shared", "sliding-window"])
def test_fused_equals_transformers(changes):
    model = tiny(**changes).train()
    assert fused.supports(model)
    windows = torch.randint(0, VOCAB, (3, 41), generator=torch.Generator().manual_seed(1))
    want_loss, want = loss_and_grads(transformers_loss, model, windows)
    got_loss, got = loss_and_grads(fused.next_token_loss, model, windows)
    assert got_loss == pytest.approx(want_loss, rel=1e-5)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_gradient_checkpointing_recomputes_the_same_gradients(monkeypatch):
    model = tiny().train()
    windows = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(2))
    _, want = loss_and_grads(fused.next_token_loss, model, windows)
    enable_gradient_checkpointing(model)
    calls = []
    monkeypatch.setattr(fused, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    _, got = loss_and_grads(fused.next_token_loss, model, windows)
    assert len(calls) == TINY.num_layers
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)


def test_eval_loss_without_gradients_matches():
    model = tiny().eval()
    windows = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert fused.next_token_loss(model, windows).item() == pytest.approx(
            transformers_loss(model, windows).item(), rel=1e-5)


def test_linear_cross_entropy_spans_several_chunks(monkeypatch):
    monkeypatch.setattr(fused, "CE_CHUNK_BYTES", 4 * VOCAB * 5)   # 5 rows per chunk
    assert fused.ce_chunk_rows(VOCAB) == 5
    gen = torch.Generator().manual_seed(4)
    h = torch.randn(23, 16, generator=gen, requires_grad=True)
    w = torch.randn(VOCAB, 16, generator=gen, requires_grad=True)
    y = torch.randint(0, VOCAB, (23,), generator=gen)
    (3.0 * fused.linear_cross_entropy(h, w, y)).backward()
    got = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    (3.0 * F.cross_entropy(h @ w.t(), y)).backward()
    torch.testing.assert_close(got[0], h.grad)
    torch.testing.assert_close(got[1], w.grad)
    with torch.no_grad():
        assert fused.linear_cross_entropy(h, w, y).item() == pytest.approx(
            F.cross_entropy(h @ w.t(), y).item(), rel=1e-6)


def test_frozen_head_gets_no_gradient():
    h = torch.randn(6, 8, requires_grad=True)
    w = torch.randn(11, 8)
    fused.linear_cross_entropy(h, w, torch.arange(6)).backward()
    assert h.grad is not None and w.grad is None


def test_models_it_does_not_cover_are_refused():
    lora = get_peft_model(tiny(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert not fused.supports(lora)
    assert not fused.supports(lora.base_model.model)   # injected LoRA layers are not plain Linear
    biased = LlamaForCausalLM(dataclasses.replace(tiny().config, attention_bias=True))
    assert not fused.supports(biased)
    assert not fused.supports(torch.nn.Linear(2, 2))
