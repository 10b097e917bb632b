"""End to end: `redrobe lineage` before and after changing exactly one raw shard.

In a copy of the session's tiny pipeline, take `redrobe lineage data/models/base --json`;
then lower `ingest.sample.c4` by one document, which rewrites the c4 raw shard only,
`dvc repro pretrain` again and take the new model's lineage. The two must differ at
that shard and at the files derived from it, and nowhere else; the first model, asked
for by its MLflow logged-model id, must still trace to its own shards.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from pipeline_repo import TINY, clone, dvc, repo_env, set_params, sh

from redrobe.documents import file_digest, list_shards

pytestmark = pytest.mark.e2e

CHANGED = "data/raw/c4/part-00000.parquet"
MODEL = "data/models/base"


def _lineage(root: Path, model: str) -> dict:
    proc = subprocess.run(["redrobe", "lineage", model, "--json"], cwd=root, env=repo_env(root),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _raw_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): file_digest(p) for p in list_shards(root / "data/raw")}


@pytest.fixture(scope="module")
def runs(tiny_pipeline, tmp_path_factory):
    root = clone(tiny_pipeline.root, tmp_path_factory.mktemp("lineage") / "repo")
    runs = {"root": root, "first": _lineage(root, MODEL), "raw_first": _raw_digests(root),
            "weights_first": file_digest(root / MODEL / "model.safetensors")}
    set_params(root, {"ingest": {"sample": {"c4": TINY["ingest"]["sample"]["c4"] - 1}}})
    dvc(root, "repro", "pretrain")
    runs |= {"second": _lineage(root, MODEL), "raw_second": _raw_digests(root)}
    return runs


def _files(report: dict) -> dict[str, str]:
    """path -> sha256 of every file on the path (stage inputs and outputs)."""
    return {f["path"]: f["sha256"] for st in report["stages"] for f in st["inputs"] + st["outputs"]}


def _downstream(report: dict, start: str) -> set[str]:
    """``start`` and every file the report's stages derived from it, transitively."""
    found, grew = {start}, True
    while grew:
        grew = False
        for st in report["stages"]:
            if found & {f["path"] for f in st["inputs"]}:
                new = {f["path"] for f in st["outputs"]} - found
                found |= new
                grew = grew or bool(new)
    return found


def test_the_change_rewrites_exactly_one_raw_shard(runs):
    raw_first, raw_second = runs["raw_first"], runs["raw_second"]
    assert set(raw_first) == set(raw_second)
    assert {p for p in raw_first if raw_first[p] != raw_second[p]} == {CHANGED}


def test_lineage_names_every_stage_run_with_params_and_commit(runs):
    root, first = runs["root"], runs["first"]
    head = sh(["git", "rev-parse", "HEAD"], root).strip()
    assert [s["stage"] for s in first["stages"]] == ["pretrain", "bucket", "tokenize", "dedup",
                                                     "clean", "ingest"]
    assert {s["git_commit"] for s in first["stages"]} == {head}
    assert len({s["parent_run_id"] for s in first["stages"]}) == 1
    ingest = first["stages"][-1]
    assert ingest["params"]["ingest.sample.c4"] == str(TINY["ingest"]["sample"]["c4"])
    assert first["model"] | {"run_id": ""} == {
        "path": f"{MODEL}/model.safetensors", "sha256": runs["weights_first"], "run_id": "",
        "stage": "pretrain", "logged_model_id": None, "in_checkout": True}
    assert first["model"]["run_id"] == first["stages"][0]["run_id"]
    shards = {s["path"]: s for s in first["raw_shards"]}
    assert {p: s["sha256"] for p, s in shards.items()} == runs["raw_first"]
    for shard in shards.values():
        assert shard["md5"] and shard["dvc"]["out"] == "data/raw" and shard["sources"]
        assert all(src["distribution"] and "==" in src["distribution"] for src in shard["sources"])
    assert {src["distribution"] for src in shards[CHANGED]["sources"]} == {"gensim==4.4.0"}


def test_lineages_differ_exactly_at_the_changed_shard_and_what_derives_from_it(runs):
    root, first, second = runs["root"], runs["first"], runs["second"]
    old, new = _files(first), _files(second)
    assert set(old) == set(new)
    changed = {p for p in old if old[p] != new[p]}
    assert {CHANGED, CHANGED.replace("raw", "interim/clean"), CHANGED.replace("raw", "interim/dedup"),
            f"{MODEL}/model.safetensors"} <= changed
    assert changed <= _downstream(second, CHANGED)

    before = {s["path"]: s for s in first["raw_shards"]}
    after = {s["path"]: s for s in second["raw_shards"]}
    assert set(before) == set(after)
    for path in before:
        keep = ("path", "sha256", "md5", "sources")
        same = {k: before[path][k] for k in keep} == {k: after[path][k] for k in keep}
        assert same is (path != CHANGED), path
    # The whole data/raw directory has a new DVC hash: the one dvc.lock now records.
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["ingest"]["outs"]
    raw_md5 = next(o["md5"] for o in lock if o["path"] == "data/raw")
    assert {s["dvc"]["md5"] for s in after.values()} == {raw_md5}
    assert {s["dvc"]["md5"] for s in before.values()} != {raw_md5}
    # Only the changed param differs between the two ingest runs.
    p1, p2 = first["stages"][-1]["params"], second["stages"][-1]["params"]
    assert {k for k in p1.keys() | p2.keys() if p1.get(k) != p2.get(k)} == {"ingest.sample.c4"}
    assert not {s["run_id"] for s in first["stages"]} & {s["run_id"] for s in second["stages"]}


def test_the_replaced_model_still_traces_by_its_logged_model_id(runs):
    from mlflow import MlflowClient

    root, first = runs["root"], runs["first"]
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("redrobe")
    models = client.search_logged_models([exp.experiment_id],
                                         filter_string=f"source_run_id = '{first['model']['run_id']}'")
    assert len(models) == 1
    old = _lineage(root, models[0].model_id)
    assert old["model"]["sha256"] == first["model"]["sha256"]
    assert (old["model"]["logged_model_id"], old["model"]["in_checkout"]) == (models[0].model_id, False)
    assert old["stages"] == first["stages"]
    assert [{k: v for k, v in s.items() if k != "dvc"} for s in old["raw_shards"]] == \
        [{k: v for k, v in s.items() if k != "dvc"} for s in first["raw_shards"]]
    assert all(s["dvc"] is None for s in old["raw_shards"])  # not the checkout's model any more
