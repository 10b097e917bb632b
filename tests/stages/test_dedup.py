"""`redrobe dedup` end to end on tmp dirs: outputs, duplicate_of, accounting, reruns."""

import json
import random

import pytest
import yaml

from redrobe.accounting import check_accounting
from redrobe.dedup import EXACT_DUPLICATE, NEAR_DUPLICATE
from redrobe.documents import (
    Document,
    ShardWriter,
    list_shards,
    read_documents,
    shard_path,
)
from redrobe.stages.dedup import main


def text(seed: int, words: int = 250) -> str:
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}{rng.choice('klmnrst')}{i}"
             for i in range(800)]
    return " ".join(rng.choice(vocab) for _ in range(words))


def edit(t: str, position: int) -> str:
    words = t.split()
    words[position] = "edited"
    return " ".join(words)


BOOK, WIKI, OTHER = text(1), text(2), text(3)
LAYOUT = {
    ("books", 0): [("b0", BOOK), ("b1", edit(BOOK, 120)), ("b2", text(4))],
    ("books", 1): [("b3", BOOK.upper() + "."), ("b4", text(5))],
    # w0 repeats b2 across slices; w2 is a near copy of w1 within the slice
    ("wikipedia", 0): [("w0", "  " + text(4).title() + "!"), ("w1", WIKI), ("w2", edit(WIKI, 7)),
                       ("w3", OTHER)],
}


@pytest.fixture
def setup(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(tmp_path)
    for (slice_name, index), docs in LAYOUT.items():
        with ShardWriter(shard_path(tmp_path / "clean", slice_name, index)) as w:
            for doc_id, body in docs:
                w.write(Document(id=doc_id, text=body, source=slice_name, meta={"n": index}))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())

    def run(name: str = "dedup", workers: int = 1, cache: str = "", inputs: str = "clean",
            work_dir: str = "", **dedup):
        # The semantic pass (MiniLM) has its own tests; these cover exact + MinHash.
        dedup = {"semantic": {**params["dedup"]["semantic"], "enabled": False}, **dedup}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**params, "dedup": {**params["dedup"], **dedup},
                                        "shared": {**params["shared"], "workers": workers}}))
        code = main(["--params", str(path), "--input", inputs, "--output", f"{name}/out",
                     "--removed", f"{name}/removed", "--metrics", f"{name}/metrics.json",
                     "--cache-dir", cache, "--work-dir", work_dir])
        assert code == 0
        return tmp_path / name

    return run


def removed_rows(out):
    return {d.id: (d.extra["reason"], d.extra["duplicate_of"], d.source)
            for p in list_shards(out / "removed") for d in read_documents(p)}


def kept_ids(out):
    return sorted(d.id for p in list_shards(out / "out") for d in read_documents(p))


def test_duplicates_removed_across_slices(setup):
    out = setup()
    assert removed_rows(out) == {
        "b1": (NEAR_DUPLICATE, "b0", "books"),
        "b3": (EXACT_DUPLICATE, "b0", "books"),
        "w0": (EXACT_DUPLICATE, "b2", "wikipedia"),
        "w2": (NEAR_DUPLICATE, "w1", "wikipedia"),
    }
    assert kept_ids(out) == ["b0", "b2", "b4", "w1", "w3"]

    def rel(root):
        return [p.relative_to(root).as_posix() for p in list_shards(root)]

    assert rel(out / "out") == rel(out / "removed") == rel(out.parent / "clean")


def test_metrics_accounting(setup):
    out = setup()
    metrics = json.loads((out / "metrics.json").read_text())
    assert check_accounting(metrics) == []
    books, wiki = (metrics["accounting"]["slices"][s] for s in ("books", "wikipedia"))
    assert (books["in"], books["out"], books["removed"]) == (5, 3, 2)
    assert books["removed_by_reason"] == {EXACT_DUPLICATE: 1, NEAR_DUPLICATE: 1}
    assert (wiki["in"], wiki["out"], wiki["removed_by_reason"]) == (
        4, 2, {EXACT_DUPLICATE: 1, NEAR_DUPLICATE: 1})
    assert metrics["duplicate_rate"]["slices"]["books"]["docs"] == pytest.approx(0.4)
    assert metrics["duplicate_rate"]["total"]["docs"] == pytest.approx(4 / 9)
    removed_chars = books["chars_in"] - books["chars_out"]
    assert metrics["duplicate_rate"]["slices"]["books"]["chars"] == pytest.approx(
        removed_chars / books["chars_in"], abs=1e-6)
    assert metrics["clusters"]["duplicate_clusters"] == 3
    assert metrics["clusters"]["cross_slice_clusters"] == 1
    assert metrics["params"]["minhash"] == {"enabled": True, "ngram": 13, "num_perm": 128,
                                            "bands": 16, "rows": 8, "seed": 42,
                                            "verify": True, "threshold": 0.8}
    assert metrics["sketch"] == {"shards_sketched": 3, "shards_reused": 0}
    assert metrics["shards"] == 3


def test_meta_and_source_survive(setup):
    out = setup()
    doc = next(read_documents(shard_path(out / "out", "wikipedia", 0)))
    assert (doc.id, doc.source, doc.meta) == ("w1", "wikipedia", {"n": 0})


def test_rerun_is_byte_identical(setup):
    first = setup("first")
    second = setup("second")
    for sub in ("out", "removed"):
        a, b = list_shards(first / sub), list_shards(second / sub)
        assert [p.relative_to(first) for p in a] == [p.relative_to(second) for p in b]
        assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
    again = setup("first")  # over an existing output: replaced atomically, same bytes
    assert [p.read_bytes() for p in list_shards(again / "out")] == [
        p.read_bytes() for p in list_shards(second / "out")]


def test_worker_processes_give_the_same_bytes(setup):
    one, two = setup("one"), setup("two", workers=2)
    assert [p.read_bytes() for p in list_shards(one / "removed")] == [
        p.read_bytes() for p in list_shards(two / "removed")]
    assert [p.read_bytes() for p in list_shards(one / "out")] == [
        p.read_bytes() for p in list_shards(two / "out")]


def shard_bytes(out):
    return {str(p.relative_to(out)): p.read_bytes() for sub in ("out", "removed")
            for p in list_shards(out / sub)}


def test_many_partitions_and_a_scratch_url_give_the_same_bytes_and_leave_nothing(setup, tmp_path):
    one = setup("one")
    # 8 keys per partition: every step runs as many partitions and shard groups
    many = setup("many", workers=2, partition_keys=8)
    metrics = json.loads((many / "metrics.json").read_text())
    assert metrics["partitions"]["key_partitions"] > 5 and metrics["partitions"]["shard_groups"] == 3
    assert shard_bytes(many) == shard_bytes(one)
    scratch = setup("scratch", partition_keys=8, work_dir=f"file://{tmp_path}/plan-scratch")
    assert shard_bytes(scratch) == shard_bytes(one)
    assert list((tmp_path / "plan-scratch").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if ".work-" in p.name] == []


def test_within_slice_only(setup):
    out = setup(cross_slice=False)
    assert set(removed_rows(out)) == {"b1", "b3", "w2"}
    assert "w0" in kept_ids(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clusters"]["cross_slice_clusters"] == 0
    assert metrics["accounting"]["slices"]["wikipedia"]["removed_by_reason"] == {NEAR_DUPLICATE: 1}


def every_byte(out):
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for sub in ("out", "removed") for p in list_shards(out / sub)}


def test_incremental_run_sketches_only_the_new_shard(setup, tmp_path):
    first = setup("first", cache="cache")
    assert json.loads((first / "metrics.json").read_text())["sketch"] == {
        "shards_sketched": 3, "shards_reused": 0}
    # A new shard holds a near copy of an old document and a document that is then kept.
    with ShardWriter(shard_path(tmp_path / "clean", "wikipedia", 1)) as w:
        w.write(Document(id="w4", text=edit(OTHER, 30), source="wikipedia"))
        w.write(Document(id="w5", text=text(6), source="wikipedia"))
    second = setup("second", cache="cache", workers=2)   # cache entries cross processes
    assert json.loads((second / "metrics.json").read_text())["sketch"] == {
        "shards_sketched": 1, "shards_reused": 3}
    assert removed_rows(second)["w4"] == (NEAR_DUPLICATE, "w3", "wikipedia")
    scratch = setup("scratch", cache="")
    assert json.loads((scratch / "metrics.json").read_text())["sketch"]["shards_reused"] == 0
    assert every_byte(second) == every_byte(scratch)
    assert (json.loads((second / "metrics.json").read_text())["clusters"]
            == json.loads((scratch / "metrics.json").read_text())["clusters"])


def test_cache_misses_when_sketch_params_change(setup):
    setup("a", cache="cache")
    metrics = json.loads((setup("b", cache="cache", cross_slice=False) / "metrics.json").read_text())
    assert metrics["sketch"]["shards_reused"] == 3     # cross_slice only changes clustering
    changed = setup("c", cache="cache", minhash={"enabled": True, "ngram": 5, "num_perm": 128,
                                                 "bands": 9, "rows": 13, "seed": 42,
                                                 "verify": False, "threshold": 0.8})
    assert json.loads((changed / "metrics.json").read_text())["sketch"]["shards_reused"] == 0


def test_verification_keeps_true_near_duplicates(setup):
    out = setup("verified", minhash={"enabled": True, "ngram": 13, "num_perm": 128, "bands": 9,
                                     "rows": 13, "seed": 42, "verify": True, "threshold": 0.8})
    assert removed_rows(out) == removed_rows(setup("plain"))
    verify = json.loads((out / "metrics.json").read_text())["clusters"]["minhash_verify"]
    assert verify["pairs_rejected"] == 0 and verify["pairs_accepted"] >= 2


def test_missing_input_is_one_clear_error(tmp_path, monkeypatch, capsys, repo_root):
    monkeypatch.chdir(tmp_path)
    code = main(["--params", str(repo_root / "params.yaml"), "--input", "nope", "--output", "o",
                 "--removed", "r", "--metrics", "m.json"])
    assert code == 1
    assert "nope: no shards found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.json").exists()


def test_lineage_edges_link_each_input_shard_to_its_output(setup, repo_root):
    from redrobe.config import load_params
    from redrobe.documents import file_digest
    from redrobe.stages.dedup import build_parser, run
    from redrobe.tracking import NullTracker

    class Recorder(NullTracker):
        def __init__(self):
            super().__init__()
            self.logged = {}

        def log_dict(self, payload, artifact_file):
            self.logged[artifact_file] = payload

    setup()  # writes the input shards
    args = build_parser().parse_args(["--input", "clean", "--output", "lin/out", "--removed",
                                      "lin/removed", "--metrics", "lin/m.json"])
    tracker = Recorder()
    run(load_params(repo_root / "params.yaml"), args, tracker)
    edges = tracker.logged["lineage/dedup.json"]["edges"]
    assert [(e["input"], e["output"]) for e in edges] == [
        (f"clean/{s}/part-0000{i}.parquet", f"lin/out/{s}/part-0000{i}.parquet")
        for s, i in LAYOUT]
    assert all(e["output_digest"] == file_digest(e["output"]) and
               e["input_digest"] == file_digest(e["input"]) for e in edges)
