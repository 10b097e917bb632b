"""benchmarks/scale_corpus.py: the synthetic corpus of the dedup scale ladder.

The sentence pool is seeded pseudo-word prose, so no ingest runs; one small corpus is
generated per module and checked for determinism, layout, and that its ground truth
says what the documents are.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest
from bench_scripts import load_script

from redrobe.dedup.minhash import MinHasher, exact_jaccard
from redrobe.documents import Document, ShardWriter, list_shards, read_documents

DOCS, SHARD_DOCS, MEAN_WORDS = 1200, 100, 150


sc = load_script("scale_corpus")


def _texts() -> list[str]:
    """Prose of seeded pseudo-words: the same on every machine and independent of the
    repository's docs, whose edits must not move a planted pair across a threshold."""
    rng = np.random.default_rng(2026)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocabulary = sorted({"".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(6000)})
    texts = []
    for _ in range(60):
        sentences = [" ".join(rng.choice(vocabulary, size=rng.integers(8, 21))).capitalize() + "."
                     for _ in range(15)]
        texts.append(" ".join(sentences))
    return texts


@pytest.fixture(scope="module")
def pool() -> list[str]:
    sentences = sc.sentence_pool(_texts())
    assert len(sentences) > 500
    return sentences


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, pool):
    out = tmp_path_factory.mktemp("corpus")
    summary = sc.generate(out, DOCS, 7, pool, shard_docs=SHARD_DOCS, mean_words=MEAN_WORDS)
    docs = {d.id: d for shard in list_shards(out) for d in read_documents(shard)}
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    return out, summary, docs, truth


def _index(doc_id: str) -> int:
    return int(doc_id.rsplit("-", 1)[1])


def test_split_sentences_drops_short_ones_and_collapses_whitespace():
    text = ("Too short. This sentence has   more than six words in it.\n"
            "Another line with quite enough words here")
    assert list(sc.split_sentences(text)) == ["This sentence has more than six words in it.",
                                            "Another line with quite enough words here"]
    assert sc.sentence_pool([text, text]) == list(sc.split_sentences(text))


def test_same_arguments_give_byte_identical_files(tmp_path, corpus, pool):
    out, _, _, _ = corpus
    again = tmp_path / "again"
    sc.generate(again, DOCS, 7, pool, shard_docs=SHARD_DOCS, mean_words=MEAN_WORDS)
    files = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.parquet"))
    for rel in files:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = tmp_path / "other"
    sc.generate(other, DOCS, 8, pool, shard_docs=SHARD_DOCS, mean_words=MEAN_WORDS)
    assert (other / files[0]).read_bytes() != (out / files[0]).read_bytes()


def test_layout_is_the_cleaned_shard_layout(corpus):
    out, summary, docs, _ = corpus
    shards = list_shards(out)
    assert len(shards) == summary["shards"] == DOCS // SHARD_DOCS
    assert {s.parent.name for s in shards} == set(summary["slices"]) == set(sc.SLICES)
    assert all(s.name.startswith("part-") for s in shards)
    assert len(docs) == DOCS == summary["docs"]
    for shard in shards:
        rows = list(read_documents(shard))
        assert len(rows) == SHARD_DOCS
        assert {d.source for d in rows} == {shard.parent.name}
        assert all(d.id.startswith(shard.parent.name + "/") and d.text.strip() for d in rows)
    words = np.array([len(d.text.split()) for d in docs.values()])
    assert 0.7 * MEAN_WORDS < np.median(words) < 2 * MEAN_WORDS
    assert json.loads((out / "corpus.json").read_text()) == summary


def test_recorded_jaccard_equals_recomputed(corpus):
    _, summary, docs, truth = corpus
    hasher = MinHasher()
    sets = {}
    for row in truth:
        for key in ("id_a", "id_b"):
            if row[key] not in sets:
                sets[row[key]] = hasher.shingle_set(docs[row[key]].text)
        assert exact_jaccard(sets[row["id_a"]], sets[row["id_b"]]) == row["jaccard"], row
    counts = defaultdict(int)
    for row in truth:
        counts[row["kind"]] += 1
    assert dict(counts) == summary["planted_pairs"]
    assert 0.1 <= summary["planted_docs"] / DOCS <= 0.2


def test_near_duplicates_spread_over_half_to_one(corpus):
    _, _, docs, truth = corpus
    near = [r for r in truth if r["kind"] == "near"]
    values = np.array([r["jaccard"] for r in near])
    bins = np.histogram(values, bins=[0.5, 0.6, 0.7, 0.8, 0.9, 0.9999, 1.0001])[0]
    assert (bins > 0).all(), bins
    base = {}
    for row in near:
        base.setdefault(row["family"], row["id_a"])   # the first pair is (base, member 1)
    copies = [r for r in near if r["id_a"] == base[r["family"]] and r["variant"] in ("exact", "format")]
    assert {r["variant"] for r in copies} == {"exact", "format"}
    for row in copies:
        assert row["jaccard"] == 1.0
        same = docs[row["id_a"]].text == docs[row["id_b"]].text
        assert same == (row["variant"] == "exact"), row


def test_chains_link_a_to_c_only_through_b(corpus):
    _, _, _, truth = corpus
    chains = defaultdict(dict)
    for row in truth:
        if row["kind"] == "chain":
            chains[row["family"]][(row["id_a"], row["id_b"])] = row["jaccard"]
    assert chains
    for pairs in chains.values():
        (a, b), (_, c) = list(pairs)[:2]   # recorded in the order (A,B), (A,C), (B,C)
        assert list(pairs) == [(a, b), (a, c), (b, c)]
        assert pairs[(a, b)] >= 0.85 and pairs[(b, c)] >= 0.85, pairs
        assert pairs[(a, c)] < 0.8, pairs


def test_families_span_shards_and_slices(corpus):
    _, _, _, truth = corpus
    members = defaultdict(set)
    for row in truth:
        members[row["family"]] |= {row["id_a"], row["id_b"]}
    shards = [{_index(i) // SHARD_DOCS for i in ids} for ids in members.values()]
    slices = [{i.split("/")[0] for i in ids} for ids in members.values()]
    assert np.mean([len(s) > 1 for s in shards]) > 0.8
    assert np.mean([len(s) > 1 for s in slices]) > 0.7


def test_template_family_is_large_and_tight(corpus):
    _, summary, docs, truth = corpus
    rows = [r for r in truth if r["kind"] == "template"]
    assert len(rows) == summary["template_docs"] - 1 >= 2
    assert len({r["id_a"] for r in rows}) == 1
    assert summary["template_min_jaccard"] >= 0.85
    assert all(r["jaccard"] >= summary["template_min_jaccard"] for r in rows)
    # every pair, not just those with the first member
    hasher = MinHasher()
    ids = [rows[0]["id_a"], *(r["id_b"] for r in rows)]
    sets = [hasher.shingle_set(docs[i].text) for i in ids]
    worst = min(exact_jaccard(sets[i], sets[j]) for i in range(len(sets)) for j in range(i))
    assert worst >= summary["template_min_jaccard"]


def test_background_documents_are_not_near_duplicates(corpus):
    _, _, docs, truth = corpus
    planted = {r[k] for r in truth for k in ("id_a", "id_b")}
    rest = [d.text for i, d in sorted(docs.items()) if i not in planted][:150]
    hasher = MinHasher()
    sets = [hasher.shingle_set(t) for t in rest]
    worst = max(exact_jaccard(sets[i], sets[j]) for i in range(len(sets)) for j in range(i))
    assert worst < 0.5


def test_cli_reads_a_raw_shard_dir(tmp_path):
    raw = tmp_path / "raw"
    with ShardWriter(raw / "wikipedia" / "part-00000.parquet") as writer:
        for n, text in enumerate(_texts()):
            writer.write(Document(id=f"wikipedia/{n}", text=text, source="wikipedia"))
    out = tmp_path / "out"
    assert sc.main(["--docs", "400", "--out", str(out), "--seed", "1", "--raw", str(raw),
                    "--shard-docs", "100", "--mean-words", "100"]) == 0
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["docs"] == 400 and summary["shards"] == 4
    assert sum(1 for shard in list_shards(out) for _ in read_documents(shard)) == 400
