"""Perplexity / bits per byte against a hand computation, window layout, generation speed."""

import math

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from redrobe.config import Model
from redrobe.evaluate import deltas, eval_spans, evaluate_model, generation_speed, score_tokens
from redrobe.model import build_model, llama_config

WORDS = ["<s>", "</s>", "<unk>", "<pad>", "The", "cat", "sat", "on", "mat", "dog"]
VOCAB = len(WORDS)


def tiny(seq: int = 8):
    torch.set_num_threads(1)
    spec = Model(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64,
                 max_seq_len=seq)
    return build_model(llama_config(spec, VOCAB, bos_id=0, eos_id=1, pad_id=3), seed=9).eval()


def word_tokenizer():
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def decode_words(ids):
    return "".join(WORDS[i] for i in ids if i >= 4)  # special tokens decode to nothing


def test_spans_are_non_overlapping_and_capped():
    assert eval_spans(20, seq_len=8, max_tokens=100) == [(0, 8), (8, 8), (16, 3)]
    assert eval_spans(20, seq_len=8, max_tokens=10) == [(0, 8), (8, 2)]
    assert eval_spans(1, seq_len=8, max_tokens=10) == []


def test_perplexity_is_exp_of_mean_nll_computed_by_hand():
    model = tiny()
    array = np.array([1, 4, 5, 6, 7, 4, 8, 1, 4, 9, 6, 1, 5], dtype=np.uint16)
    score = score_tokens(model, array, seq_len=8, max_tokens=100, batch_size=2, decode=decode_words)
    nll = 0.0
    with torch.no_grad():
        for start, length in [(0, 8), (8, 4)]:  # the windows the spec describes
            ids = torch.tensor(array[start:start + length + 1].astype(np.int64))[None]
            logp = torch.log_softmax(model(input_ids=ids[:, :-1]).logits, -1)
            nll -= logp[0, torch.arange(length), ids[0, 1:]].sum().item()
    assert score.tokens == 12
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.perplexity == pytest.approx(math.exp(nll / 12), rel=1e-5)
    text = decode_words(array[1:13].tolist())
    assert score.bytes == len(text.encode())
    assert score.bits_per_byte == pytest.approx(nll / math.log(2) / len(text.encode()), rel=1e-5)


def test_max_tokens_caps_the_evaluated_tokens():
    array = np.arange(4, 10, dtype=np.uint16).repeat(10)
    score = score_tokens(tiny(), array, seq_len=8, max_tokens=20, batch_size=4, decode=decode_words)
    assert score.tokens == 20


def test_generation_produces_exactly_the_requested_tokens():
    out = generation_speed(tiny(), word_tokenizer(), "The cat", new_tokens=6)
    assert out["new_tokens"] == 6 and out["tokens_per_s"] > 0
    assert out["text"].startswith("The cat")


def test_evaluate_model_entry_and_deltas():
    model, tok = tiny(), word_tokenizer()
    val = {"a": np.array([1, 4, 5, 6, 7, 8, 1], dtype=np.uint16), "empty": np.zeros(0, np.uint16)}
    entry = evaluate_model(model, tok, val, seq_len=8, max_tokens=100, batch_size=2,
                           prompt="The", gen_tokens=3)
    assert set(entry["slices"]) == {"a"}
    assert set(entry["slices"]["a"]) == {"perplexity", "bits_per_byte", "tokens", "nll", "bytes"}
    assert entry["mean_bits_per_byte"] == entry["slices"]["a"]["bits_per_byte"]
    better = {"slices": {"a": {**entry["slices"]["a"], "bits_per_byte": 1.0}}}
    assert deltas(entry, better) == {"a": pytest.approx(1.0 - entry["mean_bits_per_byte"])}
