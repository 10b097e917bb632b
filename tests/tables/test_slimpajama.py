"""Table "slimpajama": the short filter, cross-slice MinHash dedup, hash-partition sampling,
token shares (sum to 100) and the claims' verdicts, on a handful of crafted documents."""

from __future__ import annotations

import random

import numpy as np
import pytest

from redrobe.config import ConfigError, MinHashParams
from redrobe.dedup.minhash import MinHasher
from redrobe.documents import Document
from redrobe.tables import slimpajama as sp
from redrobe.tokenizer import encode_texts

VOCAB = [f"w{i}" for i in range(400)]


def prose(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(words)) + "."


def near_copy(text: str) -> str:
    """The same text with its last word changed: 13-gram Jaccard well above 0.8."""
    words = text.split()
    return " ".join(words[:-1] + ["changed."])


SHORT = "Too short!! " * 5   # 40 characters once punctuation and spaces go


def corpus() -> list[Document]:
    web = prose(1, 300)
    return [
        Document("cc0", web, "common_crawl"),
        Document("cc1", near_copy(web), "common_crawl"),   # near duplicate of cc0
        Document("cc2", prose(2), "common_crawl"),
        Document("cc3", SHORT, "common_crawl"),
        Document("c40", prose(3), "c4"),
        Document("c41", prose(2), "c4"),                   # exact copy of cc2: kept (c4 < common_crawl)
        Document("b0", prose(4, 400), "books"),
        Document("w0", prose(5), "wikipedia"),
        Document("g0", prose(6), "github"),
        Document("g1", prose(6), "github"),                # exact copy within github
    ]


def run(make_context, docs, settings=None):
    ctx = make_context(sp.SPEC, docs, settings=settings)
    [variant] = sp.SPEC.variants(ctx)
    result = sp.SPEC.run_variant(variant, ctx)
    return ctx, result


def test_content_chars_drops_ascii_punctuation_and_all_whitespace():
    assert sp.content_chars("a, b!\t c\n\u00a0d") == 4
    assert sp.content_chars("caf\u00e9 \u2026") == 5     # non-ASCII punctuation stays
    assert sp.content_chars(SHORT) == 40


def test_first_min_hasher_gives_row_zero_of_the_full_signature():
    params = MinHashParams()
    texts = [prose(i) for i in range(5)]
    full, _ = MinHasher.from_params(params).signatures(texts)
    first, _ = sp.first_min_hasher(params).signatures(texts)
    assert np.array_equal(first[:, 0], full[:, 0])


def test_partitions_keep_exact_copies_together_and_are_deterministic():
    hasher = sp.first_min_hasher(MinHashParams())
    texts = [prose(i) for i in range(40)] * 2
    first, has = hasher.signatures(texts)
    ids = [str(i) for i in range(80)]
    parts = sp.partitions_of(first[:, 0], has, ids, 4)
    assert np.array_equal(parts[:40], parts[40:])
    assert set(parts.tolist()) <= {0, 1, 2, 3} and len(set(parts.tolist())) > 1
    assert np.array_equal(parts, sp.partitions_of(first[:, 0], has, ids, 4))


def test_short_filter_and_cross_slice_dedup_counts(make_context):
    docs = corpus()
    _, result = run(make_context, docs)
    s = result["slices"]
    size = {d.id: len(d.text.encode()) for d in docs}
    cc = s["common_crawl"]
    assert (cc["docs"], cc["short_docs"], cc["short_bytes"]) == (4, 1, size["cc3"])
    # cc1 duplicates cc0; cc2 duplicates c41, which is kept (first in slice order)
    assert cc["dup_docs"] == 2 and cc["dup_bytes"] == size["cc1"] + size["cc2"]
    assert cc["cross_slice_dup_bytes"] == size["cc2"]
    assert s["c4"]["dup_docs"] == 0 and s["books"]["dup_docs"] == 0
    assert s["github"]["dup_docs"] == 1 and s["github"]["dup_bytes"] == size["g1"]
    assert result["clusters"]["duplicate_clusters"] == 3
    assert result["clusters"]["cross_slice_clusters"] == 1


def test_rows_shares_sum_to_100_and_paper_only_slices_appear(make_context):
    ctx, result = run(make_context, corpus())
    table = sp.SPEC.build({"dedup": result}, ctx)
    rows = {r["slice"]: r for r in table.rows}
    assert list(rows) == list(sp.PAPER) + ["total"]
    ours = [r for n, r in rows.items() if n != "total" and r["ours_docs"] is not None]
    assert len(ours) == 5
    for col in ("ours_share_before_pct", "ours_share_after_pct"):
        assert sum(r[col] for r in ours) == pytest.approx(100.0, abs=0.03)
        assert rows["total"][col] == 100.0
    assert sum(r["ours_tokens_after"] for r in ours) == rows["total"]["ours_tokens_after"]
    assert rows["arxiv"]["ours_docs"] is None and rows["arxiv"]["paper_byte_dedup_pct"] == 0.06
    assert rows["total"]["paper_tokens_after"] == 627e9
    cc = result["slices"]["common_crawl"]
    expected = round(100 * cc["dup_bytes"] / (cc["bytes"] - cc["short_bytes"]), 2)
    assert rows["common_crawl"]["ours_byte_dedup_pct"] == expected
    assert rows["common_crawl"]["ours_short_filter_docs_pct"] == 25.0
    assert any("uniform sample would understate" in n for n in table.notes)
    assert [c.holds for c in table.claims] == [True, True]


def test_same_inputs_give_the_same_result(make_context):
    _, first = run(make_context, corpus())
    _, again = run(make_context, corpus())
    assert first == again


def test_hash_partition_sampling_keeps_duplicates_with_their_originals(make_context):
    docs = [Document(f"d{i}", prose(100 + i), "c4") for i in range(30)]
    docs += [Document(f"e{i}", prose(100 + i), "common_crawl") for i in range(30)]   # copies
    _, full = run(make_context, docs)
    _, half = run(make_context, docs, {"partitions": 2, "keep": 1})
    sampled = half["sampling"]["docs_sampled"]
    assert half["sampling"]["docs_seen"] == 60 and 0 < sampled < 60
    # every copy travels with its original: each sampled pair is found and removed
    assert half["slices"]["c4"]["docs"] == half["slices"]["common_crawl"]["docs"]
    assert half["slices"]["common_crawl"]["dup_docs"] == half["slices"]["common_crawl"]["docs"]
    assert full["slices"]["common_crawl"]["dup_docs"] == 30


def test_bad_settings_name_the_key(make_context):
    with pytest.raises(ConfigError, match=r"tables\.slimpajama\.keep"):
        make_context(sp.SPEC, corpus(), settings={"partitions": 2, "keep": 3})
    with pytest.raises(ConfigError, match=r"tables\.slimpajama\.minhash\.bands"):
        make_context(sp.SPEC, corpus(), settings={"minhash": {"bands": 20, "rows": 9}})
    with pytest.raises(ConfigError, match=r"tables\.slimpajama\.min_chars"):
        make_context(sp.SPEC, corpus(), settings={"min_chars": -1})


def _rows(rates: dict[str, float]) -> list[dict]:
    return [{"slice": s, "ours_byte_dedup_pct": v} for s, v in rates.items()]


def test_dedup_pattern_claim_verdicts():
    holds = sp.dedup_pattern_claim(_rows({"common_crawl": 60.0, "c4": 7.0, "books": 2.0,
                                          "wikipedia": 2.5, "github": 90.0}))
    assert holds.holds is True          # github is code: not a prose slice
    assert sp.dedup_pattern_claim(_rows({"common_crawl": 6.0, "c4": 7.0, "books": 2.0,
                                         "wikipedia": 2.5})).holds is False
    assert sp.dedup_pattern_claim(_rows({"common_crawl": 60.0, "c4": 7.0, "books": 12.0,
                                         "wikipedia": 2.5})).holds is False
    assert sp.dedup_pattern_claim(_rows({"common_crawl": 60.0, "c4": 7.0})).holds is None


def test_share_shift_claim_verdicts():
    def rows(cc, books, wiki):
        return [{"slice": n, "ours_share_before_pct": b, "ours_share_after_pct": a}
                for n, (b, a) in (("common_crawl", cc), ("books", books), ("wikipedia", wiki))]
    assert sp.share_shift_claim(rows((70, 50), (2, 4), (2, 3))).holds is True
    assert sp.share_shift_claim(rows((70, 71), (2, 4), (2, 3))).holds is False


def test_token_counts_are_the_tokenizer_ids_of_the_normalized_text(make_context):
    docs = corpus()
    ctx, result = run(make_context, docs)
    c4_docs = [d.text for d in docs if d.source == "c4"]
    assert result["slices"]["c4"]["tokens"] == sum(map(len, encode_texts(ctx.tokenizer, c4_docs)))
