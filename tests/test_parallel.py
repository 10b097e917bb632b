"""Shard executors: local pool and a real local Ray give the same results, order and outputs.

    pytest tests/test_parallel.py -q

The Ray tests share one Ray session (the module-scoped ``ray_session`` fixture: a Ray
start costs seconds); only ``test_ray_started_on_demand_is_shut_down`` starts its own,
before the shared one, to check that a Ray we start is stopped again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from redrobe.config import ConfigError, Params, Shared, as_dict, params_from_dict
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.errors import GateError, InputError
from redrobe.parallel import (
    LocalExecutor,
    RayExecutor,
    TaskError,
    executor_for,
    map_shards,
    profile_tasks,
    shutdown,
    task_name,
)
from redrobe.stages import clean

ray = pytest.importorskip("ray")
# Ray workers cannot import this test module: ship its task functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TASKS = list(range(-6, 6))


def slow_abs(x: int) -> int:
    """Early tasks finish last, so completion order differs from task order."""
    time.sleep(0.02 * (6 - x))
    return abs(x)


def fail_on_shard(path: str) -> int:
    if path.endswith("part-00001.parquet"):
        raise ValueError("boom in the worker")
    if path.endswith("missing.parquet"):
        raise InputError(f"{path}: no such shard")
    if path.endswith("gate.parquet"):
        raise GateError("too many removed")
    return len(path)


def die_once(marker: str) -> str:
    """Kill its own worker process on the first attempt (a dead worker or node), then succeed."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return path.read_text()


def count_and_raise(counter: str) -> None:
    with open(counter, "a") as fh:
        fh.write("x")
    raise ValueError("raised in the worker")


SHARDS = ["raw/c4/part-00000.parquet", "raw/c4/part-00001.parquet", "raw/c4/part-00002.parquet"]


# -- configuration ----------------------------------------------------------------------
def test_bad_executor_value_is_a_config_error():
    with pytest.raises(ConfigError, match="shared.executor"):
        params_from_dict({"shared": {"executor": "spark"}})
    with pytest.raises(ConfigError, match="shared.executor"):
        executor_for(Shared(executor="spark"))  # type: ignore[arg-type]


def test_executor_for_follows_params():
    assert isinstance(executor_for(Shared()), LocalExecutor)
    ray_executor = executor_for(Shared(executor="ray", workers=3, ray_address="auto"))
    assert isinstance(ray_executor, RayExecutor)
    assert (ray_executor.workers, ray_executor.address) == (3, "auto")


def test_task_name_prefers_the_input_path():
    assert task_name("raw/c4/part-00000.parquet") == "raw/c4/part-00000.parquet"
    assert task_name(Path("a/b.parquet")) == "a/b.parquet"

    class Task:
        slice, input = "c4", "raw/c4/part-00003.parquet"

    assert task_name(Task()) == "raw/c4/part-00003.parquet"


# -- local executor -----------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_local_map_keeps_task_order(workers):
    assert LocalExecutor(workers).map(slow_abs, TASKS) == [abs(t) for t in TASKS]
    assert map_shards(slow_abs, TASKS, workers) == [abs(t) for t in TASKS]


@pytest.mark.parametrize("workers", [1, 2])
def test_local_task_error_names_the_shard(workers):
    with pytest.raises(TaskError, match=r"raw/c4/part-00001\.parquet.*ValueError: boom"):
        LocalExecutor(workers).map(fail_on_shard, SHARDS)
    with pytest.raises(InputError, match="missing.parquet: no such shard"):
        LocalExecutor(workers).map(fail_on_shard, SHARDS[:1] + ["raw/missing.parquet"])
    with pytest.raises(GateError, match="raw/gate.parquet: too many removed"):
        LocalExecutor(workers).map(fail_on_shard, SHARDS[:1] + ["raw/gate.parquet"])


def allocate(megabytes: int) -> int:
    block = bytearray(megabytes << 20)   # zero-filled: every page touched, so resident
    return len(block) >> 20


def profile_records(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.iterdir()) for line in f.read_text().splitlines()]


@pytest.fixture
def profiled(tmp_path):
    profile_tasks(str(tmp_path / "profile"))
    yield tmp_path / "profile"
    profile_tasks("")


def test_profiled_map_records_each_tasks_own_peak(tmp_path):
    # a fresh interpreter: in a long-lived one the big block may reuse freed memory
    script = ("import sys; sys.path.insert(0, sys.argv[2]); import test_parallel as t; "
              "from redrobe.parallel import LocalExecutor, profile_tasks; profile_tasks(sys.argv[1]); "
              "assert LocalExecutor(1).map(t.allocate, [200, 1]) == [200, 1]")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "p"), str(Path(__file__).parent)],
                   check=True, timeout=120)
    big, small = profile_records(tmp_path / "p")
    assert (big["fn"], big["task"], small["task"]) == ("allocate", "200", "1")
    # the high-water mark is reset before each task: the small task after the big one
    # (whose 200 MB were returned to the system) does not inherit its peak
    assert big["peak_rss_mb"] > small["peak_rss_mb"] + 150
    assert all(r["fds"] > 0 and r["maps"] > 0 and r["result_bytes"] > 0 and r["cpu_s"] >= 0
               for r in (big, small))


def test_profiled_pool_workers_write_their_own_lines(profiled):
    assert LocalExecutor(2).map(allocate, [1, 2, 3]) == [1, 2, 3]
    assert sorted(r["task"] for r in profile_records(profiled)) == ["1", "2", "3"]
    profile_tasks("")
    LocalExecutor(1).map(allocate, [4])
    assert len(profile_records(profiled)) == 3


def test_a_stage_profiles_its_tasks_when_the_environment_asks(tmp_path, monkeypatch):
    from redrobe.stages import common
    monkeypatch.setenv("REDROBE_TASK_PROFILE", str(tmp_path / "p"))
    common._profile_tasks()
    try:
        LocalExecutor(1).map(allocate, [1])
    finally:
        profile_tasks("")
    assert [r["task"] for r in profile_records(tmp_path / "p")] == ["1"]


# -- Ray ----------------------------------------------------------------------------------
def test_ray_started_on_demand_is_shut_down():
    assert not ray.is_initialized()
    with RayExecutor(workers=1) as executor:
        assert executor.map(abs, [-1, 2, -3]) == [1, 2, 3]
        assert ray.is_initialized()
    assert not ray.is_initialized()


def test_a_stage_stops_the_ray_it_started(tmp_path, monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    raw = tmp_path / "raw"
    _write_raw(raw)
    assert not ray.is_initialized()
    metrics, files = _run_clean(tmp_path, raw, "ray", "ray")
    assert metrics["accounting"]["slices"]["c4"]["in"] == 9 and len(files) == 15
    assert not ray.is_initialized()  # at the end of the stage, not at interpreter exit


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module, started here, so executors use it and leave it up."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def test_ray_map_matches_local_in_task_order(ray_session):
    executor = RayExecutor(workers=2)
    assert executor.map(slow_abs, TASKS) == LocalExecutor(2).map(slow_abs, TASKS)
    finished = [i for i, _ in executor.as_completed(slow_abs, TASKS)]
    assert sorted(finished) == list(range(len(TASKS)))
    executor.close()
    shutdown()
    assert ray.is_initialized()  # a Ray someone else started is left running


def test_ray_task_error_names_the_shard(ray_session):
    with pytest.raises(TaskError, match=r"raw/c4/part-00001\.parquet.*ValueError: boom"):
        RayExecutor(workers=2).map(fail_on_shard, SHARDS)
    with pytest.raises(InputError, match="missing.parquet: no such shard"):
        RayExecutor(workers=2).map(fail_on_shard, SHARDS[:1] + ["raw/missing.parquet"])


def test_ray_retries_a_task_whose_worker_died_not_one_that_raised(ray_session, tmp_path):
    assert RayExecutor(workers=1).map(die_once, [str(tmp_path / "marker")]) == ["died once"]
    counter = tmp_path / "attempts"
    with pytest.raises(TaskError, match="ValueError: raised in the worker"):
        RayExecutor(workers=1).map(count_and_raise, [str(counter)])
    assert counter.read_text() == "x"  # one attempt: the same input would raise again


PROSE = (
    "The history of the river valley is long and varied. Farmers settled along the banks "
    "and built small villages with stone walls. Over the centuries the towns grew into "
    "market centres that traded grain, wool and timber with distant cities. Travellers "
    "described the landscape as green and quiet, with orchards that bloomed every spring. "
    "Today the valley is known for its walking trails and the old mills beside the water."
).replace(". ", ".\n")


def _write_raw(root: Path) -> None:
    """Two slices, five shards: kept, removed and unreadable (quarantined) documents."""
    for slice_name in ("c4", "wikipedia"):
        for index in range(2 if slice_name == "wikipedia" else 3):
            docs = [Document(f"{slice_name}-{index}-keep", PROSE.replace("river", f"r{index}"),
                             slice_name, {"url": f"http://example.org/{index}"}),
                    Document(f"{slice_name}-{index}-short", "Too short to keep.", slice_name),
                    Document(f"{slice_name}-{index}-null", None, slice_name)]  # type: ignore[arg-type]
            with ShardWriter(shard_path(root, slice_name, index), batch_size=2) as writer:
                writer.write_all(docs)


def _run_clean(tmp: Path, raw: Path, name: str, executor: str) -> tuple[dict, dict[str, bytes]]:
    params = as_dict(Params())
    params["shared"].update(batch_docs=2, workers=2, executor=executor)
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = tmp / name
    code = clean.main(["--params", str(tmp / f"{name}.yaml"), "--input", str(raw),
                       "--output", str(out / "kept"), "--removed", str(out / "removed"),
                       "--quarantine", str(out / "quarantine"),
                       "--metrics", str(out / "metrics.json")])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("wall_seconds")
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}
    return metrics, files


def test_clean_stage_on_ray_is_byte_identical_to_local(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    raw = tmp_path / "raw"
    _write_raw(raw)
    local_metrics, local_files = _run_clean(tmp_path, raw, "local", "local")
    ray_metrics, ray_files = _run_clean(tmp_path, raw, "ray", "ray")
    assert len(local_files) == 15  # 5 shards x kept/removed/quarantine
    assert ray_files == local_files
    assert ray_metrics == local_metrics
    accounting = local_metrics["accounting"]
    assert {s: (c["in"], c["out"]) for s, c in accounting["slices"].items()} \
        == {"c4": (9, 3), "wikipedia": (6, 2)}


def test_clean_stage_on_ray_names_a_corrupt_shard(ray_session, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    raw = tmp_path / "raw"
    _write_raw(raw)
    shard_path(raw, "c4", 1).write_bytes(b"not parquet at all")
    params = as_dict(Params())
    params["shared"].update(workers=2, executor="ray")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = tmp_path / "out"
    code = clean.main(["--params", str(tmp_path / "p.yaml"), "--input", str(raw),
                       "--output", str(out / "kept"), "--removed", str(out / "removed"),
                       "--quarantine", str(out / "quarantine"),
                       "--metrics", str(out / "metrics.json")])
    assert code == 1
    assert f"{shard_path(raw, 'c4', 1)}: unreadable shard" in capsys.readouterr().err
    assert not (out / "kept").exists()
