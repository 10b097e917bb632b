"""Routing and per-slice output: rolling shards, empty trees, the ledger identity."""

import pyarrow.parquet as pq

from redrobe.documents import Document, read_documents
from redrobe.sources.base import (
    EMPTY_TEXT,
    KEPT,
    QUARANTINED,
    REMOVED,
    TOO_LONG,
    WIKI_REDIRECT,
    quarantined,
    removed,
    route,
    stable_id,
)
from redrobe.sources.sink import RollingShards, SliceSink


def doc(text: str, n: int = 0) -> Document:
    return Document(id=stable_id("c4", "dist==1", "member", n), text=text, source="c4")


def test_stable_id_depends_on_provenance_only():
    assert stable_id("c4", "gensim==4.4.0", "m", 3) == stable_id("c4", "gensim==4.4.0", "m", 3)
    assert stable_id("c4", "gensim==4.4.0", "m", 3) != stable_id("c4", "gensim==4.4.0", "m", 4)
    assert stable_id("c4", "x", 1).startswith("c4/") and len(stable_id("c4", "x", 1)) == 3 + 16


def test_route_gives_each_document_exactly_one_fate():
    assert route(doc("fine text"), 100) == (KEPT, doc("fine text"))
    assert route(doc(" \n\t "), 100)[1].extra == {"reason": EMPTY_TEXT}
    assert route(doc("x" * 11), 10)[1].extra == {"reason": TOO_LONG}
    assert route(removed(doc("#REDIRECT"), WIKI_REDIRECT), 100)[0] == REMOVED
    assert route(quarantined(doc(""), "f:1: bad"), 100) == (QUARANTINED, quarantined(doc(""), "f:1: bad"))


def test_rolling_shards_split_at_shard_docs_and_record_inputs(tmp_path):
    shards = RollingShards(tmp_path, "c4", shard_docs=2, batch_size=1)
    for i in range(5):
        shards.write(doc(f"text {i}", i), origin=f"in{i // 3}")
    records = shards.close()
    assert [(r.path, r.docs) for r in records] == [
        ("c4/part-00000.parquet", 2), ("c4/part-00001.parquet", 2), ("c4/part-00002.parquet", 1)]
    assert [r.inputs for r in records] == [("in0",), ("in0", "in1"), ("in1",)]
    assert [d.text for d in read_documents(tmp_path / records[1].path)] == ["text 2", "text 3"]


def test_empty_tree_still_gets_part_00000_with_its_columns(tmp_path):
    records = RollingShards(tmp_path, "books", 10, 4, ("reason",)).close()
    assert [(r.path, r.docs) for r in records] == [("books/part-00000.parquet", 0)]
    assert pq.read_schema(tmp_path / records[0].path).names == ["id", "text", "source", "meta", "reason"]


def test_slice_sink_writes_three_trees_and_balances_the_ledger(dirs):
    sink = SliceSink(dirs, "c4", shard_docs=10, batch_size=4, max_chars=20)
    fates = [sink.add(d, "input.jsonl") for d in
             [doc("kept one", 1), doc("", 2), doc("y" * 30, 3), quarantined(doc("{oops", 4), "x:4: bad")]]
    (report,) = sink.close()   # an unrouted slice is one partition
    assert fates == [KEPT, REMOVED, REMOVED, QUARANTINED]
    report.ledger.check()
    counts = report.ledger.as_dict()["slices"]["c4"]
    assert (counts["in"], counts["out"], counts["removed"], counts["quarantined"]) == (4, 1, 2, 1)
    assert counts["chars_out"] == len("kept one") and report.kept_bytes == len("kept one")
    removed_docs = list(read_documents(dirs.removed / report.removed[0].path))
    assert [d.extra["reason"] for d in removed_docs] == [EMPTY_TEXT, TOO_LONG]
    assert removed_docs[1].text == "y" * 30  # removed, not lost
    (bad,) = read_documents(dirs.quarantine / report.quarantine[0].path)
    assert bad.extra["error"] == "x:4: bad" and bad.text == "{oops"


def test_a_slice_with_no_documents_shows_with_zeros(dirs):
    (report,) = SliceSink(dirs, "books", 10, 4, 100).close()
    assert report.ledger.as_dict()["slices"]["books"]["in"] == 0
    assert [r.docs for r in report.raw] == [0]
