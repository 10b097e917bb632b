"""Data order (which documents each step saw) and validation tokens per bucket."""

import numpy as np
import pyarrow.parquet as pq

from redrobe.curriculum.build import TokenSpec, write_curriculum
from redrobe.curriculum.layout import SPLIT_TRAIN, SPLIT_VAL, open_tokens
from redrobe.curriculum.order import DocTable, data_order, write_data_order
from redrobe.curriculum.tokens import DocRecord
from redrobe.train.data import make_batches

SPEC = TokenSpec(vocab_size=100, bos_id=0, eos_id=1)
LENGTHS = [7, 3, 12, 5, 9, 4, 6, 10]          # training docs d0..d7
VAL = [(3, "c4"), (8, "c4"), (2, "books")]    # validation docs v0..v2


def build(tmp_path):
    """A buckets dir whose document d<i> holds tokens 10+i (val v<j>: 50+j); score = length."""
    spill, records, scores = [], [], []
    for i, n in enumerate(LENGTHS):
        records.append(DocRecord(id=f"d{i}", source="books", slice="books", split=SPLIT_TRAIN,
                                 shard=0, offset=len(spill), tokens=n, bytes=n))
        spill += [10 + i] * n
        scores.append(float(n))
    for j, (n, s) in enumerate(VAL):
        records.append(DocRecord(id=f"v{j}", source=s, slice=s, split=SPLIT_VAL, shard=0,
                                 offset=len(spill), tokens=n, bytes=n))
        spill += [50 + j] * n
        scores.append(float(n))
    index = write_curriculum(tmp_path, records, np.array(scores), [np.array(spill, dtype="<u2")],
                             SPEC, 2, ["books", "c4"], score="length")
    return index, [open_tokens(tmp_path, index, b["file"]) for b in index["buckets"]]


def test_overlaps_map_window_positions_to_documents(tmp_path):
    _, arrays = build(tmp_path)
    table = DocTable.read(tmp_path)
    tokens = arrays[0]
    for start in range(len(tokens) - 4):
        seen = list(table.overlaps(0, start, start + 5))
        covered = [p for _, a, b in seen for p in range(a, b)]
        assert covered == list(range(start, start + 5))          # exact tiling
        for doc_id, a, b in seen:
            doc_tokens = set(tokens[a:b].tolist()) - {SPEC.eos_id}
            assert doc_tokens <= {10 + int(doc_id[1:])}           # the right document


def test_data_order_lists_the_documents_of_every_row(tmp_path):
    _, arrays = build(tmp_path)
    table = DocTable.read(tmp_path)
    batches = make_batches("smooth", arrays, ["b0", "b1"], steps=6, seq_len=4, batch_size=3,
                           grad_accum=2, seed=5, replay=0.3)
    rows = [r for batch in data_order(batches, table, steps=6, chunk_steps=4)
            for r in batch.to_pylist()]
    assert {(r["step"], r["micro"], r["lane"]) for r in rows} == {
        (s, m, lane) for s in range(1, 7) for m in (0, 1) for lane in range(3)}
    for r in rows:
        buckets, starts = batches.rows(r["step"], r["micro"])
        ws = int(starts[r["lane"]])
        assert r["bucket"] == buckets[r["lane"]] and ws <= r["start"] < r["end"] <= ws + 5
        window = batches(r["step"], r["micro"])[r["lane"]].tolist()
        piece = arrays[r["bucket"]][r["start"]:r["end"]].tolist()
        assert window[r["start"] - ws:r["end"] - ws] == piece        # the row's own tokens
        assert set(piece) <= {10 + int(r["doc_id"][1:]), SPEC.eos_id}   # of that document


def test_write_data_order_is_reproducible(tmp_path):
    _, arrays = build(tmp_path)
    table = DocTable.read(tmp_path)

    def write(name):
        batches = make_batches("stepwise", arrays, ["b0", "b1"], steps=5, seq_len=4,
                               batch_size=2, grad_accum=1, seed=1, replay=0.5)
        n = write_data_order(tmp_path / name, batches, table, steps=5)
        return n, (tmp_path / name).read_bytes()

    (n, first), (_, second) = write("a.parquet"), write("b.parquet")
    assert n > 10 and first == second
    step3 = pq.read_table(tmp_path / "a.parquet", filters=[("step", "=", 3)]).to_pylist()
    assert step3 and all(r["step"] == 3 for r in step3)


def test_validation_tokens_per_bucket_follow_the_score_edges(tmp_path):
    index, _ = build(tmp_path)
    (edge,) = index["score_edges"]                       # median training length
    val = DocTable.read(tmp_path).val_by_bucket(max_tokens=1000)
    assert sorted(val) == ["bucket-00", "bucket-01"]
    for name, lengths in (("bucket-00", [n for n, _ in VAL if n <= edge]),
                          ("bucket-01", [n for n, _ in VAL if n > edge])):
        assert len(val[name]) == sum(n + 1 for n in lengths)
        assert int((val[name] == SPEC.eos_id).sum()) == len(lengths)
    capped = DocTable.read(tmp_path).val_by_bucket(max_tokens=3)
    assert all(len(a) <= 3 for a in capped.values())
