"""Architecture variants: shared FFNs (literally shared, gradients, parameter formula,
save/load) and sliding-window attention (window, causality, equals full attention when
the window covers the sequence, save/load, blockwise kernel == dense windowed mask)."""

import dataclasses
import json

import pytest
import torch
from transformers import LlamaForCausalLM

from redrobe.config import Model
from redrobe.errors import InputError
from redrobe.model import (
    build_model,
    llama_config,
    load_model,
    parameter_counts,
    save_model,
    variants,
)

TINY = Model(hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=48,
             max_seq_len=32)
VOCAB = 97


def tiny(seed: int = 0, **changes) -> LlamaForCausalLM:
    model = dataclasses.replace(TINY, **changes)
    return build_model(llama_config(model, VOCAB, bos_id=0, eos_id=1, pad_id=3), seed=seed).eval()


def logits(model: LlamaForCausalLM, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=x).logits


# --- FFN sharing ----------------------------------------------------------------------

def test_ffn_groups():
    assert variants.ffn_groups(4, "none", 2) == [[0], [1], [2], [3]]
    assert variants.ffn_groups(4, "all", 2) == [[0, 1, 2, 3]]
    assert variants.ffn_groups(5, "groups", 2) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("sharing,group,groups", [("all", 2, 1), ("groups", 2, 2), ("groups", 3, 2)])
def test_shared_ffn_is_one_module_and_parameter_count_drops_by_formula(sharing, group, groups):
    base, shared = tiny(), tiny(ffn_sharing=sharing, ffn_share_group=group)
    layers = shared.model.layers
    for g in variants.ffn_groups(4, sharing, group):
        for i in g[1:]:
            assert layers[i].mlp is layers[g[0]].mlp
            assert layers[i].mlp.up_proj.weight.data_ptr() == layers[g[0]].mlp.up_proj.weight.data_ptr()
    mlp = 3 * 32 * 48
    saving = (4 - groups) * mlp
    assert variants.ffn_saving(shared.config) == saving
    assert parameter_counts(base)["total"] - parameter_counts(shared)["total"] == saving
    assert parameter_counts(base)["total"] - sum(p.numel() for p in shared.parameters()) == saving


def test_gradients_of_all_sharing_layers_accumulate_into_the_shared_weights():
    model = tiny(ffn_sharing="all").train()
    x = torch.randint(0, VOCAB, (2, 12))
    model(input_ids=x, labels=x).loss.backward()
    shared_grad = model.model.layers[0].mlp.down_proj.weight.grad.clone()
    # The same loss through per-layer copies: the shared gradient is the sum of theirs.
    untied = tiny(ffn_sharing="all").train()
    for layer in untied.model.layers[1:]:
        layer.mlp = type(layer.mlp)(untied.config)
        layer.mlp.load_state_dict(untied.model.layers[0].mlp.state_dict())
    untied(input_ids=x, labels=x).loss.backward()
    per_layer = [layer.mlp.down_proj.weight.grad for layer in untied.model.layers]
    assert all(g.abs().sum() > 0 for g in per_layer)
    assert torch.allclose(shared_grad, torch.stack(per_layer).sum(0), atol=1e-6)


def test_default_model_is_unchanged_by_the_variant_fields():
    model = tiny()
    assert len({id(layer.mlp) for layer in model.model.layers}) == 4
    assert model.config._attn_implementation != variants.SLIDING_WINDOW


def test_shared_ffn_save_loads_untied_in_transformers_and_retied_in_redrobe(tmp_path):
    model = tiny(ffn_sharing="groups", ffn_share_group=2)
    x = torch.randint(0, VOCAB, (2, 16))
    save_model(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())[variants.CONFIG_FFN_SHARING] == "groups"
    plain = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert plain.model.layers[1].mlp is not plain.model.layers[0].mlp  # copies: sharing lost
    assert torch.allclose(logits(plain, x), logits(model, x), atol=1e-6)
    ours = load_model(tmp_path).eval()
    assert ours.model.layers[1].mlp is ours.model.layers[0].mlp
    assert ours.model.layers[2].mlp is not ours.model.layers[0].mlp
    assert parameter_counts(ours) == parameter_counts(model)
    assert torch.equal(logits(ours, x), logits(model, x))


def test_load_model_refuses_to_retie_copies_that_differ(tmp_path):
    save_model(tiny(ffn_sharing="all"), tmp_path)
    plain = LlamaForCausalLM.from_pretrained(tmp_path)
    with torch.no_grad():
        plain.model.layers[2].mlp.up_proj.weight.add_(1.0)
    plain.save_pretrained(tmp_path)  # untied copies: transformers saves them as they are
    with pytest.raises(InputError, match="layers.2.mlp.up_proj.weight differs"):
        load_model(tmp_path)


def test_load_model_reports_a_missing_directory(tmp_path):
    with pytest.raises(InputError, match="cannot load the model"):
        load_model(tmp_path / "missing")


# --- sliding-window attention ---------------------------------------------------------

@pytest.mark.parametrize("t", [5, 11, 23])
def test_output_ignores_tokens_older_than_the_window(t):
    window = 4
    model = tiny(attention="sliding_window", window=window, num_layers=1)
    x = torch.randint(0, VOCAB, (1, 24))
    y = x.clone()
    y[0, : t - window + 1] = (x[0, : t - window + 1] + 1) % VOCAB  # everything out of reach
    a, b = logits(model, x), logits(model, y)
    assert torch.allclose(a[0, t], b[0, t], atol=1e-5)
    z = x.clone()
    z[0, t - window + 1] = (x[0, t - window + 1] + 1) % VOCAB       # the oldest token in reach
    assert not torch.allclose(a[0, t], logits(model, z)[0, t], atol=1e-5)


def test_stacked_layers_widen_the_receptive_field():
    """Two windowed layers see 2 (window - 1) tokens back: what Mistral's paper describes."""
    model = tiny(attention="sliding_window", window=4, num_layers=2)
    x = torch.randint(0, VOCAB, (1, 20))
    y = x.clone()
    y[0, 19 - 6] = (x[0, 13] + 1) % VOCAB
    assert not torch.allclose(logits(model, x)[0, 19], logits(model, y)[0, 19], atol=1e-5)


def test_sliding_window_equals_full_attention_when_the_window_covers_the_sequence():
    full, windowed = tiny(seed=3), tiny(seed=3, attention="sliding_window", window=16)
    assert windowed.config._attn_implementation == variants.SLIDING_WINDOW
    x = torch.randint(0, VOCAB, (2, 16))
    assert torch.allclose(logits(full, x), logits(windowed, x), atol=1e-5)


def test_sliding_window_keeps_the_causal_mask():
    model = tiny(attention="sliding_window", window=5)
    x = torch.randint(0, VOCAB, (1, 20))
    y = x.clone()
    y[0, 13] = (x[0, 13] + 1) % VOCAB
    a, b = logits(model, x), logits(model, y)
    assert torch.allclose(a[:, :13], b[:, :13], atol=1e-6)
    assert not torch.allclose(a[:, 13], b[:, 13])


@pytest.mark.parametrize("window,T", [(3, 10), (4, 16), (5, 5), (7, 3)])
def test_blockwise_kernel_equals_dense_windowed_attention(window, T):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, T, 8) for _ in range(3))
    pos = torch.arange(T)
    mask = (pos[None, :] <= pos[:, None]) & (pos[None, :] > pos[:, None] - window)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(variants.blockwise_window_attention(q, k, v, window), dense, atol=1e-6)


def test_padding_mask_path_uses_the_windowed_mask():
    """With an attention_mask (the SDPA fallback path) the result equals the blockwise path."""
    model = tiny(attention="sliding_window", window=4)
    x = torch.randint(0, VOCAB, (2, 18))
    with torch.no_grad():
        masked = model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        # a left-padded row: the padding must not change the real tokens' logits
        padded = torch.cat([torch.full((2, 3), 3), x], dim=1)
        mask = torch.cat([torch.zeros(2, 3, dtype=torch.long), torch.ones_like(x)], dim=1)
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        shifted = model(input_ids=padded, attention_mask=mask, position_ids=position_ids).logits
    assert torch.allclose(masked, logits(model, x), atol=1e-5)
    assert torch.allclose(shifted[:, 3:], masked, atol=1e-4)


def test_decoding_with_a_kv_cache_keeps_the_window():
    """Cached decoding (the windowed-mask path) gives the uncached (blockwise) logits."""
    model = tiny(attention="sliding_window", window=4)
    x = torch.randint(4, VOCAB, (1, 14))
    with torch.no_grad():
        full = model(input_ids=x).logits
        out = model(input_ids=x[:, :9], use_cache=True)
        cache, steps = out.cache, []
        for t in range(9, 14):
            out = model(input_ids=x[:, t: t + 1], cache=cache, use_cache=True)
            cache = out.cache
            steps.append(out.logits[:, -1])
        generated = model.generate(x[:, :6], max_new_tokens=6, min_new_tokens=6, do_sample=False)
        again = model(input_ids=generated).logits
    assert torch.allclose(torch.stack(steps, 1), full[:, 9:], atol=1e-5)
    assert torch.equal(again[0, 5:-1].argmax(-1), generated[0, 6:])


def test_sliding_window_save_loads_full_in_transformers_and_windowed_in_redrobe(tmp_path):
    model = tiny(attention="sliding_window", window=4)
    save_model(model, tmp_path)
    x = torch.randint(0, VOCAB, (1, 20))
    plain = LlamaForCausalLM.from_pretrained(tmp_path).eval()
    assert plain.config._attn_implementation != variants.SLIDING_WINDOW
    full = tiny()  # same seed, same weights, full attention
    assert torch.allclose(logits(plain, x), logits(full, x), atol=1e-5)
    assert not torch.allclose(logits(plain, x), logits(model, x), atol=1e-3)
    ours = load_model(tmp_path).eval()
    assert torch.allclose(logits(ours, x), logits(model, x), atol=1e-6)


def test_attention_pairs():
    assert variants.attention_pairs(8, None) == {"computed": 64, "kept": 36}
    assert variants.attention_pairs(8, 8) == variants.attention_pairs(8, None)
    # window 2 over 8 tokens: 4 blocks, the first 2x2, then 2x3 each; kept 1 + 7 x 2
    assert variants.attention_pairs(8, 2) == {"computed": 4 + 3 * 6, "kept": 15}
