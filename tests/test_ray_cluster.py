"""The data stages on a real multi-process Ray cluster, by address, and a node killed mid-stage.

    pytest tests/test_ray_cluster.py -q

One cluster for the module (``tests/ray_cluster.py``): a head node and a worker node,
each a `ray start` process tree of its own with one CPU. The stages that map over an
executor (ingest in sample mode, clean, dedup, bucket) run once on the local executor
and once on the cluster (``shared.executor: ray``, ``shared.ray_address: 127.0.0.1:<port>``),
at the same paths, and every output file and metric must be byte-identical. The last
test SIGKILLs the worker node while it writes a clean task's shard; the task is retried
on the head and the outputs are again those of the local run, with nothing left over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_cluster import RayCluster  # tests/ is on sys.path (its conftest)

from redrobe.config import Params, as_dict
from redrobe.documents import Document, ShardWriter, list_shards, read_documents, shard_path
from redrobe.parallel import RayExecutor
from redrobe.sources import sample
from redrobe.stages import bucket, clean, dedup, ingest
from redrobe.storage import read_manifest
from redrobe.tokenizer import save_tokenizer, train_tokenizer

ray = pytest.importorskip("ray")
# Ray workers cannot import this test module: ship its task functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# Set on the worker node only: where its stalled task says that it started.
STALL_DIR = "REDROBE_TEST_STALL_DIR"
SAMPLE = {"books": 2, "wikipedia": 3, "c4": 4, "common_crawl": 2, "github": 3}


@pytest.fixture(scope="module")
def stall_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stall")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, stall_dir, s3_server):
    """The cluster; its nodes and drivers reach the S3 server (credentials and endpoint
    in their environment, as on a real cluster)."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in s3_server.env.items():
            env.setenv(key, value)
        with RayCluster(tmp_path_factory.mktemp("ray-cluster")) as running:
            running.add_node("worker", env={STALL_DIR: str(stall_dir)})
            yield running


def in_driver(cluster: RayCluster, function: str, *args: str) -> str:
    """Run ``function(*args)`` of this module in a new driver process; its stdout.

    A driver of its own, as ``redrobe <stage>`` is: Ray reads the cluster's token from
    the environment when it is first imported, so it is set before the driver starts.
    """
    code = f"import sys, test_ray_cluster as t; t.{function}(*sys.argv[1:])"
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = cluster.env({"PYTHONPATH": path, "REDROBE_TRACKING": "off", "HF_HUB_OFFLINE": "1"})
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def print_node_ids(address: str, barrier: str) -> None:
    with RayExecutor(workers=2, address=address) as executor:
        print(json.dumps(executor.map(node_id, [f"{barrier}/{i}" for i in range(2)])))
    assert not ray.is_initialized()  # the driver disconnected


def node_id(marker: str) -> str:
    """The node running this task, once both tasks run at the same time (each needs the
    one CPU of a node, so they can only run on two nodes)."""
    Path(marker).touch()
    deadline = time.monotonic() + 60
    while len(list(Path(marker).parent.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the two tasks never ran at the same time")
        time.sleep(0.05)
    return str(ray.get_runtime_context().get_node_id())


def test_tasks_run_on_both_nodes(cluster, tmp_path):
    node_ids = json.loads(in_driver(cluster, "print_node_ids", cluster.address, str(tmp_path)))
    assert len(set(node_ids)) == 2
    assert all(node.process.poll() is None for node in cluster.nodes.values())  # still up


# -- the data stages, local vs cluster --------------------------------------------------------
def dist_cache(tmp: Path) -> Path:
    """The repository's download cache when it has every pin, else a fresh one (PyPI)."""
    repo_cache = REPO / ".cache" / "dists"
    pins = {pin for pins in sample.SLICE_PINS.values() for pin in pins}
    return repo_cache if all((repo_cache / p.filename).exists() for p in pins) else tmp / "dists"


def write_params(path: Path, executor: str, address: str = "") -> Path:
    params = as_dict(Params())
    params["shared"].update(workers=2, batch_docs=4, executor=executor, ray_address=address)
    params["ingest"].update(shard_docs=2, sample=SAMPLE)
    params["bucket"].update(num_buckets=2)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_data_stages(work: str, params: str, cache: str, tokenizer: str = "", metrics: str = "") -> None:
    """ingest → clean → dedup (→ bucket when a tokenizer is given) under ``work`` (a path
    or a URL), the metrics under ``metrics`` (default: ``work``)."""
    def stage(module: Any, name: str, *args: str) -> None:
        code = module.main(["--params", params, "--metrics", f"{metrics or work}/{name}.json", *args])
        assert code == 0, f"{name} failed"

    d = {name: f"{work}/{name}" for name in
         ("raw", "clean", "dedup", "buckets", "removed", "quarantine")}
    stage(ingest, "ingest", "--cache-dir", cache, "--output", d["raw"],
          "--removed", f"{d['removed']}/ingest", "--quarantine", f"{d['quarantine']}/ingest")
    stage(clean, "clean", "--input", d["raw"], "--output", d["clean"],
          "--removed", f"{d['removed']}/clean", "--quarantine", f"{d['quarantine']}/clean")
    stage(dedup, "dedup", "--input", d["clean"], "--output", d["dedup"],
          "--removed", f"{d['removed']}/dedup")
    if tokenizer:
        stage(bucket, "bucket", "--input", d["dedup"], "--tokenizer", tokenizer,
              "--output", d["buckets"])


def snapshot(root: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file's bytes (metrics aside) and the metrics less their wall time."""
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
             if p.is_file() and p.parent != root}
    metrics = {p.name: json.loads(p.read_text()) for p in sorted(root.glob("*.json"))}
    for m in metrics.values():
        m.pop("wall_seconds", None)
    return files, metrics


def test_data_stages_on_the_cluster_match_local(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    cache, work = str(dist_cache(tmp_path)), tmp_path / "work"
    local_params = str(write_params(tmp_path / "local.yaml", "local"))
    run_data_stages(str(work), local_params, cache)
    texts = [d.text for p in list_shards(work / "dedup") for d in read_documents(p)]
    tokenizer = str(save_tokenizer(train_tokenizer(texts, 300, 2), tmp_path / "tokenizer").parent)
    shutil.rmtree(work)
    run_data_stages(str(work), local_params, cache, tokenizer)
    local = snapshot(work)
    shutil.rmtree(work)  # both runs at the same paths: anything naming a path must match too

    on_ray = write_params(tmp_path / "ray.yaml", "ray", cluster.address)
    in_driver(cluster, "run_data_stages", str(work), str(on_ray), cache, tokenizer)
    files, metrics = snapshot(work)
    assert sorted(metrics) == ["bucket.json", "clean.json", "dedup.json", "ingest.json"]
    assert sum(name.startswith("raw/") for name in files) >= 5  # every sample slice
    assert any(name.startswith("buckets/") for name in files)
    assert files.keys() == local[0].keys()
    assert [n for n in files if files[n] != local[0][n]] == []
    assert metrics == local[1]


OUTPUTS = ("raw", "clean", "dedup", "removed/ingest", "removed/clean", "removed/dedup",
           "quarantine/ingest", "quarantine/clean")


def test_data_stages_on_the_cluster_write_to_a_bucket(cluster, s3_server, tmp_path, monkeypatch):
    """No shared filesystem needed: every output and the scratch of the cluster's tasks
    live in a bucket, committed by manifests equal to those of a local run."""
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    cache, local = str(dist_cache(tmp_path)), tmp_path / "local"
    run_data_stages(str(local), str(write_params(tmp_path / "local.yaml", "local")), cache)
    remote = f"s3://{s3_server.make_bucket('ray-stages')}/work"
    (tmp_path / "metrics").mkdir()
    on_ray = write_params(tmp_path / "ray.yaml", "ray", cluster.address)
    in_driver(cluster, "run_data_stages", remote, str(on_ray), cache, "", str(tmp_path / "metrics"))
    for output in OUTPUTS:
        expected = read_manifest(local / output)
        assert expected and read_manifest(f"{remote}/{output}") == expected, output
    assert snapshot(tmp_path / "metrics")[1] == snapshot(local)[1]
    assert [f for f in s3_server.filesystem().find(remote.removeprefix("s3://")) if "/." in f] == []


# -- a node killed during a stage ----------------------------------------------------------------
PROSE = ("The river valley has a long history of farming and trade.\n"
         "Small villages with stone walls grew into busy market towns.\n"
         "Travellers wrote about the orchards that bloomed every spring.\n"
         "Today people walk the trails beside the old mills and the water.\n") * 2


def write_raw(root: Path) -> None:
    """Three slices, six shards of kept, removed and unreadable documents."""
    for slice_name in ("books", "c4", "wikipedia"):
        for index in range(2):
            docs = [Document(f"{slice_name}-{index}-keep", PROSE.replace("river", f"r{index}"),
                             slice_name),
                    Document(f"{slice_name}-{index}-short", "Too short.", slice_name),
                    Document(f"{slice_name}-{index}-null", None, slice_name)]  # type: ignore[arg-type]
            with ShardWriter(shard_path(root, slice_name, index), batch_size=2) as writer:
                writer.write_all(docs)


def clean_or_stall(task: clean.ShardTask) -> Any:
    """The clean task, except on the node that is to be killed: there it writes a row
    group of an output shard, says which shard (a marker file) and waits to be killed."""
    stall_dir = os.environ.get(STALL_DIR)
    if stall_dir:
        half = ShardWriter(task.output, batch_size=1)
        half.write(Document("half", "half a shard", task.slice))  # flushed to its file
        Path(stall_dir, "started").write_text(task.output)
        time.sleep(300)
        raise RuntimeError("the node running this task was not killed")
    return clean.clean_shard(task)  # in a worker: the module's own function


def kill_when_started(cluster: RayCluster, marker: Path, left: list[str]) -> threading.Thread:
    """Kill the worker node once its task has started (no fixed delay to guess); note
    the files in its shard's folder first (the task waits, so they are what it left:
    after the kill the retry may already have replaced them)."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if marker.exists():
            left.extend(p.name for p in Path(marker.read_text()).parent.iterdir())
            cluster.nodes["worker"].kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def run_clean(root: str, raw: str, params: str) -> None:
    code = clean.main(["--params", params, "--input", raw, "--output", f"{root}/kept",
                       "--removed", f"{root}/removed", "--quarantine", f"{root}/quarantine",
                       "--metrics", f"{root}/m.json"])
    assert code == 0


def run_clean_with_a_stall(root: str, raw: str, params: str) -> None:
    clean.clean_shard = clean_or_stall  # type: ignore[assignment]  # this driver only
    run_clean(root, raw, params)


def test_a_node_killed_during_a_stage_changes_nothing(cluster, stall_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    raw, work = tmp_path / "raw", tmp_path / "work"
    write_raw(raw)
    run_clean(str(work), str(raw), str(write_params(tmp_path / "local.yaml", "local")))
    local = snapshot(work)
    shutil.rmtree(work)

    marker, left = stall_dir / "started", []
    watcher = kill_when_started(cluster, marker, left)
    on_ray = write_params(tmp_path / "ray.yaml", "ray", cluster.address)
    in_driver(cluster, "run_clean_with_a_stall", str(work), str(raw), str(on_ray))
    watcher.join(timeout=5)

    half = Path(marker.read_text())                  # the worker node took a shard...
    assert f".{half.name}.tmp-" in " ".join(left)    # ...wrote part of it...
    assert cluster.nodes["worker"].pids() == []      # ...and died with all its processes
    assert cluster.nodes["head"].process.poll() is None
    files, metrics = snapshot(work)
    # 6 shards x kept/removed/quarantine and their 3 manifests, the half one's leftover gone
    assert len(files) == 21
    assert files == local[0] and metrics == local[1]
