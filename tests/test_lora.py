"""LoRA invariants: trainable share, base weights untouched, merged == unmerged, buffers."""

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from redrobe.config import Model
from redrobe.documents import Document
from redrobe.lora import (
    ADAPTER_DIR,
    MERGED_DIR,
    NO_BITSANDBYTES,
    NO_CUDA_FOR_4BIT,
    apply_lora,
    lora_parameter_count,
    nf4_config,
    quantization_problem,
    save_lora,
    token_buffers,
    trainable_parameters,
)
from redrobe.model import build_model, llama_config
from redrobe.train import TrainConfig, train_on_array

VOCAB, SEQ, D = 48, 16, 32
TINY = Model(hidden_size=D, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64,
             max_seq_len=SEQ)
CONFIG = TrainConfig(steps=5, lr=5e-2, min_lr=5e-3, warmup_steps=1, weight_decay=0.01, seed=2)


def base():
    torch.set_num_threads(1)
    return build_model(llama_config(TINY, VOCAB, bos_id=0, eos_id=1, pad_id=3), seed=4)


def adapted(dropout=0.0):
    torch.manual_seed(0)
    return apply_lora(base(), r=4, alpha=8, dropout=dropout, target_modules=["q_proj", "v_proj"])


def stream(n: int) -> np.ndarray:
    return np.tile(np.arange(4, 20, dtype=np.int64), n // 16 + 1)[:n]


def finetune(model):
    return train_on_array(model, stream(600), stream(200), seq_len=SEQ, batch_size=4,
                          eval_batches=1, config=CONFIG)


def base_weights(model):
    return {k: v.clone() for k, v in model.named_parameters() if "lora_" not in k}


def test_trainable_parameters_are_r_times_din_plus_dout_per_matrix():
    counts = trainable_parameters(adapted())
    kv_out = D // 2 * 1  # one kv head of head_dim 16
    per_layer = 4 * (D + D) + 4 * (D + kv_out)  # q: 32->32, v: 32->16 (LoRA Table 16 note)
    assert counts["trainable"] == 2 * per_layer
    assert counts["total"] == sum(p.numel() for p in base().parameters()) + counts["trainable"]
    assert 0 < counts["fraction"] < 1


def test_base_weights_unchanged_and_adapters_trained():
    model = adapted(dropout=0.05)
    before = base_weights(model)
    lora_before = {k: v.clone() for k, v in model.named_parameters() if "lora_" in k}
    result = finetune(model)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(lora_before[k], after[k]) for k in lora_before)
    assert result.records[-1].loss < result.records[0].loss


def test_adapted_model_starts_at_the_base_model():
    x = torch.randint(0, VOCAB, (2, SEQ))
    with torch.no_grad():
        plain = base().eval()(input_ids=x).logits
        wrapped = adapted().eval()(input_ids=x).logits
    assert torch.allclose(plain, wrapped)  # B = 0 at initialization


class NoTokenizer:
    """save_lora saves the tokenizer beside the merged weights: record where."""

    def __init__(self):
        self.saved_to = []

    def save_pretrained(self, path):
        self.saved_to.append(path)


def finetuned_and_logits():
    """A fine-tuned adapted model in eval mode, a batch of ids and its unmerged logits."""
    model = adapted()
    finetune(model)
    model.eval()
    x = torch.randint(0, VOCAB, (2, SEQ))
    with torch.no_grad():
        return model, x, model(input_ids=x).logits


def test_merged_logits_equal_unmerged_and_saved_outputs_load(tmp_path):
    model, x, unmerged = finetuned_and_logits()
    tokenizer = NoTokenizer()
    merged = save_lora(model, tokenizer, tmp_path)
    assert tokenizer.saved_to == [tmp_path / MERGED_DIR]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, unmerged, atol=1e-5)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / MERGED_DIR).eval()
        assert torch.allclose(reloaded(input_ids=x).logits, unmerged, atol=1e-5)
        peft = PeftModel.from_pretrained(base(), tmp_path / ADAPTER_DIR).eval()
        assert torch.allclose(peft(input_ids=x).logits, unmerged, atol=1e-5)
        # merging again from the saved adapter gives the same merged model (idempotent)
        again = peft.merge_and_unload()
        assert torch.allclose(again(input_ids=x).logits, unmerged, atol=1e-5)


class CharTokenizer:
    """One id per character: enough to check packing without a trained tokenizer."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_token_buffers_split_pack_and_stop_when_full():
    docs = [Document(id=f"d{i}", text=t, source="books") for i, t in
            enumerate(["abc", "de", "fgh", "ij", "klmn", "op"])]
    read = []

    def tracked():
        for d in docs:
            read.append(d.id)
            yield d

    is_val = lambda doc: doc.id in ("d1", "d3")  # noqa: E731
    buffers = token_buffers(tracked(), CharTokenizer(), eos_id=0, is_val=is_val,
                            train_tokens=7, val_tokens=6)
    assert buffers.train.tolist() == [97, 98, 99, 0, 102, 103, 104]  # "abc</s>fgh" capped at 7
    assert buffers.val.tolist() == [100, 101, 0, 105, 106, 0]        # "de</s>ij</s>"
    assert (buffers.train_docs, buffers.val_docs) == (2, 2)
    assert read == ["d0", "d1", "d2", "d3"]                          # stopped once both full


def test_token_buffers_use_everything_when_the_slice_is_small():
    docs = [Document(id="a", text="xy", source="books")]
    buffers = token_buffers(docs, CharTokenizer(), eos_id=0, is_val=lambda _: False,
                            train_tokens=100, val_tokens=100)
    assert buffers.train.tolist() == [120, 121, 0] and buffers.val.size == 0


@pytest.mark.parametrize("targets", [["q_proj"], ["q_proj", "k_proj", "v_proj", "o_proj"]])
def test_only_targeted_modules_get_adapters(targets):
    model = apply_lora(base(), r=2, alpha=4, dropout=0.0, target_modules=targets)
    # names look like ...self_attn.q_proj.lora_A.default.weight
    adapted_modules = {n.split(".")[-4] for n, p in model.named_parameters() if p.requires_grad}
    assert adapted_modules == set(targets)


ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("r,targets", [(4, ["q_proj", "v_proj"]), (2, ALL_PROJECTIONS),
                                       (8, ["down_proj"])])
def test_formula_count_equals_what_peft_made(r, targets):
    model = apply_lora(base(), r=r, alpha=2 * r, dropout=0.0, target_modules=targets)
    lora_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert lora_parameter_count(model.config, r, targets) == lora_params
    assert trainable_parameters(model)["trainable"] == lora_params


def test_formula_by_hand_for_all_projections():
    config = base().config  # d=32, 2 heads of 16, 1 kv head, ffn 64, 2 layers
    q, kv, o, ffn = 32 + 32, 32 + 16, 32 + 32, 32 + 64
    assert lora_parameter_count(config, 2, ALL_PROJECTIONS) == 2 * 2 * (q + 2 * kv + o + 3 * ffn)
    with pytest.raises(ValueError, match="lm_head"):
        lora_parameter_count(config, 2, ["lm_head"])


def test_quantization_problem_names_the_missing_piece():
    assert quantization_problem("none", cuda_available=False) is None
    assert quantization_problem("4bit", cuda_available=False) == NO_CUDA_FOR_4BIT
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        assert quantization_problem("4bit", cuda_available=True) == NO_BITSANDBYTES
    else:
        assert quantization_problem("4bit", cuda_available=True) is None


def test_nf4_config_is_qlora_s():
    config = nf4_config()
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16


def test_merge_into_a_full_precision_base_equals_in_memory_merge(tmp_path):
    model, x, unmerged = finetuned_and_logits()
    merged = save_lora(model, NoTokenizer(), tmp_path, full_precision_base=base())
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, unmerged, atol=1e-5)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / MERGED_DIR).eval()
        assert torch.allclose(reloaded(input_ids=x).logits, unmerged, atol=1e-5)


def test_quantization_param_accepts_only_none_or_4bit(tmp_path):
    from redrobe.config import ConfigError, load_params

    path = tmp_path / "params.yaml"
    path.write_text("lora:\n  quantization: 8bit\n")
    with pytest.raises(ConfigError, match="quantization"):
        load_params(path)
    path.write_text("lora:\n  quantization: 4bit\n")
    assert load_params(path).lora.quantization == "4bit"
