"""Both passes over shards: sketches, cluster plan, kept/removed writing (redrobe.dedup.shards)."""

import dataclasses

import pyarrow.parquet as pq
import pytest

from redrobe.config import Dedup, MinHashParams
from redrobe.dedup import EXACT_DUPLICATE, NEAR_DUPLICATE
from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.shards import (
    CorpusIndex,
    LinkPass,
    MinHashPass,
    WriteTask,
    plan_removals,
    sketch_shard,
    write_shard,
)
from redrobe.documents import list_shards, read_documents
from redrobe.errors import InputError


@pytest.fixture
def corpus(write_shards, prose, change_words):
    base, u1, u2 = prose(11), prose(21), prose(22)
    near = change_words(base, [150])
    return write_shards({
        ("books", 0): [("a0", base), ("a1", near), ("u1", u1)],
        ("books", 1): [("a2", base.upper() + "!"), ("a3", "  " + near.upper()), ("u2", u2)],
        ("wikipedia", 0): [("w0", u1.title()), ("w1", change_words(u2, [3, 4])),
                           ("u3", prose(23)), ("p1", "!!!"), ("p2", "...")],
    })


def plan_for(root, params=None):
    params = params or Dedup()
    sketches = [sketch_shard(str(p), params, batch_docs=2) for p in list_shards(root)]
    return sketches, plan_removals(sketches, params)


def removals(plan):
    return {r[0]: r[1:] for shard in plan.removals for r in shard.values()}


def test_clusters_across_slices(corpus):
    _, plan = plan_for(corpus)
    assert removals(plan) == {
        "a1": (NEAR_DUPLICATE, "a0"),
        "a2": (EXACT_DUPLICATE, "a0"),
        # a3 is an exact copy of a1, which is a near copy of a0: near duplicate of the kept a0
        "a3": (NEAR_DUPLICATE, "a0"),
        "w0": (EXACT_DUPLICATE, "u1"),
        "w1": (NEAR_DUPLICATE, "u2"),
    }
    assert plan.clusters["duplicate_clusters"] == 3
    assert plan.clusters["largest_cluster"] == 4
    assert plan.clusters["documents_in_clusters"] == 8
    assert plan.clusters["cross_slice_clusters"] == 2
    assert plan.clusters["by_kept_slice"] == {"books": 3, "wikipedia": 0}


def test_removals_are_keyed_by_shard_and_row(corpus):
    _, plan = plan_for(corpus)
    assert [sorted(shard) for shard in plan.removals] == [[1], [0, 1], [0, 1]]


def test_within_slice_only(corpus):
    _, plan = plan_for(corpus, Dedup(cross_slice=False))
    assert set(removals(plan)) == {"a1", "a2", "a3"}
    assert plan.clusters["cross_slice_clusters"] == 0


def test_exact_only(corpus):
    _, plan = plan_for(corpus, Dedup(minhash=MinHashParams(enabled=False)))
    assert removals(plan) == {"a2": (EXACT_DUPLICATE, "a0"), "a3": (EXACT_DUPLICATE, "a1"),
                              "w0": (EXACT_DUPLICATE, "u1")}
    assert plan.clusters["links"]["minhash"] == 0


def test_minhash_only_still_labels_identical_text_exact(corpus):
    _, plan = plan_for(corpus, Dedup(exact=False))
    assert removals(plan) == removals(plan_for(corpus)[1])
    assert plan.clusters["links"]["exact"] == 0


def test_nothing_enabled_keeps_everything(corpus):
    _, plan = plan_for(corpus, Dedup(exact=False, minhash=MinHashParams(enabled=False)))
    assert removals(plan) == {}
    assert plan.clusters["duplicate_clusters"] == 0


def test_sketch_is_compact(corpus):
    sketch = sketch_shard(str(list_shards(corpus)[2]), Dedup(), batch_docs=2)
    assert sketch.ids == ["w0", "w1", "u3", "p1", "p2"]
    assert sketch.digests.shape == (5, 2) and sketch.band_keys.shape == (5, Dedup().minhash.bands)
    assert sketch.has_digest.tolist() == [True, True, True, False, False]
    assert sketch.has_signature.tolist() == [True, True, True, False, False]


def test_write_shard_splits_kept_and_removed(corpus, tmp_path):
    sketches, plan = plan_for(corpus)
    task = WriteTask(input=sketches[1].path, output=str(tmp_path / "out.parquet"),
                     removed=str(tmp_path / "removed.parquet"), batch_docs=2, rows=3,
                     removals=plan.removals[1])
    ledger = write_shard(task)
    kept = list(read_documents(task.output))
    gone = list(read_documents(task.removed))
    assert [d.id for d in kept] == ["u2"]
    assert [(d.id, d.extra["reason"], d.extra["duplicate_of"]) for d in gone] == [
        ("a2", EXACT_DUPLICATE, "a0"), ("a3", NEAR_DUPLICATE, "a0")]
    counts = ledger.slices["books"]
    assert (counts.docs_in, counts.docs_out, dict(counts.removed)) == (
        3, 1, {EXACT_DUPLICATE: 1, NEAR_DUPLICATE: 1})
    assert pq.read_schema(task.output).names == ["id", "text", "source", "meta"]


def test_write_shard_detects_a_changed_shard(corpus, tmp_path):
    sketches, _ = plan_for(corpus)
    task = WriteTask(input=sketches[1].path, output=str(tmp_path / "o.parquet"),
                     removed=str(tmp_path / "r.parquet"), batch_docs=2, rows=3,
                     removals={0: ("someone-else", EXACT_DUPLICATE, "a0")})
    with pytest.raises(InputError, match="changed during deduplication"):
        write_shard(task)
    with pytest.raises(InputError, match="pass 1 saw 4"):
        write_shard(dataclasses.replace(task, rows=4, removals={}))


def test_unreadable_shard_is_an_input_error(tmp_path):
    bad = tmp_path / "books" / "part-00000.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="part-00000.parquet: unreadable shard"):
        sketch_shard(str(bad), Dedup(), batch_docs=2)


def verified(threshold=0.8):
    return Dedup(minhash=MinHashParams(verify=True, threshold=threshold))


def test_verification_keeps_the_true_near_duplicates(corpus):
    _, plan = plan_for(corpus, verified())
    assert removals(plan) == removals(plan_for(corpus)[1])
    assert plan.clusters["minhash_verify"]["pairs_rejected"] == 0


def test_verification_rejects_a_low_jaccard_candidate(corpus):
    # a1 differs from a0 in one word of 300: exact 13-gram Jaccard 275/301 = 0.914, so it
    # is an LSH candidate; a threshold of 0.95 must reject that link, while the exact
    # copies (a2, w0, and a3 of a1) stay removed through the exact pass. w1 (two adjacent
    # words changed: 283/293 = 0.966) passes.
    _, plan = plan_for(corpus, verified(threshold=0.95))
    assert removals(plan) == {"a2": (EXACT_DUPLICATE, "a0"), "a3": (EXACT_DUPLICATE, "a1"),
                              "w0": (EXACT_DUPLICATE, "u1"), "w1": (NEAR_DUPLICATE, "u2")}
    verify = plan.clusters["minhash_verify"]
    assert (verify["pairs_rejected"], verify["pairs_accepted"]) == (1, 1)
    # candidates only: a0..a3, u2, w1 (u1/w0 are already one exact cluster)
    assert verify["documents_read"] == 6


def test_verification_reads_shingles_of_candidates_only(corpus):
    read = []

    def recording_map(fn, tasks):
        read.extend((t.path.split("/")[-2], t.rows) for t in tasks)
        return [fn(t) for t in tasks]

    sketches = [sketch_shard(str(p), verified(), batch_docs=2) for p in list_shards(corpus)]
    passes = [MinHashPass(verified().minhash, 2, recording_map)]
    plan_removals(sketches, verified(), passes)
    # Without the exact pass, exact copies (u1/w0, a0/a2) are MinHash candidates too;
    # u3, p1 and p2 share no bucket and are never read.
    assert read == [("books", (0, 1, 2)), ("books", (0, 1, 2)), ("wikipedia", (0, 1))]


def test_a_third_pass_slots_in_with_its_own_reason(corpus):
    class LinkU3ToA0:
        name, reason = "custom", "custom_duplicate"

        def link(self, index: CorpusIndex, uf: UnionFind) -> dict:
            ids = [i for s in index.sketches for i in s.ids]
            uf.union(ids.index("a0"), ids.index("u3"))
            return {"links": 1}

    pass_: LinkPass = LinkU3ToA0()
    sketches = [sketch_shard(str(p), Dedup(), batch_docs=2) for p in list_shards(corpus)]
    from redrobe.dedup.shards import default_passes
    plan = plan_removals(sketches, Dedup(), default_passes(Dedup()) + [pass_])
    gone = removals(plan)
    assert gone["u3"] == ("custom_duplicate", "a0")
    assert gone["a1"] == (NEAR_DUPLICATE, "a0") and gone["a2"] == (EXACT_DUPLICATE, "a0")
    assert plan.clusters["links"]["custom"] == 1
