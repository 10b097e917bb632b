"""`redrobe bucket` end to end on tmp dirs: the index.json contract, ordering, accounting, rerun."""

import json
import random

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from redrobe.accounting import check_accounting
from redrobe.curriculum.difficulty import compression_ratio, mean_surprisal, surprisal_table, unigram_counts
from redrobe.curriculum.layout import DOCS_FILE, INDEX_FILE, REMOVED_FILE, open_tokens, read_index
from redrobe.curriculum.split import is_validation
from redrobe.curriculum.tokens import EMPTY_AFTER_TOKENIZE
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.stages.bucket import main
from redrobe.tokenizer import document_encoder, encode_texts, save_tokenizer, train_tokenizer

SEED, FRACTION = 1234, 0.1
COMMON = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from"]
RARE = [f"{a}{b}{c}" for a in "qxz" for b in "jvw" for c in "kyp"]
LAYOUT = {("books", 0): 30, ("books", 1): 25, ("c4", 0): 40, ("github", 0): 35}
EMPTY = {("books", 1), ("github", 0)}  # shards holding one empty document each


def corpus() -> dict[str, Document]:
    rng, docs = random.Random(7), {}
    for (slice_name, index), n in LAYOUT.items():
        for i in range(n):
            rare = rng.random()  # documents differ in how many rare words they use
            words = [rng.choice(RARE) if rng.random() < rare else rng.choice(COMMON)
                     for _ in range(rng.randint(3, 30))]
            doc_id = f"{slice_name}/{index}/{i:03d}"
            docs[doc_id] = Document(id=doc_id, text=" ".join(words), source=slice_name,
                                    meta={"shard": index})
        if (slice_name, index) in EMPTY:
            doc_id = f"{slice_name}/{index}/empty"
            docs[doc_id] = Document(id=doc_id, text="", source=slice_name)
    return docs


DOCS = corpus()


@pytest.fixture
def setup(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(tmp_path)
    for (slice_name, index) in LAYOUT:
        with ShardWriter(shard_path(tmp_path / "dedup", slice_name, index), batch_size=8) as w:
            w.write_all(d for d in DOCS.values() if d.id.startswith(f"{slice_name}/{index}/"))
    save_tokenizer(train_tokenizer((d.text for d in DOCS.values()), 300, 2), tmp_path / "tok")
    params = yaml.safe_load((repo_root / "params.yaml").read_text())

    def run(name: str = "b", workers: int = 1, num_buckets: int = 4, **bucket):
        path = tmp_path / f"{name}.yaml"
        shared = {**params["shared"], "workers": workers, "val_fraction": FRACTION,
                  "seed": SEED, "batch_docs": 16}
        path.write_text(yaml.safe_dump({**params, "shared": shared, "bucket": {
            **params["bucket"], "num_buckets": num_buckets, **bucket}}))
        code = main(["--params", str(path), "--input", "dedup", "--tokenizer", "tok",
                     "--output", f"{name}/out", "--metrics", f"{name}/metrics.json"])
        metrics = json.loads((tmp_path / name / "metrics.json").read_text()) if code == 0 else None
        return code, tmp_path / name / "out", metrics

    return run


@pytest.fixture
def built(setup):
    code, out, metrics = setup()
    assert code == 0
    return out, read_index(out), metrics, pq.read_table(out / DOCS_FILE).to_pylist()


def test_index_json_contract(built):
    out, index, _, _ = built
    assert (index["dtype"], index["vocab_size"], index["bos_id"], index["eos_id"]) == ("uint16", 300, 0, 1)
    assert index["num_buckets"] == len(index["buckets"]) == 4
    assert index["score"] == "unigram_surprisal"
    for k, b in enumerate(index["buckets"]):
        tokens = open_tokens(out, index, b["file"])
        assert (b["name"], b["file"]) == (f"bucket-{k:02d}", f"bucket-{k:02d}.bin")
        assert b["tokens"] == len(tokens) == (out / b["file"]).stat().st_size // 2
        assert sum(b["tokens_by_slice"].values()) == b["tokens"]
        assert int((tokens == index["eos_id"]).sum()) == b["docs"] > 0
        assert tokens[-1] == index["eos_id"]
    for lower, upper in zip(index["buckets"], index["buckets"][1:]):
        assert lower["score_max"] <= upper["score_min"]
    assert sorted(index["val"]) == ["books", "c4", "github"]
    for slice_name, v in index["val"].items():
        assert v["file"] == f"val-{slice_name}.bin"
        assert v["tokens"] == len(open_tokens(out, index, v["file"]))


def test_every_document_is_in_its_file_and_decodes_back(built, tmp_path):
    out, index, _, docs = built
    encoder = document_encoder(tmp_path / "tok" / "tokenizer.json")
    assert len(docs) == len(DOCS) - len(EMPTY)
    for row in docs:
        expected_split = "val" if is_validation(row["id"], FRACTION, SEED) else "train"
        assert row["split"] == expected_split and row["source"] == DOCS[row["id"]].source
        file = (f"val-{row['source']}.bin" if row["split"] == "val"
                else index["buckets"][row["bucket"]]["file"])
        tokens = open_tokens(out, index, file)
        assert tokens[row["offset"] + row["tokens"]] == index["eos_id"]
        assert encoder.decode(tokens[row["offset"]:row["offset"] + row["tokens"]].tolist()) \
            == DOCS[row["id"]].text


def test_documents_go_easy_to_hard_and_val_in_id_order(built):
    _, index, _, docs = built
    train = [r for r in docs if r["split"] == "train"]
    assert [(r["bucket"], r["offset"]) for r in train] == sorted((r["bucket"], r["offset"]) for r in train)
    assert [(r["score"], r["id"]) for r in train] == sorted((r["score"], r["id"]) for r in train)
    for k, b in enumerate(index["buckets"]):
        scores = [r["score"] for r in train if r["bucket"] == k]
        assert (min(scores), max(scores), len(scores)) == (b["score_min"], b["score_max"], b["docs"])
    for slice_name, v in index["val"].items():
        ids = [r["id"] for r in docs if r["split"] == "val" and r["source"] == slice_name]
        assert ids == sorted(ids) and len(ids) == v["docs"]
        assert all(r["bucket"] == -1 for r in docs if r["split"] == "val")


def test_scores_are_unigram_surprisal_of_the_training_split(built, tmp_path):
    _, _, metrics, docs = built
    encoder = document_encoder(tmp_path / "tok" / "tokenizer.json")
    train_texts = [DOCS[r["id"]].text for r in docs if r["split"] == "train"]
    table = surprisal_table(unigram_counts(encode_texts(encoder, train_texts), 300))
    for row in docs[::7]:
        tokens = encode_texts(encoder, [DOCS[row["id"]].text])[0]
        assert row["score"] == pytest.approx(mean_surprisal(np.array(tokens), table), rel=1e-12)
    scores = sorted(r["score"] for r in docs if r["split"] == "train")
    assert metrics["score_edges"] == pytest.approx(np.quantile(scores, [0.25, 0.5, 0.75]).tolist())


def test_accounting_and_removed_documents(built):
    out, index, metrics, docs = built
    assert check_accounting(metrics) == []
    slices = metrics["accounting"]["slices"]
    for slice_name in ("books", "c4", "github"):
        n_in = sum(1 for d in DOCS.values() if d.source == slice_name)
        empty = sum(1 for (s, _) in EMPTY if s == slice_name)
        s = slices[slice_name]
        assert (s["in"], s["out"], s["removed"]) == (n_in, n_in - empty, empty)
        assert s["out"] == sum(1 for r in docs if r["source"] == slice_name)
        train_tokens = sum(b["tokens_by_slice"][slice_name] for b in index["buckets"])
        assert metrics["slice_tokens"][slice_name] == {"train": train_tokens,
                                                       "val": index["val"][slice_name]["tokens"]}
    removed = pq.read_table(out / REMOVED_FILE).to_pylist()
    assert sorted(r["id"] for r in removed) == ["books/1/empty", "github/0/empty"]
    assert {r["reason"] for r in removed} == {EMPTY_AFTER_TOKENIZE}
    assert metrics["bucket_tokens"] == {b["name"]: b["tokens"] for b in index["buckets"]}
    assert not (out / ".spill").exists()


def test_rerun_with_more_workers_is_byte_identical(setup, built):
    first = built[0]
    code, second, _ = setup("again", workers=2)
    assert code == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and INDEX_FILE in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_missing_tokenizer_is_one_clear_error(setup, tmp_path, capsys):
    (tmp_path / "tok" / "tokenizer.json").unlink()
    code, out, _ = setup()
    assert code == 1 and not out.exists()
    assert "tok/tokenizer.json: not found" in capsys.readouterr().err


@pytest.mark.parametrize("score", ["compression_ratio", "reference_ppl", "length"])
def test_configured_score_orders_the_buckets(setup, tmp_path, score):
    code, out, metrics = setup(score, num_buckets=3, score=score)
    assert code == 0 and read_index(out)["score"] == metrics["score"] == score
    docs = pq.read_table(out / DOCS_FILE).to_pylist()
    encoder = document_encoder(tmp_path / "tok" / "tokenizer.json")
    for row in docs[::9]:
        text = DOCS[row["id"]].text
        if score == "compression_ratio":
            expected = compression_ratio(text.encode("utf-8"))
        elif score == "length":
            expected = len(encode_texts(encoder, [text])[0])
        else:   # reference_ppl: bits per token, positive and below the uniform log2(V)
            assert 0 < row["score"] < np.log2(300)
            continue
        assert row["score"] == pytest.approx(expected, rel=1e-12)
    train = [r for r in docs if r["split"] == "train"]
    assert [(r["score"], r["id"]) for r in train] == sorted((r["score"], r["id"]) for r in train)
