"""Shared pytest setup: offline hubs, the repository root for contract/e2e tests, the
session's tiny pipeline (built once, shared by the end-to-end tests and xdist workers)
and the S3 server fixtures (defined here once, so every module of a session shares one
server: a second definition would start a second server, and fsspec's cached S3
filesystem of the process would still point at the first)."""

import os
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from s3_server import s3_fixture, s3_server_fixture  # noqa: F401  (fixtures: see above)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _extensions_dir() -> Path:
    """Where DeepSpeed's JIT-built ops go: the user's cache, one folder per Python, torch
    and DeepSpeed version (torch's own default folder is not keyed by its version, so a
    build could be loaded by another torch)."""
    key = (f"py{sys.version_info.major}{sys.version_info.minor}-torch{version('torch')}"
           f"-deepspeed{version('deepspeed')}")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "redrobe" / "torch_extensions" / key


# DeepSpeed compiles its CPU comm op on first use (a minute or more): built once per
# machine and version set, and reused by every checkout and test run after
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(_extensions_dir()))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # the workers share the cores: one BLAS/OpenMP thread each, for this process and the
    # commands it starts (a stage that sets its own thread count still does)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, worker_id):
    """The tiny profile's `dvc repro`, in a git copy of this checkout; read-only: copy it
    with ``pipeline_repo.clone`` before changing anything. Under xdist the build lives in
    the run's shared temp folder, so every worker gets the same one."""
    from pipeline_repo import built_pipeline

    base = tmp_path_factory.getbasetemp()
    return built_pipeline(base if worker_id == "master" else base.parent)


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _rank(items: list[pytest.Item]) -> dict[str, int]:
    """Each test file's place in the run: the first file that needs the tiny pipeline
    (it builds it), then the other end-to-end files that do not (they run beside the
    build), the rest of the end-to-end files, the slow files, then everything else."""
    e2e = {_file(i) for i in items if i.get_closest_marker("e2e")}
    slow = {_file(i) for i in items if i.get_closest_marker("slow")}
    builders = list(dict.fromkeys(_file(i) for i in items if "tiny_pipeline" in i.fixturenames))

    def place(path: str) -> int:
        if path not in e2e:
            return 3 if path in slow else 4
        return 0 if builders[:1] == [path] else 2 if path in builders else 1

    return {path: place(path) for path in dict.fromkeys(_file(i) for i in items)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long files first. Workers take a whole file at a time (``--dist loadfile
    --no-loadscope-reorder``), so a long file picked up last would leave a core idle at
    the end of the run. The order within each file is kept (its tests may share state)."""
    rank = _rank(items)
    items.sort(key=lambda item: rank[_file(item)])
