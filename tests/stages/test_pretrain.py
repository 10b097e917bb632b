"""`redrobe pretrain` on tiny buckets: loadable HF model, curve, metrics, determinism, errors."""

import csv
import json

import llm_fixtures as fx
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from redrobe.stages import pretrain


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return fx.write_inputs(tmp_path_factory.mktemp("pretrain-inputs"))



def run(inputs, out):
    assert pretrain.main(fx.pretrain_argv(inputs, out / "base", out / "metrics")) == 0
    return out / "base", out / "metrics"


def test_pretrain_outputs(inputs, tmp_path):
    base, metrics_dir = run(inputs, tmp_path)
    model = AutoModelForCausalLM.from_pretrained(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    assert model.config.vocab_size == len(tokenizer)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 2)
    assert model.config.eos_token_id == tokenizer.eos_token_id == 1

    rows = list(csv.DictReader((metrics_dir / "pretrain_curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in rows if r["val_loss"]] == ["3", "6"]  # eval_every: 3

    m = json.loads((metrics_dir / "pretrain.json").read_text())
    assert m["stage"] == "pretrain" and m["steps"] == 6 and m["precision"] == "fp32"
    assert m["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert m["tokens_seen"] == 6 * 4 * 32 == int(rows[-1]["tokens"])
    assert m["final_train_loss"] == pytest.approx(float(rows[-1]["loss"]), abs=1e-6)
    assert m["final_val_loss"] == pytest.approx(float(rows[-1]["val_loss"]), abs=1e-6)
    assert set(m["val_loss_by_slice"]) == set(fx.SLICES)
    assert m["curriculum"]["schedule"] == "stepwise" and m["curriculum"]["replay"] == 0.1
    phases = m["curriculum"]["phases"]
    assert [p["bucket"] for p in phases] == ["bucket-00", "bucket-01"]
    assert phases[0]["first_step"] == 1 and phases[-1]["last_step"] == 6
    assert sum(p["steps"] for p in phases) == 6
    assert sum(m["curriculum"]["bucket_windows"].values()) == 6 * 4      # steps x batch
    assert set(m["val_loss_by_bucket"]) <= {"bucket-00", "bucket-01"} and m["val_loss_by_bucket"]


def test_data_order_names_the_documents_of_every_step(inputs, tmp_path):
    import pyarrow.parquet as pq
    base, _ = run(inputs, tmp_path)
    order = pq.read_table(base / pretrain.DATA_ORDER_FILE).to_pydict()
    assert sorted(set(order["step"])) == [1, 2, 3, 4, 5, 6]
    assert set(order["lane"]) == {0, 1, 2, 3}                            # batch_size 4
    train_ids = {d.id for name in fx.SLICES for d in fx.documents(name)}
    assert set(order["doc_id"]) <= train_ids
    assert all(a < b for a, b in zip(order["start"], order["end"]))


def test_rerun_gives_identical_weights_and_losses(inputs, tmp_path):
    a, ma = run(inputs, tmp_path / "a")
    b, mb = run(inputs, tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    losses = lambda d: [r["loss"] for r in csv.DictReader((d / "pretrain_curve.csv").open())]  # noqa: E731
    assert losses(ma) == losses(mb)


def test_missing_buckets_fail_with_one_clear_message(inputs, tmp_path, capsys):
    argv = fx.pretrain_argv({**inputs, "buckets": tmp_path / "nowhere"}, tmp_path / "base", tmp_path)
    assert pretrain.main(argv) == 1
    assert "nowhere/index.json" in capsys.readouterr().err
    assert not (tmp_path / "base").exists()
