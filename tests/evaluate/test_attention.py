"""Attention maps: probabilities (rows sum to 1), causal, one PNG per head + mean, deterministic."""

import numpy as np
import pytest
import torch

from redrobe.config import Model
from redrobe.evaluate.attention import attention_maps, attention_weights, token_label
from redrobe.model import build_model, llama_config

HEADS, LAYERS = 4, 2


class CharTokenizer:
    """One id per character (ids 4..), enough for labels and forward passes."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [4 + ord(c) - ord("a") if c.isalpha() else 3 for c in text]}

    def decode(self, ids):
        return "".join(chr(ord("a") + i - 4) if i >= 4 else " " for i in ids)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    cfg = Model(hidden_size=32, num_layers=LAYERS, num_heads=HEADS, num_kv_heads=2,
                intermediate_size=64, max_seq_len=32)
    return build_model(llama_config(cfg, 40, bos_id=0, eos_id=1, pad_id=2), seed=3)


PROMPT = "the cat sat"


def test_weights_are_causal_probabilities(model):
    labels, w = attention_weights(model, CharTokenizer(), PROMPT, layer=1)
    t = len(PROMPT)
    assert w.shape == (HEADS, t, t) and labels[:3] == ["t", "h", "e"] and labels[3] == "·"
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(w[:, np.triu_indices(t, k=1)[0], np.triu_indices(t, k=1)[1]] == 0.0)
    assert np.all(w[:, 0, 0] == pytest.approx(1.0))         # the first token sees only itself
    assert not np.allclose(w[0], w[1])                       # heads differ


def test_layers_differ_and_negative_layer_counts_from_the_end(model):
    _, last = attention_weights(model, CharTokenizer(), PROMPT, layer=-1)
    _, one = attention_weights(model, CharTokenizer(), PROMPT, layer=1)
    _, zero = attention_weights(model, CharTokenizer(), PROMPT, layer=0)
    np.testing.assert_array_equal(last, one)
    assert not np.allclose(zero, one)


def test_model_attention_implementation_is_restored(model):
    before = model.config._attn_implementation
    model.train()
    attention_weights(model, CharTokenizer(), PROMPT, layer=0)
    assert model.config._attn_implementation == before and model.training
    model.eval()


def test_pngs_per_head_and_mean_byte_identical_on_rerun(model, tmp_path):
    a = attention_maps(model, CharTokenizer(), PROMPT, 1, tmp_path / "a", heads=[2, 0])
    b = attention_maps(model, CharTokenizer(), PROMPT, 1, tmp_path / "b", heads=[2, 0])
    assert [p.name for p in a] == ["layer1_head2.png", "layer1_head0.png", "layer1_mean.png"]
    for x, y in zip(a, b):
        data = x.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == y.read_bytes()
        assert b"Software" not in data and b"matplotlib" not in data
    assert a[0].read_bytes() != a[1].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in a)


def test_all_heads_by_default_and_negative_layer_named_by_index(model, tmp_path):
    paths = attention_maps(model, CharTokenizer(), PROMPT, -2, tmp_path)
    heads = [f"layer0_head{h}.png" for h in range(HEADS)]
    assert [p.name for p in paths] == [*heads, "layer0_mean.png"]


@pytest.mark.parametrize("kwargs,match", [
    ({"layer": 2}, "layer 2 out of range"),
    ({"layer": 0, "heads": [4]}, r"heads \[4\] out of range")])
def test_bad_layer_or_head_is_named(model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_maps(model, CharTokenizer(), PROMPT, out_dir=tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_labels_show_spaces_and_escape_dollar():
    class T:
        def decode(self, ids):
            return {0: " a", 1: "$x", 2: "\n"}[ids[0]]
    assert [token_label(T(), i) for i in range(3)] == ["·a", r"\$x", "\\n"]


def test_attention_params_validate():
    from redrobe.config import EvaluateAttention

    assert EvaluateAttention().validate() == []
    assert EvaluateAttention(heads=[-1]).validate() and EvaluateAttention(prompt=" ").validate()
