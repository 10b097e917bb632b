"""LLaMA model built from params: config, shapes, causal mask, parameter counts, seeding."""

import dataclasses

import torch

from redrobe.config import Model
from redrobe.model import build_model, llama_config, parameter_counts

TINY = Model(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=48,
             max_seq_len=16)
VOCAB = 97


def tiny(model: Model = TINY, seed: int = 0):
    return build_model(llama_config(model, VOCAB, bos_id=0, eos_id=1, pad_id=3), seed=seed)


def test_config_carries_params_and_tokenizer_ids():
    config = llama_config(TINY, VOCAB, bos_id=0, eos_id=1, pad_id=3)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (VOCAB, 32, 2)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert (config.intermediate_size, config.max_position_embeddings) == (48, 16)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (0, 1, 3)
    assert config.tie_word_embeddings is False


def test_logits_shape():
    model = tiny().eval()
    x = torch.randint(0, VOCAB, (3, 16))
    assert model(input_ids=x).logits.shape == (3, 16, VOCAB)


def test_causal_mask_future_tokens_do_not_change_past_logits():
    model = tiny().eval()
    x = torch.randint(0, VOCAB, (1, 12))
    t = 6
    y = x.clone()
    y[0, t + 1] = (x[0, t + 1] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-6)
    assert not torch.allclose(a[:, t + 1], b[:, t + 1])  # the changed position itself does


def test_parameter_counts_by_hand():
    d, f, L, kv_dim = 32, 48, 2, 32 // 4 * 2
    per_layer = d * d * 2 + d * kv_dim * 2 + 3 * d * f + 2 * d  # q,o + k,v + mlp + 2 norms
    counts = parameter_counts(tiny())
    assert counts["embedding"] == counts["lm_head"] == VOCAB * d
    assert counts["non_embedding"] == L * per_layer + d  # + final norm
    assert counts["total"] == counts["non_embedding"] + 2 * VOCAB * d


def test_tied_embeddings_are_counted_once():
    counts = parameter_counts(tiny(dataclasses.replace(TINY, tie_embeddings=True)))
    assert counts["lm_head"] == 0
    assert counts["total"] == counts["non_embedding"] + VOCAB * 32


def test_same_seed_same_weights_other_seed_different():
    a, b, c = tiny(seed=5), tiny(seed=5), tiny(seed=6)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
