"""The training loop: it learns, it is deterministic, it evaluates, AdamW groups, the curve."""

import csv

import numpy as np
import torch

from redrobe.config import Model
from redrobe.model import build_model, llama_config
from redrobe.train import (
    CurriculumBatches,
    TrainConfig,
    configure_optimizer,
    curriculum_plan,
    eval_windows,
    train,
    train_on_array,
    write_curve,
)

VOCAB, SEQ = 32, 16
TINY = Model(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64,
             max_seq_len=SEQ)
CONFIG = TrainConfig(steps=12, lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.1,
                     eval_every=4, seed=3)


def model():
    torch.set_num_threads(1)
    return build_model(llama_config(TINY, VOCAB, bos_id=0, eos_id=1, pad_id=None), seed=11)


def repetitive(n: int) -> np.ndarray:
    return np.tile(np.arange(2, 10, dtype=np.uint16), n // 8 + 1)[:n]


def run(config: TrainConfig = CONFIG):
    arrays = [repetitive(600), repetitive(900)]
    plan = curriculum_plan([("b0", 600), ("b1", 900)], config.steps, SEQ + 1)
    batches = CurriculumBatches(arrays, plan, SEQ, batch_size=4, grad_accum=config.grad_accum,
                                seed=config.seed)
    val = {"val": eval_windows(repetitive(300), SEQ, batch_size=4, batches=1)}
    return train(model(), batches, config, val=val)


def test_training_lowers_the_loss_on_a_repetitive_stream():
    result = run()
    losses = [r.loss for r in result.records]
    assert losses[-1] < 0.5 * losses[0]
    assert result.final_val["overall"] < 0.5 * result.initial_val["overall"]


def test_same_seed_same_loss_curve():
    a, b = run(), run()
    assert [r.loss for r in a.records] == [r.loss for r in b.records]
    assert [r.val_loss for r in a.records] == [r.val_loss for r in b.records]


def test_records_steps_lr_tokens_and_eval_points():
    result = run()
    assert [r.step for r in result.records] == list(range(1, 13))
    assert result.records[1].lr == CONFIG.lr  # end of warmup: the peak
    assert result.records[-1].lr == CONFIG.min_lr
    assert [r.tokens for r in result.records] == [4 * SEQ * s for s in range(1, 13)]
    assert [r.step for r in result.records if r.val_loss is not None] == [4, 8, 12]


def test_gradient_accumulation_counts_micro_batches():
    from dataclasses import replace

    result = run(replace(CONFIG, steps=3, grad_accum=2, eval_every=0))
    assert [r.tokens for r in result.records] == [8 * SEQ, 16 * SEQ, 24 * SEQ]
    assert [r.step for r in result.records if r.val_loss is not None] == [3]


def test_weight_decay_only_on_matrices():
    m = model()
    groups = configure_optimizer(m, CONFIG).param_groups
    decayed, plain = groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"])
    assert all(p.dim() == 1 for p in plain["params"]) and plain["params"]  # RMSNorm weights
    n = sum(p.numel() for p in m.parameters())
    assert sum(p.numel() for g in groups for p in g["params"]) == n


def test_frozen_parameters_are_not_trained():
    m = model()
    for p in m.model.layers.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in m.model.layers.state_dict().items()}
    train_on_array(m, repetitive(800), repetitive(200), seq_len=SEQ, batch_size=4,
                   eval_batches=1, config=CONFIG)
    after = m.model.layers.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_curve_csv(tmp_path):
    result = run()
    path = tmp_path / "curve.csv"
    write_curve(path, result.records)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["step", "loss", "lr", "tokens", "tokens_per_s", "val_loss"]
    assert len(rows) == 12 and rows[0]["val_loss"] == "" and rows[3]["val_loss"] != ""
    assert float(rows[-1]["loss"]) == round(result.records[-1].loss, 6)


def test_mixed_precision_paths_train():
    from dataclasses import replace

    for precision in ("bf16", "fp16"):  # fp16 also goes through the GradScaler
        result = run(replace(CONFIG, steps=3, eval_every=0, precision=precision))
        assert all(np.isfinite(r.loss) for r in result.records)
        assert np.isfinite(result.final_val["overall"])
