"""End to end: the session's tiny pipeline (`dvc repro` of the tiny profile in a git copy
of this checkout, tests/pipeline_repo.py) is complete and consistent.

Then, in a copy of it: a second `dvc repro` runs nothing; a changed `clean` param
reruns clean and what follows, never ingest; and the Prefect flow, against a
real temporary Prefect server, reruns exactly the stages a changed `evaluate` param
touches, under a new MLflow parent run; and the notebooks execute against it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_repo import REPO, STAGES, clone, dvc, repo_env, set_params

from redrobe.accounting import check_accounting
from redrobe.documents import file_digest, list_shards, read_documents

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tiny_pipeline, tmp_path_factory):
    """A copy of the session's tiny pipeline (these tests change params and rerun)."""
    return clone(tiny_pipeline.root, tmp_path_factory.mktemp("e2e") / "repo"), tiny_pipeline.log


def _client(root: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def _runs(root: Path):
    client = _client(root)
    exp = client.get_experiment_by_name("redrobe")
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def test_every_stage_ran_and_accounting_holds(pipeline):
    root, log = pipeline
    for stage in STAGES:
        assert f"Running stage '{stage}'" in log
    for stage in ("ingest", "clean", "dedup", "quality", "tokenize", "bucket"):
        metrics = json.loads((root / "data" / "metrics" / f"{stage}.json").read_text())
        assert metrics["accounting"]["slices"], stage
        assert check_accounting(metrics) == [], stage
    partitions = set(json.loads((root / "data/metrics/ingest.json").read_text())["accounting"]["slices"])
    # wikipedia is routed by language: a partition per language, kept or not
    assert {"books", "c4", "common_crawl", "github"} | wikipedia_languages(root) <= partitions


def wikipedia_languages(root: Path) -> set[str]:
    """The partitions of the languages the run's params keep in the wikipedia slice."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    return {f"wikipedia/{code}" for code in params["ingest"]["languages"]["wikipedia"]["keep"]}


def test_eval_has_per_slice_perplexity_for_base_and_lora(pipeline):
    root, _ = pipeline
    evaluation = json.loads((root / "data/metrics/eval.json").read_text())
    languages = wikipedia_languages(root)
    for model in ("base", "lora"):
        per_slice = evaluation["models"][model]["slices"]
        assert set(per_slice) == {"books", "c4", "common_crawl", "github"} | languages
        for values in per_slice.values():
            assert values["perplexity"] > 1.0 and values["bits_per_byte"] > 0.0
    # the multilingual sample's languages reach evaluation: at least 12, in at least 5 scripts
    scripts = {doc.meta.get("script", "Latn")   # the enwiki articles carry no script: Latin
               for partition in languages for shard in list_shards(root / "data/interim/dedup", partition)
               for doc in read_documents(shard)}
    assert len(languages) >= 12 and len(scripts) >= 5
    report = (root / "data/reports/report.md").read_text()
    assert report.startswith("# redrobe pipeline report")
    assert all(f"| {partition} |" in report for partition in languages)
    assert (root / "data/reports/pretrain_curve.png").stat().st_size > 1000


def test_model_loads_in_plain_transformers(pipeline):
    root, _ = pipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(root / "data/models/base")
    tokenizer = AutoTokenizer.from_pretrained(root / "data/models/base")
    ids = tokenizer("The king", return_tensors="pt").input_ids
    assert model(ids).logits.shape[-1] == model.config.vocab_size


def test_mlflow_parent_with_a_child_per_stage_and_raw_shard_inputs(pipeline):
    root, _ = pipeline
    client, runs = _runs(root)
    parents = [r for r in runs if r.data.tags.get("redrobe.kind") == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(STAGES)
    ingest = next(r for r in children if r.info.run_name == "ingest")
    logged = {d.dataset.name: d.dataset.digest for d in ingest.inputs.dataset_inputs}
    shards = list_shards(root / "data" / "raw")
    assert shards
    for shard in shards:
        name = shard.relative_to(root / "data" / "raw").with_suffix("").as_posix()
        assert logged[name] == file_digest(shard, "md5")
    pretrain = next(r for r in children if r.info.run_name == "pretrain")
    assert client.search_logged_models([pretrain.info.experiment_id],
                                       filter_string=f"source_run_id = '{pretrain.info.run_id}'")


def test_second_repro_runs_nothing(pipeline):
    root, _ = pipeline
    log = dvc(root, "repro")
    assert "Running stage" not in log


def test_changed_clean_param_reruns_clean_and_what_follows_only(pipeline):
    root, _ = pipeline
    set_params(root, {"clean": {"c4": {"min_words_per_line": 4}}})  # changes c4-ruled texts
    log = dvc(root, "repro")
    assert "Running stage 'ingest'" not in log
    for stage in STAGES[1:]:
        assert f"Running stage '{stage}'" in log, stage


def test_prefect_flow_reruns_only_what_changed(pipeline):
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    root, _ = pipeline
    set_params(root, {"evaluate": {"gen_tokens": 4}})
    code = (
        "import json; from flows.pipeline import pipeline; "
        "s = pipeline(repo='.'); print('RESULT', json.dumps([[r['stage'], r['ran']] for r in s['stages']]))"
    )
    # a fresh server migrates its database first: on 2 busy cores that can take over 30 s
    with prefect_test_harness(server_startup_timeout=180):
        env = repo_env(root) | {"PREFECT_API_URL": PREFECT_API_URL.value()}
        proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                              capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1].splitlines()[0])
    ran = [stage for stage, did in result if did]
    assert [stage for stage, _ in result] == STAGES
    assert ran == ["evaluate", "report"]
    _, runs = _runs(root)
    flow_parent = [r for r in runs if r.data.tags.get("redrobe.launcher") == "prefect"]
    assert len(flow_parent) == 1
    children = {r.info.run_name for r in runs
                if r.data.tags.get("mlflow.parentRunId") == flow_parent[0].info.run_id}
    assert children == {"evaluate", "report"}


def test_notebooks_execute_against_the_run(pipeline, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    root, _ = pipeline
    monkeypatch.setenv("REDROBE_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    paths = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert paths
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        stale = [c.id for c in notebook.cells
                 if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
        assert not stale, f"{path.name} is committed with outputs in cells {stale}"
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(root)}}).execute()
        errors = [o for c in notebook.cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors}"
