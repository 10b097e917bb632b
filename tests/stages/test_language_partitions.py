"""Language partitions ``<slice>/<language>`` through clean, dedup, quality, tokenize, bucket
and pretrain, and the per-partition evaluation rows.

A raw corpus as ingest writes it with ``wikipedia`` routed by language (its partitions
carry the ``language`` and ``language_score`` columns) beside an unrouted ``books``
slice is run through the data stages' ``main`` on tmp dirs, once for the module:

    pytest tests/stages/test_language_partitions.py -q
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from llm_fixtures import write_params as tiny_model_params  # tests/stages is on sys.path

from redrobe.accounting import check_accounting
from redrobe.config import Params, as_dict
from redrobe.curriculum.layout import DOCS_FILE, read_index, val_file
from redrobe.documents import Document, ShardWriter, list_shards, partition_of, read_documents, shard_path
from redrobe.evaluate import evaluate_model
from redrobe.evaluate.report import slice_bits_per_byte
from redrobe.lora import load_model
from redrobe.quality.suite import removal_rates
from redrobe.reporting import eval_table
from redrobe.stages import bucket, clean, dedup, pretrain, quality, tokenize
from redrobe.stages.evaluate import eval_metrics, validation_arrays
from redrobe.text.rpv2 import doc_score, signals_from_json

PHRASES = {
    "en": "the river runs to the sea and the town by it was built in old times",
    "de": "der Fluss fließt zum Meer und die Stadt an ihm wurde in alten Zeiten gebaut",
    "fr": "la rivière coule vers la mer et la ville près d elle fut bâtie jadis",
}
WORDS = {language: phrase.split() for language, phrase in PHRASES.items()}
#: partition -> documents (language, count); books is not routed
LAYOUT = {"books": ("en", 12), "wikipedia/en": ("en", 12), "wikipedia/de": ("de", 6),
          "wikipedia/fr": ("fr", 1)}
SCORES = {"en": 0.93, "de": 1.0, "fr": 1.0}
REPEATED = "Ista vrstica se ponavlja znova in znova."   # Slovenian, one line eight times
ROUTED = ("language", "language_score")


def text(language: str, seed: str) -> str:
    rng = random.Random(seed)
    words = WORDS[language]
    return " ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() + "."
                    for _ in range(8))


def corpus() -> dict[str, list[Document]]:
    docs: dict[str, list[Document]] = {}
    for partition, (language, count) in LAYOUT.items():
        routed = "/" in partition
        extra = {"language": language, "language_score": SCORES[language]} if routed else {}
        source = partition.split("/")[0]
        docs[partition] = [Document(f"{partition}/{i}", text(language, f"{partition}/{i}"), source,
                                    {}, dict(extra)) for i in range(count)]
    # the same text in two language partitions of one slice (an identifier's two answers
    # for one page): a duplicate even with cross_slice off, as the slice is one slice
    twin = docs["wikipedia/de"][0]
    docs["wikipedia/en"].append(Document("wikipedia/en/twin", twin.text, "wikipedia", {},
                                         {"language": "en", "language_score": 0.6}))
    # ... and across slices: not a duplicate with cross_slice off
    docs["books"].append(Document("books/twin", docs["wikipedia/en"][1].text, "books"))
    # a language whose one document the rules remove: the partition ends at clean
    docs["wikipedia/sl"] = [Document("wikipedia/sl/0", "\n".join([REPEATED] * 8), "wikipedia", {},
                                     {"language": "sl", "language_score": 1.0})]
    return docs


def write_raw(root: Path) -> None:
    for partition, docs in corpus().items():
        extra = ROUTED if "/" in partition else ()
        with ShardWriter(shard_path(root, partition, 0), batch_size=4, extra_columns=extra) as w:
            w.write_all(docs)


def write_params(path: Path) -> None:
    params = as_dict(Params())
    tiny = yaml.safe_load(tiny_model_params(path.with_name("tiny.yaml")).read_text())
    params["shared"].update(batch_docs=4, slices=["books", "wikipedia"], val_fraction=0.2, seed=7)
    params["clean"]["rule_sets"] = {"books": ["gopher_repetition"], "wikipedia": ["gopher_repetition"]}
    params["dedup"].update(cross_slice=False, semantic={**params["dedup"]["semantic"], "enabled": False})
    params["tokenize"].update(vocab_size=300)
    params["bucket"].update(num_buckets=2)
    params["lora"].update(slice="books")
    for section in ("model", "pretrain"):
        params[section].update(tiny[section])
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run(stage, *args: str) -> None:
    assert stage.main(list(args)) == 0, stage.__name__


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """Every stage from clean to pretrain, once, under one tmp dir (without MLflow: the
    conftest's switch is per test, this runs before it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        return run_stages(tmp_path_factory.mktemp("partitions"))


def run_stages(root: Path) -> Path:
    """Write the params and the raw partitions under ``root``, then run each stage there."""
    params = str(root / "params.yaml")
    write_params(root / "params.yaml")
    write_raw(root / "raw")
    m = root / "metrics"
    run(clean, "--params", params, "--input", str(root / "raw"), "--output", str(root / "clean"),
        "--removed", str(root / "rm-clean"), "--quarantine", str(root / "q-clean"),
        "--metrics", str(m / "clean.json"))
    run(dedup, "--params", params, "--input", str(root / "clean"), "--output", str(root / "dedup"),
        "--removed", str(root / "rm-dedup"), "--metrics", str(m / "dedup.json"))
    run(quality, "--params", params, "--raw", str(root / "raw"), "--clean", str(root / "clean"),
        "--input", str(root / "dedup"), "--clean-metrics", str(m / "clean.json"),
        "--dedup-metrics", str(m / "dedup.json"), "--output", str(root / "gate"),
        "--docs", str(root / "docs"), "--metrics", str(m / "quality.json"))
    run(tokenize, "--params", params, "--input", str(root / "dedup"), "--gate", str(root / "gate"),
        "--output", str(root / "tokenizer"), "--metrics", str(m / "tokenize.json"))
    run(bucket, "--params", params, "--input", str(root / "dedup"), "--tokenizer",
        str(root / "tokenizer"), "--output", str(root / "buckets"), "--metrics", str(m / "bucket.json"))
    run(pretrain, "--params", params, "--buckets", str(root / "buckets"), "--tokenizer",
        str(root / "tokenizer"), "--output", str(root / "base"), "--curve", str(m / "curve.csv"),
        "--metrics", str(m / "pretrain.json"))
    return root


def metrics(out: Path, stage: str) -> dict:
    return json.loads((out / "metrics" / f"{stage}.json").read_text())


PARTITIONS = {"books", "wikipedia/de", "wikipedia/en", "wikipedia/fr"}
EMPTIED = "wikipedia/sl"    # every document removed by clean


def test_every_data_stage_counts_per_partition_and_adds_up(out):
    for stage in ("clean", "dedup", "quality", "tokenize", "bucket"):
        m = metrics(out, stage)
        # a partition clean empties is counted by clean, then holds no document to count
        counted = PARTITIONS | ({EMPTIED} if stage == "clean" else set())
        assert set(m["accounting"]["slices"]) == counted, stage
        assert check_accounting(m) == [], stage
    assert metrics(out, "clean")["accounting"]["slices"][EMPTIED]["removed"] == 1


def test_partition_layout_is_read_back_at_both_depths(out):
    for tree in ("raw", "clean", "dedup"):
        shards = list_shards(out / tree)
        assert {partition_of(s, out / tree) for s in shards} == PARTITIONS | {EMPTIED}, tree
        assert [s.relative_to(out / tree).as_posix() for s in list_shards(out / tree, "wikipedia")] == [
            f"wikipedia/{lang}/part-00000.parquet" for lang in ("de", "en", "fr", "sl")]


def test_clean_judges_by_the_routed_language_and_keeps_its_columns(out):
    m = metrics(out, "clean")
    by_language = m["removal_by_language"]["slices"]
    assert set(by_language["wikipedia/de"]) == {"de"} and by_language["wikipedia/de"]["de"]["docs_in"] == 6
    assert set(by_language["wikipedia/en"]) == {"en"}   # the twin's German text: as routed
    assert m["slices"]["wikipedia/de"]["rule_sets"] == ["gopher_repetition"]   # the slice's
    for doc in read_documents(out / "clean" / "wikipedia" / "en" / "part-00000.parquet"):
        assert doc.extra["language"] == "en"
        score = float(doc.extra["language_score"])
        assert doc_score(signals_from_json(doc.extra["quality_signals"]), "redrobe_lang_score") == score
    books = pq.ParquetFile(out / "clean" / "books" / "part-00000.parquet").schema_arrow.names
    assert "language_score" not in books and "language" in books   # identified, as before


def test_dedup_groups_language_partitions_by_slice(out):
    m = metrics(out, "dedup")
    assert m["accounting"]["slices"]["wikipedia/en"]["removed_by_reason"] == {"exact_duplicate": 1}
    assert m["accounting"]["slices"]["books"]["removed"] == 0     # cross_slice off
    assert set(m["clusters"]["by_kept_slice"]) == {"books", "wikipedia"}
    removed = next(read_documents(out / "rm-dedup" / "wikipedia" / "en" / "part-00000.parquet"))
    assert (removed.id, removed.extra["duplicate_of"]) == ("wikipedia/en/twin", "wikipedia/de/0")


def test_quality_gate_passes_on_partitions_with_removal_rates_per_slice(out):
    gate = json.loads((out / "gate" / "validation.json").read_text())
    assert gate["success"] is True and gate["suites"]["clean.removal_rates"]["success"] is True
    # the emptied language (rate 1.0) counts in its slice's rate, not as a gate of its own
    rates = removal_rates(metrics(out, "clean"), "clean", Params().quality)
    assert rates["slice"].tolist() == ["books", "wikipedia"]
    wiki = rates.set_index("slice").loc["wikipedia"]
    assert (wiki["removed"], wiki["in"]) == (1, 21)


def test_tokenize_holds_out_per_partition_even_a_partition_of_one(out):
    m = metrics(out, "tokenize")
    assert m["accounting"]["slices"]["wikipedia/fr"]["removed_by_reason"] == {"heldout_validation": 1}
    assert m["accounting"]["slices"]["books"]["out"] >= 1   # a slice keeps a training document
    assert set(m["validation"]) == PARTITIONS | {EMPTIED}   # a row per shard's partition
    assert m["validation"][EMPTIED] == {"docs": 0, "bytes": 0, "tokens": 0, "bytes_per_token": None}


def test_bucket_writes_a_validation_array_per_partition(out):
    index = read_index(out / "buckets")
    assert set(index["val"]) == PARTITIONS
    assert index["val"]["wikipedia/fr"] == {**index["val"]["wikipedia/fr"], "docs": 1,
                                            "file": "val-wikipedia.fr.bin"}
    assert val_file("wikipedia/fr") == "val-wikipedia.fr.bin" and val_file("books") == "val-books.bin"
    assert all("/" not in p.name for p in (out / "buckets").iterdir())
    docs = pq.read_table(out / "buckets" / DOCS_FILE).to_pylist()
    assert {d["source"] for d in docs if d["split"] == "val"} == PARTITIONS
    assert metrics(out, "bucket")["slice_tokens"]["wikipedia/fr"]["train"] == 0


def test_pretrain_and_evaluate_report_each_partition(out):
    pre = metrics(out, "pretrain")
    assert set(pre["val_loss_by_slice"]) <= PARTITIONS and "wikipedia/en" in pre["val_loss_by_slice"]
    model, tokenizer = load_model(out / "base")
    torch.manual_seed(0)
    entry = evaluate_model(model, tokenizer, validation_arrays(str(out / "buckets")), seq_len=32,
                           max_tokens=200, batch_size=2, prompt="The", gen_tokens=2)
    assert set(entry["slices"]) == PARTITIONS
    assert all(row["bits_per_byte"] > 0 for row in entry["slices"].values())
    # the mean counts each slice once: wikipedia's languages pooled by their bytes
    rows = entry["slices"]
    wiki = [rows[p] for p in PARTITIONS if p.startswith("wikipedia/")]
    pooled = sum(r["nll"] for r in wiki) / math.log(2) / sum(r["bytes"] for r in wiki)
    assert slice_bits_per_byte(rows) == {"books": rows["books"]["bits_per_byte"],
                                         "wikipedia": pytest.approx(pooled)}
    assert entry["mean_bits_per_byte"] == pytest.approx((rows["books"]["bits_per_byte"] + pooled) / 2)
    names = eval_metrics({"base": entry}, {})["base"]
    assert "eval.base.wikipedia/de.bits_per_byte" in names
    rows = eval_table({"eval": {"models": {"base": entry}}})
    assert {r["slice"] for r in rows} == PARTITIONS
