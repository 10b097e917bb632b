"""The model-side stages on a real S3 server: quality, tokenize and bucket write to
s3:// URLs, tokenize, bucket and pretrain read them through the fetch cache.

One small corpus is ingested, cleaned and deduplicated locally (module fixture); quality
-> tokenize -> bucket -> pretrain then run twice, once with every output local and once
with every output (and so every model-side input) in a bucket on moto's server
(tests/s3_server.py). The bucket's manifests must list the local run's files, sizes and
sha256s, and pretraining on the fetched inputs must give the local run's weights, data
order, curve and metrics.
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from s3_server import S3Server  # the fixtures s3 and s3_server come from conftest.py

from redrobe.stages import bucket as bucket_stage
from redrobe.stages import clean as clean_stage
from redrobe.stages import dedup as dedup_stage
from redrobe.stages import ingest as ingest_stage
from redrobe.stages import pretrain as pretrain_stage
from redrobe.stages import quality as quality_stage
from redrobe.stages import tokenize as tokenize_stage
from redrobe.storage import MANIFEST, OBJECTS, TREES, fetch_tree, publish_tree, read_manifest

#: what GE stamps run times into: its site's pages (and their names) differ between runs
DOCS_HTML = ".html"
RUN_TIME = re.compile(r"\d{8}T\d{6}\.\d{6}Z")
#: pretrain metrics that measure time, not what was trained
TIMED = ("wall_seconds", "tokens_per_s", "train_seconds", "mfu")


WORDS = ("the harbour wall and the boats wait for morning light while gulls circle above "
         "old piers where fishermen mend their nets before the tide turns back toward "
         "quiet villages along a rocky coast with lighthouses standing over cold water")


def _prose(i: int) -> str:
    """A varied document the clean rules keep; 4k and 4k + 1 are exact duplicates."""
    words = WORDS.split()
    rng = random.Random(i - (i % 4 == 1))
    return " ".join(" ".join(rng.choice(words) for _ in range(14)).capitalize() + "."
                    for _ in range(20))


def _params(root: Path, repo_root: Path) -> Path:
    """The repository's params with a files-mode corpus, a small vocabulary and the tiny
    model and few steps of the pretrain stage tests."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["ingest"].update(mode="files", paths=[], inputs=[{"path": f"{root / 'corpus'}/*"}],
                            shard_docs=10)
    params["dedup"]["semantic"]["enabled"] = False
    params["shared"].update(workers=1, batch_docs=8, slices=["c4", "wikipedia"])
    params["lora"]["slice"] = "wikipedia"
    params["tokenize"].update(vocab_size=300)
    params["bucket"].update(num_buckets=2)
    params["model"].update(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                           intermediate_size=64, max_seq_len=32)
    params["pretrain"].update(steps=4, batch_size=2, grad_accum=1, warmup_steps=1, eval_every=2,
                              eval_batches=1, precision="fp32", threads=1, peak_flops=1.0e10,
                              compile=False)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """raw, clean and dedup outputs (local) with their metrics, and the params."""
    root = tmp_path_factory.mktemp("models-on-s3")
    repo_root = Path(__file__).resolve().parents[1]
    (root / "corpus").mkdir()
    (root / "corpus" / "prose.jsonl").write_text("".join(
        json.dumps({"text": _prose(i), "red_pajama_subset": "c4" if i % 3 else "wikipedia"}) + "\n"
        for i in range(40)))
    params = _params(root, repo_root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDROBE_TRACKING", "off")
        d = {name: root / name for name in ("raw", "clean", "dedup", "m")}
        common = ["--params", str(params)]
        assert ingest_stage.main([*common, "--cache-dir", str(root / "dists"), "--output", str(d["raw"]),
                                  "--removed", str(root / "rm-i"), "--quarantine", str(root / "q-i"),
                                  "--metrics", str(d["m"] / "ingest.json")]) == 0
        assert clean_stage.main([*common, "--input", str(d["raw"]), "--output", str(d["clean"]),
                                 "--removed", str(root / "rm-c"), "--quarantine", str(root / "q-c"),
                                 "--metrics", str(d["m"] / "clean.json")]) == 0
        assert dedup_stage.main([*common, "--input", str(d["clean"]), "--output", str(d["dedup"]),
                                 "--removed", str(root / "rm-d"),
                                 "--metrics", str(d["m"] / "dedup.json")]) == 0
        yield {**d, "params": params, "root": root}


def _model_stages(corpus: dict[str, Path], out: str, metrics: Path, cache: Path) -> None:
    """quality -> tokenize -> bucket -> pretrain, every output (and so every model-side
    input) under ``out``; metrics and the curve under ``metrics``."""
    common = ["--params", str(corpus["params"])]
    m = corpus["m"]
    metrics.mkdir(parents=True, exist_ok=True)
    assert quality_stage.main([*common, "--raw", str(corpus["raw"]), "--clean", str(corpus["clean"]),
                               "--input", str(corpus["dedup"]), "--clean-metrics", str(m / "clean.json"),
                               "--dedup-metrics", str(m / "dedup.json"), "--output", f"{out}/quality",
                               "--docs", f"{out}/docs", "--metrics", str(metrics / "quality.json")]) == 0
    assert tokenize_stage.main([*common, "--input", str(corpus["dedup"]), "--gate", f"{out}/quality",
                                "--output", f"{out}/tokenizer", "--fetch-cache", str(cache),
                                "--metrics", str(metrics / "tokenize.json")]) == 0
    assert bucket_stage.main([*common, "--input", str(corpus["dedup"]), "--tokenizer", f"{out}/tokenizer",
                              "--output", f"{out}/buckets", "--fetch-cache", str(cache),
                              "--metrics", str(metrics / "bucket.json")]) == 0
    assert pretrain_stage.main(_pretrain_argv(corpus, out, metrics, cache)) == 0


def _pretrain_argv(corpus: dict[str, Path], out: str, metrics: Path, cache: Path) -> list[str]:
    return ["--params", str(corpus["params"]), "--buckets", f"{out}/buckets",
            "--tokenizer", f"{out}/tokenizer", "--output", str(metrics / "base"),
            "--curve", str(metrics / "pretrain_curve.csv"), "--fetch-cache", str(cache),
            "--metrics", str(metrics / "pretrain.json")]


@pytest.fixture(scope="module")
def runs(corpus: dict[str, Path], s3_server: S3Server) -> Iterator[dict[str, Any]]:
    """The model-side stages run locally and with every output in a bucket."""
    root = corpus["root"]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3_server.env.items():
            mp.setenv(key, value)
        mp.setenv("REDROBE_TRACKING", "off")
        bucket = s3_server.make_bucket("model-outputs")
        roots = {"local": str(root / "local"), "s3": f"s3://{bucket}/data"}
        for name, out in roots.items():
            _model_stages(corpus, out, root / f"metrics-{name}", root / "fetch")
        yield {"roots": roots, "bucket": bucket, "server": s3_server, "corpus": corpus,
               "metrics": {name: root / f"metrics-{name}" for name in roots}, "cache": root / "fetch"}


def _site(entries: list[Any] | None) -> tuple[list[str], list[tuple[str, int, str]]]:
    """A Data Docs site's file names with GE's run times masked, and its files other
    than the time-stamped HTML pages with their sizes and digests."""
    assert entries
    return (sorted(RUN_TIME.sub("<run time>", e.path) for e in entries),
            [(e.path, e.bytes, e.sha256) for e in entries if not e.path.endswith(DOCS_HTML)])


@pytest.mark.slow
def test_quality_tokenize_and_bucket_publish_the_local_bytes(runs: dict[str, Any]) -> None:
    """Every model-side output in the bucket is committed by a manifest listing the local
    run's files, sizes, sha256s and rows; GE's HTML pages carry run times (their names
    agree, their bytes do not); the metrics agree; no staging or sidecar is left."""
    local, remote = runs["roots"]["local"], runs["roots"]["s3"]
    for output in ("quality", "tokenizer", "buckets"):
        assert read_manifest(f"{remote}/{output}") == read_manifest(f"{local}/{output}"), output
    assert _site(read_manifest(f"{remote}/docs")) == _site(read_manifest(f"{local}/docs"))
    for stage in ("quality", "tokenize", "bucket"):
        a, b = (json.loads((runs["metrics"][n] / f"{stage}.json").read_text()) for n in ("local", "s3"))
        assert {**a, "wall_seconds": 0} == {**b, "wall_seconds": 0}, stage
    fs = runs["server"].filesystem()
    assert [f for f in fs.find(f"{runs['bucket']}/data") if "/." in f] == []   # no sidecars, scratch
    assert {f.rsplit("/", 1)[-1] for f in fs.find(f"{runs['bucket']}/data/buckets")} == \
        {e.path.rsplit("/", 1)[-1] for e in read_manifest(f"{local}/buckets") or []} | {MANIFEST}


@pytest.mark.slow
def test_pretrain_on_fetched_inputs_matches_the_local_run(runs: dict[str, Any]) -> None:
    """Pretraining on buckets and tokenizer fetched from the bucket gives the local run's
    weights, data order, loss curve and metrics (time measurements aside); the cache holds
    each fetched file once, under its sha256."""
    local, remote = runs["metrics"]["local"], runs["metrics"]["s3"]
    for name in ("model.safetensors", pretrain_stage.DATA_ORDER_FILE, "tokenizer.json"):
        assert (remote / "base" / name).read_bytes() == (local / "base" / name).read_bytes(), name

    def curve(d: Path) -> list[dict[str, str]]:
        return [{**r, "tokens_per_s": ""} for r in csv.DictReader((d / "pretrain_curve.csv").open())]
    assert curve(remote) == curve(local)
    a, b = (json.loads((d / "pretrain.json").read_text()) for d in (local, remote))
    assert {**a, **dict.fromkeys(TIMED)} == {**b, **dict.fromkeys(TIMED)}
    objects = sorted(p.name for p in (runs["cache"] / OBJECTS).glob("*/*"))
    fetched = {e.sha256 for out in ("quality", "tokenizer", "buckets")
               for e in read_manifest(f"{runs['roots']['s3']}/{out}") or []}
    assert objects == sorted(fetched)


@pytest.mark.slow
def test_a_tampered_remote_file_is_refused_naming_it(runs: dict[str, Any], tmp_path: Path,
                                                     s3: S3Server, capsys: pytest.CaptureFixture) -> None:
    """An object changed after its output was committed fails the fetch, naming its URL."""
    remote = runs["roots"]["s3"]
    entry = next(e for e in read_manifest(f"{remote}/buckets") or [] if e.path.endswith(".bin"))
    fs = s3.filesystem()
    name = f"{runs['bucket']}/data/buckets/{entry.path}"
    fs.pipe_file(name, b"\0" * entry.bytes)
    try:
        argv = _pretrain_argv(runs["corpus"], remote, tmp_path, tmp_path / "fresh-cache")
        assert pretrain_stage.main(argv) == 1
        err = capsys.readouterr().err
        assert f"{remote}/buckets/{entry.path}" in err and entry.sha256 in err
        assert not (tmp_path / "fresh-cache" / TREES).exists() or \
            list((tmp_path / "fresh-cache" / TREES).iterdir()) == []   # no partial tree
    finally:
        fs.pipe_file(name, (Path(runs["roots"]["local"]) / "buckets" / entry.path).read_bytes())


@pytest.mark.slow
def test_an_uncommitted_remote_output_is_refused(runs: dict[str, Any], tmp_path: Path, s3: S3Server,
                                                 capsys: pytest.CaptureFixture) -> None:
    """A tokenizer or gate without its manifest is not read, however complete its files."""
    remote, corpus = runs["roots"]["s3"], runs["corpus"]
    fs = s3.filesystem()
    for output, stage, argv in (
            ("tokenizer", bucket_stage, ["--input", str(corpus["dedup"]), "--tokenizer",
                                         f"{remote}/tokenizer", "--output", str(tmp_path / "b")]),
            ("quality", tokenize_stage, ["--input", str(corpus["dedup"]), "--gate", f"{remote}/quality",
                                         "--output", str(tmp_path / "t")])):
        manifest = f"{runs['bucket']}/data/{output}/{MANIFEST}"
        saved = fs.cat_file(manifest)
        fs.rm(manifest)
        try:
            assert stage.main(["--params", str(corpus["params"]), *argv, "--fetch-cache",
                               str(tmp_path / "cache"), "--metrics", str(tmp_path / "m.json")]) == 1
            assert f"{remote}/{output}: no {MANIFEST}: not a committed output" in capsys.readouterr().err
        finally:
            fs.pipe_file(manifest, saved)


def test_the_fetch_cache_keeps_one_copy_of_the_newest_version(s3: S3Server, tmp_path: Path) -> None:
    """A second version of an output replaces the first in the cache: a file both share
    is stored once (not fetched again), the other objects of the old version are gone."""
    bucket = s3.make_bucket("fetch-cache")
    build, cache, url = tmp_path / "build", tmp_path / "cache", f"s3://{bucket}/out"
    build.mkdir()
    (build / "same.bin").write_bytes(b"kept across versions")
    (build / "old.bin").write_bytes(b"first version")
    publish_tree(build, url, rows_of=None)
    first = fetch_tree(url, cache)
    assert (first / "old.bin").read_bytes() == b"first version"
    assert fetch_tree(url, cache) == first                    # committed and cached: no fetch
    ended = subprocess.Popen(["true"])
    ended.wait()                                  # its pid names no process any more
    killed = first.with_name(f".{first.name}.tmp-0123-{ended.pid}")   # what a killed fetch left
    killed.mkdir()
    (build / "old.bin").unlink()
    (build / "new.bin").write_bytes(b"second version")
    publish_tree(build, url, rows_of=None)
    second = fetch_tree(url, cache)
    assert sorted(p.name for p in second.iterdir()) == [MANIFEST, "new.bin", "same.bin"]
    assert not first.exists() and not killed.exists()
    objects = sorted(p.read_bytes() for p in (cache / OBJECTS).glob("*/*"))
    assert objects == [b"kept across versions", b"second version"]
    assert (second / "same.bin").stat().st_nlink == 2        # the tree links the object
