"""The partitioned checks report what GE reports on the one-process frame of every document."""

import json

import pytest

from redrobe.config import Quality
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.parallel import LocalExecutor
from redrobe.quality import partitioned
from redrobe.quality.partitioned import (
    EXAMPLES,
    Checks,
    UniqueTask,
    summarize_stage,
    unique_task,
    witness_frame,
)
from redrobe.quality.suite import Validator, shards_frame, stage_suites, summarize_shards

SLICES = ["books", "c4", "wiki"]
Q = Quality(max_chars=20)


def _signals(i):
    frac = 1.5 if i % 7 == 0 else 0.5           # out of [0, 1] every 7th document
    return json.dumps({"rps_doc_frac_unique_words": [[0, 5, frac]], "rps_doc_word_count": [[0, 5, i]]})


def _docs(shard):
    """Null ids, ids repeated within and across shards, lengths and sources out of range."""
    for i in range(40):
        doc_id = None if i % 13 == 5 else f"d{i % 9}" if i % 3 == 0 else f"s{shard}/{i}"
        text = "x" * i                             # 0 and > 20 characters fail
        source = "c4" if i % 11 else ("junk" if i % 2 else None)
        yield Document(doc_id, text, source, {}, {"quality_signals": _signals(i) if i % 5 else None})


def _corpus(tmp_path):
    paths = []
    for shard in range(3):
        path = shard_path(tmp_path, "c4", shard)
        extra = ("quality_signals",) if shard != 1 else ()   # shard 1 has no signal column
        with ShardWriter(path, extra_columns=extra) as w:
            for d in _docs(shard):
                w.write(d if shard != 1 else Document(d.id, d.text, d.source))
        paths.append(path)
    return paths


def _raw_results(validator):
    """Every expectation's full GE result (what the Data Docs render), per suite.

    Less the row positions of the unexpected values: the witness's own, rendered nowhere
    and left out of validation.json.
    """
    store = validator.context.validation_results_store
    found = {}
    for key in store.list_keys():
        result = store.get(key)
        found[result.suite_name] = [
            (r.expectation_config.type,
             {k: v for k, v in r.result.items() if k != "partial_unexpected_index_list"})
            for r in result.results]
    return found


def _one_process(paths, checks):
    docs, shards = summarize_shards(paths, checks.batch_docs, [s for s, _, _ in checks.signals],
                                    checks.extra_columns)
    validator = Validator()
    return validator.validate_all(stage_suites("clean", docs, shards, None, Q, SLICES)), validator


def _partitioned(paths, checks, work, mapper):
    summary = summarize_stage([str(p) for p in paths], checks, str(work), mapper, 120)
    plan = stage_suites("clean", witness_frame(summary, checks), shards_frame(summary.shards), None, Q,
                        SLICES, per_slice=summary.per_slice())
    validator = Validator()
    totals = summary.totals(checks)
    return validator.validate_all(plan, {name: totals for name, _, _ in plan}), validator, summary


def _serial(fn, tasks):
    return [fn(t) for t in tasks]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    paths = _corpus(tmp)
    checks = Checks.of(Q, SLICES, 16)
    expected, validator = _one_process(paths, checks)
    return paths, checks, expected, _raw_results(validator)


def test_same_report_and_docs_results_as_one_process(oracle, tmp_path, monkeypatch):
    paths, checks, expected, raw = oracle
    monkeypatch.setattr(partitioned, "PARTITION_IDS", 7)   # many id partitions
    got, validator, summary = _partitioned(paths, checks, tmp_path, _serial)
    assert got == expected
    assert _raw_results(validator) == raw
    failed = {c["expectation"] + ":" + str(c["kwargs"].get("column")): c["result"].get("unexpected_count")
              for s in got.values() for c in s["checks"] if not c["success"]}
    # the corpus fails every row-level check more often than the witness holds examples
    assert failed["expect_column_values_to_be_unique:id"] > EXAMPLES
    assert failed["expect_column_values_to_be_between:chars"] > EXAMPLES
    assert {"expect_column_values_to_not_be_null:id", "expect_column_values_to_be_in_set:source",
            "expect_column_values_to_be_between:rps_doc_frac_unique_words",
            "expect_column_distinct_values_to_contain_set:source"} <= set(failed)
    assert len(witness_frame(summary, checks)) <= EXAMPLES * 8 + len(SLICES)


def test_same_report_with_a_process_pool_and_one_partition(oracle, tmp_path):
    paths, checks, expected, _ = oracle
    with LocalExecutor(2) as executor:
        got, _, summary = _partitioned(paths, checks, tmp_path, executor.map)
    assert got == expected
    assert summary.rows == 120 and summary.sources["c4"] == 3 * 36


def test_passing_corpus_passes(tmp_path):
    path = shard_path(tmp_path, "c4", 0)
    with ShardWriter(path) as w:
        w.write_all(Document(f"c4/{i}", "text", "c4") for i in range(30))
    checks = Checks.of(Quality(), ["c4"], 8)
    docs, shards = summarize_shards([path], 8)
    expected = Validator().validate_all(stage_suites("ingest", docs, shards, None, Quality(), ["c4"]))
    summary = summarize_stage([str(path)], checks, str(tmp_path / "work"), _serial, 30)
    plan = stage_suites("ingest", witness_frame(summary, checks), shards_frame(summary.shards), None,
                        Quality(), ["c4"], per_slice=summary.per_slice())
    got = Validator().validate_all(plan, {name: summary.totals(checks) for name, _, _ in plan})
    assert got == expected and all(s["success"] for s in got.values())
    assert len(witness_frame(summary, checks)) == 1      # one row: the slice present


def test_unique_compares_exact_ids(tmp_path):
    """Ids equal up to a trailing NUL, or only as text of another type, are different ids."""
    ids = ["a", "a\0", "a", 7, "7", 7, "b\0\0", "b\0\0"]
    for shard, part in enumerate((ids[:4], ids[4:])):
        partitioned._write_ids(partitioned.ids_url(str(tmp_path), shard),
                               [partitioned._encode_id(v) for v in part], list(range(len(part))), 2)
    found = [unique_task(UniqueTask(str(tmp_path), 2, p)) for p in range(2)]
    examples = sorted(e for _, part in found for e in part)
    assert sum(n for n, _ in found) == 6
    assert examples == [(0, 0, "a"), (0, 2, "a"), (0, 3, 7), (1, 1, 7), (1, 2, "b\0\0"), (1, 3, "b\0\0")]


def test_a_damaged_shard_is_named(tmp_path):
    path = shard_path(tmp_path, "c4", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(Exception, match="part-"), LocalExecutor(1) as executor:
        summarize_stage([str(path)], Checks.of(Quality(), ["c4"], 8), str(tmp_path / "w"), executor.map, 1)


def test_duplicates_whose_twins_lie_past_the_examples(tmp_path):
    """Shard 1 repeats shard 0's 25 ids: the first 20 duplicate rows are all different ids."""
    paths = [shard_path(tmp_path, "c4", s) for s in range(2)]
    for path in paths:
        with ShardWriter(path) as w:
            w.write_all(Document(f"u{i}", "text", "c4") for i in range(25))
    checks = Checks.of(Quality(), ["c4"], 8)
    docs, shards = summarize_shards(paths, 8)
    expected = Validator().validate_all(stage_suites("dedup", docs, shards, None, Quality(), ["c4"]))
    summary = summarize_stage([str(p) for p in paths], checks, str(tmp_path / "work"), _serial, 50)
    plan = stage_suites("dedup", witness_frame(summary, checks), shards_frame(summary.shards), None,
                        Quality(), ["c4"], per_slice=summary.per_slice())
    got = Validator().validate_all(plan, {name: summary.totals(checks) for name, _, _ in plan})
    assert got == expected
    unique = got["dedup.documents"]["checks"][1]
    assert unique["result"] == {"unexpected_count": 50,
                                "partial_unexpected_list": [f"u{i}" for i in range(20)]}
