"""benchmarks/scale.py: the dedup scale ladder, run on two tiny rungs.

The sentence pool is the repository's own prose (README.md and docs/*.md), so no ingest
runs. The stage really runs twice as a child process with task profiling on; the test
checks the results' structure, the quality numbers against the planted truth, the
identity with the one-process plan, and the docs section, never timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from bench_scripts import load_script

from redrobe.documents import list_shards

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RUNGS = (300, 900)
FUNCTIONS = {"keys_task", "bucket_task", "shingle_task", "verify_task", "claim_task", "resolve_task",
             "planned_write"}


scale = load_script("scale")
render_docs = load_script("render_docs")


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("scale")
    out = tmp / "results" / "scale.json"
    pool = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    args = ["--rungs", *map(str, RUNGS), "--workers", "2", "--shard-docs", "150", "--work", str(tmp / "work"),
            "--out", str(out), "--pool-text", *map(str, pool)]
    assert scale.main(args) == 0
    return json.loads(out.read_text()), tmp / "work"


def test_every_rung_is_measured(result) -> None:
    data, _ = result
    assert [r["docs"] for r in data["rungs"]] == list(RUNGS)
    assert data["machine"]["cpus"] >= 1 and data["machine"]["cpu"] and len(data["commit"]) >= 7
    assert "NOT RUN HERE" in data["cluster_command"] and "--work-dir s3://" in data["cluster_command"]
    for rung in data["rungs"]:
        corpus = rung["corpus"]
        assert corpus["docs"] == rung["docs"] and corpus["shards"] == rung["docs"] // 150
        assert corpus["mb"] > 0 and sum(corpus["planted_pairs"].values()) > 0
        assert rung["driver"]["peak_rss_mb"] > 0 and rung["driver"]["fds"] > 0 and rung["driver"]["maps"] > 0
        assert rung["driver"]["own_cpu_s"] >= 0 and rung["task_cpu_s"] > 0
        assert FUNCTIONS <= set(rung["functions"])
        keys, writes = rung["functions"]["keys_task"], rung["functions"]["planned_write"]
        assert keys["tasks"] == writes["tasks"] == corpus["shards"]
        assert keys["peak_rss_mb"] > 0 and keys["result_bytes_total"] >= keys["result_bytes_max"] > 0
        assert rung["stage_metrics"]["partitions"]["key_partitions"] >= 1
        assert rung["stage_metrics"]["clusters"]["duplicate_clusters"] > 0


def test_quality_against_the_planted_truth(result) -> None:
    data, _ = result
    for rung in data["rungs"]:
        q = rung["quality"]
        assert q["pairs_j_ge_085"] > 0 and q["removed"] > 0
        assert q["recall_j_ge_085"] >= 0.95, q
        assert q["precision"] == 1.0 and q["wrong_removals"] == 0, q
        assert q["precision_by_family"] <= q["precision"]
        assert q["removed"] - q["outside_planted_family"] + q["chance_duplicates"] == q["removed"]
        assert 0 <= q["linked_j_lt_070"] <= 1


def test_a_wrong_removal_lowers_precision(result) -> None:
    _, work = result
    corpus = work / "corpus-300-seed0"
    removed = scale.removed_map(work / "run-300-seed0-w2" / "removed")
    truth = pq.read_table(corpus / "truth.parquet", columns=["id_a", "id_b"]).to_pydict()
    planted = set(truth["id_a"]) | set(truth["id_b"])
    ids = [i for shard in list_shards(corpus) for i in pq.read_table(shard, columns=["id"])["id"].to_pylist()]
    a, b = [i for i in ids if i not in planted and i not in removed][:2]
    q = scale.quality(corpus, {**removed, b: ("near_duplicate", a)}, 0.8)
    assert q["wrong_removals"] == 1 and q["wrong_examples"] == [b]
    assert q["precision"] == round(1 - 1 / (len(removed) + 1), 6)


def test_identity_with_the_one_process_plan(result) -> None:
    data, _ = result
    assert data["rungs"][0]["identical_to_one_process"] is True
    assert data["identical_to_one_process"] is True
    assert "identical_to_one_process" not in data["rungs"][1]


def test_targets_are_evaluated(result) -> None:
    data, _ = result
    targets = data["targets"]
    for fn in FUNCTIONS:
        assert f"peak_rss_mb {fn}" in targets
        rates = data["function_rates"][fn]
        assert rates["ratio"] == round(rates["largest"] / rates["smallest"], 3)
    for name in ("peak_rss_mb driver", "docs_per_s_per_core overall", "recall J>=0.85 (every rung)",
                 "precision (every rung)", "identical_to_one_process (smallest rung)"):
        assert {"value", "limit", "op", "ok"} <= set(targets[name])
    assert targets["precision (every rung)"]["ok"]
    assert targets["identical_to_one_process (smallest rung)"]["ok"]
    assert data["all_ok"] == all(t["ok"] for t in targets.values())


def test_a_cached_corpus_is_reused(result, capsys) -> None:
    _, work = result
    capsys.readouterr()
    out = work.parent / "again.json"
    pool = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    scale.main(["--rungs", "300", "--shard-docs", "150", "--workers", "1", "--work", str(work),
                "--out", str(out), "--pool-text", *map(str, pool)])
    assert "generating" not in capsys.readouterr().out
    assert json.loads(out.read_text())["identical_to_one_process"] is True


def test_the_docs_section(result, tmp_path) -> None:
    data, _ = result
    (tmp_path / "scale.json").write_text(json.dumps(data))
    text = render_docs.render_text(tmp_path, BENCH)
    assert "## scale: " in text and render_docs.FALLBACK_NOTE not in text
    assert "| 300 | 2 |" in text and "| 900 | 6 |" in text
    assert "precision (every rung)" in text and "NOT RUN HERE" in text
    assert "python benchmarks/scale.py --rungs" in text   # the rerun commands from the docstring
    assert text == render_docs.render_text(tmp_path, BENCH)


def test_a_removal_through_a_chain_of_real_links_is_right(tmp_path) -> None:
    """Clusters are connected components: C, a near copy of B only, is removed as a copy of
    A when B is a near copy of A; that is right. D, a copy of nothing, is not."""
    import pyarrow as pa

    from redrobe.documents import Document, ShardWriter, shard_path
    words = [f"w{i}" for i in range(400)]
    a = " ".join(words)
    b = " ".join(words[:150] + ["x"] + words[151:])                       # J(a, b) ~ 0.94
    c = " ".join(words[:150] + ["x"] + words[151:300] + ["y"] + words[301:330] + ["z"] + words[331:])
    c = " ".join(c.split()[:120] + ["q"] + c.split()[121:])              # J(b, c) >= 0.8 > J(a, c)
    d = " ".join(f"v{i}" for i in range(400))
    with ShardWriter(shard_path(tmp_path, "c4", 0)) as w:
        for doc_id, text in (("a", a), ("b", b), ("c", c), ("d", d)):
            w.write(Document(id=doc_id, text=text, source="c4"))
    pq.write_table(pa.table({"family": pa.array([], pa.int64()), "id_a": pa.array([], pa.string()),
                             "id_b": pa.array([], pa.string()), "jaccard": pa.array([], pa.float64())}),
                   tmp_path / "truth.parquet")
    removed = {"b": ("near_duplicate", "a"), "c": ("near_duplicate", "a"), "d": ("near_duplicate", "a")}
    q = scale.quality(tmp_path, removed, 0.8)
    assert q["wrong_examples"] == ["d"] and q["chance_duplicates"] == 2
