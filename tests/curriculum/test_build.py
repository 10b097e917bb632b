"""Curriculum assembly on hand-made records: ordering, files, index and docs table."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from redrobe.curriculum.build import (
    TokenSpec,
    fit_difficulty,
    plan_buckets,
    plan_validation,
    score_documents,
    write_curriculum,
)
from redrobe.curriculum.difficulty import surprisal_table
from redrobe.curriculum.layout import DOCS_FILE, SPLIT_TRAIN, SPLIT_VAL, open_tokens, read_index
from redrobe.curriculum.tokens import DocRecord

SPEC = TokenSpec(vocab_size=10, bos_id=0, eos_id=1)
# two "shards" of token ids (no eos inside: the writer adds it)
SPILLS = [np.array([4, 4, 5, 9, 8, 4, 4, 4], dtype="<u2"), np.array([6, 7, 4, 5, 9], dtype="<u2")]


def rec(doc_id, split, shard, offset, tokens, slice_name="books"):
    return DocRecord(id=doc_id, source=slice_name, slice=slice_name, split=split, shard=shard,
                     offset=offset, tokens=tokens, bytes=3 * tokens)


RECORDS = [
    rec("a", SPLIT_TRAIN, 0, 0, 2),            # 4 4      easy
    rec("b", SPLIT_TRAIN, 0, 2, 3),            # 5 9 8    hard
    rec("c", SPLIT_TRAIN, 0, 5, 3),            # 4 4 4    easiest-equal to a
    rec("z", SPLIT_VAL, 1, 0, 2, "c4"),        # 6 7
    rec("y", SPLIT_VAL, 1, 2, 3, "c4"),        # 4 5 9
]


def test_ties_sort_by_id_and_buckets_go_easy_to_hard():
    scores = np.array([1.0, 3.0, 1.0, 0.0, 0.0])
    edges, members = plan_buckets(RECORDS, scores, 2)
    assert edges == [1.0]
    assert members == [[0, 2], [1]]
    scores[2] = 0.5
    assert plan_buckets(RECORDS, scores, 2)[1][0] == [2, 0]


def test_validation_is_per_slice_in_id_order_with_every_slice_listed():
    assert plan_validation(RECORDS, ["c4", "books"]) == {"books": [], "c4": [4, 3]}


def test_scores_use_each_documents_own_tokens():
    counts = np.bincount([4, 4, 5, 9, 8, 4, 4, 4], minlength=10)   # training docs a, b, c
    table = surprisal_table(counts)
    scores = score_documents(RECORDS, SPILLS, fit_difficulty("unigram_surprisal", RECORDS,
                                                             SPILLS, counts))
    assert scores[0] == pytest.approx(table[4])
    assert scores[1] == pytest.approx(table[[5, 9, 8]].mean())
    assert scores[0] == scores[2] < scores[1]


def test_write_curriculum(tmp_path):
    scores = np.array([1.0, 3.0, 1.0, 2.0, 2.5])
    index = write_curriculum(tmp_path, RECORDS, scores, SPILLS, SPEC, 2, ["books", "c4"])
    assert index == read_index(tmp_path)
    assert (index["dtype"], index["eos_id"], index["num_buckets"]) == ("uint16", 1, 2)
    b0, b1 = index["buckets"]
    assert open_tokens(tmp_path, index, b0["file"]).tolist() == [4, 4, 1, 4, 4, 4, 1]  # a, c
    assert open_tokens(tmp_path, index, b1["file"]).tolist() == [5, 9, 8, 1]
    assert (b0["tokens"], b0["docs"], b0["score_min"], b0["score_max"]) == (7, 2, 1.0, 1.0)
    assert b0["tokens_by_slice"] == {"books": 7, "c4": 0}
    assert open_tokens(tmp_path, index, "val-c4.bin").tolist() == [4, 5, 9, 1, 6, 7, 1]  # y, z
    assert index["val"]["c4"] == {"file": "val-c4.bin", "tokens": 7, "docs": 2, "bytes": 15}
    assert index["val"]["books"]["tokens"] == 0
    docs = pq.read_table(tmp_path / DOCS_FILE).to_pylist()
    assert [(d["id"], d["bucket"], d["offset"], d["tokens"]) for d in docs] == [
        ("a", 0, 0, 2), ("c", 0, 3, 3), ("b", 1, 0, 3), ("y", -1, 0, 3), ("z", -1, 4, 2)]
    assert {d["split"] for d in docs[3:]} == {"val"}


def test_an_empty_bucket_has_null_scores(tmp_path):
    scores = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    index = write_curriculum(tmp_path, RECORDS, scores, SPILLS, SPEC, 3, ["books", "c4"])
    assert [b["docs"] for b in index["buckets"]] == [3, 0, 0]
    assert index["buckets"][1]["score_min"] is None
    assert open_tokens(tmp_path, index, "bucket-01.bin").size == 0


def test_reference_score_fits_bigrams_on_training_documents_only():
    counts = np.bincount([4, 4, 5, 9, 8, 4, 4, 4], minlength=10)
    scorer = fit_difficulty("reference_ppl", RECORDS, SPILLS, counts)
    scores = score_documents(RECORDS, SPILLS, scorer)
    # "4 4" was seen in training (in a and c), "6 7" (val doc z) never was
    assert scores[0] < scores[3]
    for name in ("length", "rare_word_rate"):
        assert score_documents(RECORDS, SPILLS, fit_difficulty(name, RECORDS, SPILLS, counts)
                               ).shape == (len(RECORDS),)
    assert score_documents(RECORDS, SPILLS, fit_difficulty("length", RECORDS, SPILLS, counts)
                           ).tolist() == [2, 3, 3, 2, 3]


def test_index_names_the_score(tmp_path):
    scores = np.array([1.0, 3.0, 1.0, 2.0, 2.5])
    index = write_curriculum(tmp_path, RECORDS, scores, SPILLS, SPEC, 2, ["books", "c4"],
                             score="length")
    assert index["score"] == read_index(tmp_path)["score"] == "length"
