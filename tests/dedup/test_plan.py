"""The partitioned plan decides exactly what the one-process plan decides (redrobe.dedup.plan)."""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from redrobe.config import Dedup, MinHashParams
from redrobe.dedup.components import EDGES, read_labels
from redrobe.dedup.plan import plan_partitioned, removals_of
from redrobe.dedup.shards import default_passes, plan_removals, sketch_shard
from redrobe.documents import count_documents, list_shards, read_documents
from redrobe.partfile import partition_of, write_partitioned


def random_corpus(write_shards, make_prose, replace_words, seed: int, shards: int = 6, docs: int = 14):
    """Shards over three slices with exact copies, case/punctuation copies, near copies
    at several edit distances, chains and unrelated texts, in random places."""
    rng = random.Random(seed)
    bases = [make_prose(seed * 100 + k, rng.randint(5, 160)) for k in range(12)]
    texts = []
    for _ in range(shards * docs):
        base = rng.choice(bases)
        kind = rng.random()
        if kind < 0.25:
            texts.append(base)
        elif kind < 0.4:
            texts.append(base.upper() + "!!")
        elif kind < 0.75 and len(base.split()) > 20:
            n = len(base.split())
            texts.append(replace_words(base, rng.sample(range(n), rng.randint(1, max(1, n // 12)))))
        elif kind < 0.8:
            texts.append("...")
        else:
            texts.append(make_prose(rng.randint(10**6, 10**7), rng.randint(1, 80)))
    layout, k = {}, 0
    for s in range(shards):
        name = ("books", "c4", "wikipedia")[s % 3]
        layout[(name, s)] = [(f"d{s}-{i}", texts[k + i]) for i in range(docs)]
        k += docs
    return write_shards(layout)


def one_process(root, params):
    sketches = [sketch_shard(str(p), params, batch_docs=4) for p in list_shards(root)]
    return plan_removals(sketches, params)


def partitioned(root, params, work, mapper=None):
    paths = [str(p) for p in list_shards(root)]
    plan = plan_partitioned(paths, params, str(work), mapper or (lambda f, t: [f(x) for x in t]), 4)
    return plan, [removals_of(plan.layout, s) for s in range(len(paths))]


PARAMS = {
    "default": Dedup(),
    "small partitions": Dedup(partition_keys=40),
    "within slice": Dedup(cross_slice=False, partition_keys=100),
    "no verify": Dedup(minhash=MinHashParams(verify=False), partition_keys=60),
    "exact only": Dedup(minhash=MinHashParams(enabled=False)),
    "minhash only": Dedup(exact=False, partition_keys=70),
    "loose verify": Dedup(minhash=MinHashParams(threshold=0.3, bands=20, rows=5), partition_keys=90),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", list(PARAMS))
def test_same_removals_and_clusters_as_one_process(write_shards, prose, change_words, tmp_path, seed, name):
    params = PARAMS[name]
    root = random_corpus(write_shards, prose, change_words, seed)
    expected = one_process(root, params)
    plan, removals = partitioned(root, params, tmp_path / "work")
    assert removals == expected.removals
    assert sum(map(len, removals)) > 0
    ignore = {"minhash_verify", "links"} if params.minhash.verify else {"minhash_verify"}
    assert {k: v for k, v in plan.clusters.items() if k not in ignore} == \
        {k: v for k, v in expected.clusters.items() if k not in ignore}


def test_many_partitions_and_groups_are_used(write_shards, prose, change_words, tmp_path):
    root = random_corpus(write_shards, prose, change_words, 4)
    plan, _ = partitioned(root, PARAMS["small partitions"], tmp_path / "w")
    assert plan.layout.parts > 10 and plan.layout.groups > 3


def test_object_storage_url_and_process_pool(write_shards, prose, change_words, tmp_path):
    root = random_corpus(write_shards, prose, change_words, 5)
    params = dataclasses.replace(PARAMS["small partitions"])
    _, local = partitioned(root, params, tmp_path / "w")
    _, memory = partitioned(root, params, "memory://plan-test/work")
    with ProcessPoolExecutor(2) as pool:
        _, pooled = partitioned(root, params, tmp_path / "p", lambda f, t: list(pool.map(f, t)))
    assert local == memory == pooled


def first_word_pairs(paths, survivors):
    """'Semantic' links for the test: survivors (doc numbers) whose texts start with the
    same word, chained in corpus order."""
    first = {}
    for shard, path in enumerate(paths):
        for row, doc in enumerate(read_documents(path)):
            number = (shard << 32) | row
            if number in survivors and doc.text.split():
                first.setdefault(doc.text.split()[0].lower(), []).append(number)
    return [(a, b) for docs in first.values() for a, b in zip(docs, docs[1:])]


@dataclasses.dataclass(frozen=True)
class OldSemantic:
    paths: tuple
    name: str = "semantic"
    reason: str = "semantic_duplicate"

    def link(self, corpus, uf):
        roots = uf.roots()
        survivors = {int(corpus.offsets[s]) + r for s in range(len(self.paths))
                     for r in range(int(corpus.offsets[s + 1] - corpus.offsets[s]))
                     if roots[int(corpus.offsets[s]) + r] == int(corpus.offsets[s]) + r}
        numbered = {(s << 32) | (i - int(corpus.offsets[s])): i for i in survivors
                    for s in [int(np.searchsorted(corpus.offsets, i, side="right")) - 1]}
        pairs = first_word_pairs(self.paths, set(numbered))
        for a, b in pairs:
            uf.union(numbered[a], numbered[b])
        return {"links": len(pairs)}


def new_semantic(paths):
    def semantic(layout, labels):
        removed = {int(n) for s in range(layout.shards) for n in read_labels(labels, s)["node"]}
        rows = [count_documents(p) for p in paths]
        survivors = {(s << 32) | r for s, n in enumerate(rows) for r in range(n)} - removed
        pairs = first_word_pairs(paths, survivors)
        edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        records = np.empty(len(edges), EDGES)
        records["a"], records["b"] = edges[:, 0], edges[:, 1]
        url = f"{layout.work}/semantic.part"
        parts = partition_of(records["a"].astype(np.uint64), layout.parts)
        write_partitioned(url, records, parts, layout.parts)
        return url, {"pairs": len(pairs)}
    return semantic


@pytest.mark.parametrize("seed", [1, 2])
def test_a_semantic_pass_gives_the_same_reasons_and_kept_documents(write_shards, prose, change_words,
                                                                   tmp_path, seed):
    root = random_corpus(write_shards, prose, change_words, seed)
    paths = tuple(str(p) for p in list_shards(root))
    params = Dedup(partition_keys=50)
    sketches = [sketch_shard(p, params, batch_docs=4) for p in paths]
    expected = plan_removals(sketches, params, default_passes(params) + [OldSemantic(paths)])
    plan = plan_partitioned(paths, params, str(tmp_path / "w"), lambda f, t: [f(x) for x in t], 4,
                            semantic=new_semantic(paths))
    removals = [removals_of(plan.layout, s) for s in range(len(paths))]
    assert removals == expected.removals
    assert any(r[1] == "semantic_duplicate" for shard in removals for r in shard.values())
    assert plan.clusters["links"]["semantic"] == expected.clusters["links"]["semantic"]


def test_a_one_byte_shingle_cache_rereads_and_decides_the_same(write_shards, prose, change_words, tmp_path,
                                                                monkeypatch):
    from redrobe.dedup import plan as plan_module
    root = random_corpus(write_shards, prose, change_words, 6)
    _, expected = partitioned(root, PARAMS["default"], tmp_path / "a")
    monkeypatch.setattr(plan_module, "SHINGLE_CACHE_BYTES", 1)
    _, removals = partitioned(root, PARAMS["default"], tmp_path / "b")
    assert removals == expected


def test_a_template_family_costs_one_comparison_per_member(write_shards, prose, change_words, tmp_path):
    base = prose(99, 600)
    # one word changed per member, 13+ words apart: any two members are at J >= 0.9
    family = [(f"t{i}", change_words(base, [14 * i])) for i in range(40)]
    root = write_shards({("c4", 0): family[:20], ("books", 1): family[20:]})
    params = Dedup(minhash=MinHashParams(bands=20, rows=5))
    plan, removals = partitioned(root, params, tmp_path / "w")
    assert sum(map(len, removals)) == 39
    assert removals == one_process(root, params).removals
    # all pairs would be 40 * 39 / 2 = 780; a member is compared with the first member of
    # its bucket's cluster (a band whose bucket misses some members has another first)
    assert plan.clusters["minhash_verify"]["pairs_checked"] <= 4 * 39
