"""Shard I/O: round trip, bounded row groups, empty shards, atomic outputs (killed at
every step of a commit)."""

import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from crash_points import crash_after  # tests/ is on sys.path (its conftest)

from redrobe import documents
from redrobe.documents import (
    Document,
    ShardWriter,
    atomic_dir,
    atomic_dirs,
    count_documents,
    file_digest,
    list_shards,
    read_documents,
    recover_outputs,
    shard_path,
)
from redrobe.storage import MANIFEST


def _docs(n):
    return [Document(id=f"c4/{i}", text=f"text {i} é", source="c4",
                     meta={"b": i, "a": [1, 2]}, extra={"reason": "r"}) for i in range(n)]


def test_round_trip_and_row_groups(tmp_path):
    path = shard_path(tmp_path, "c4", 0)
    with ShardWriter(path, batch_size=4, extra_columns=("reason",)) as w:
        w.write_all(_docs(10))
    assert count_documents(path) == 10
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    back = list(read_documents(path, batch_size=3))
    assert back == _docs(10)
    assert list_shards(tmp_path) == [path]


def test_empty_shard_has_schema(tmp_path):
    path = tmp_path / "x" / "part-00000.parquet"
    ShardWriter(path).close()
    assert count_documents(path) == 0
    assert pq.ParquetFile(path).schema_arrow.names == ["id", "text", "source", "meta"]


def test_same_docs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        with ShardWriter(tmp_path / name / "part-00000.parquet") as w:
            w.write_all(_docs(5))
    assert file_digest(tmp_path / "a/part-00000.parquet") == file_digest(tmp_path / "b/part-00000.parquet")


def test_a_rewritten_shard_replaces_a_half_written_one_whole(tmp_path):
    """A retried task and the attempt it replaces (cut off, still writing) each write a
    file of their own; the shard at the path is always one writer's complete file."""
    path = shard_path(tmp_path, "c4", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 half a shard")  # an older file at the path
    dead = ShardWriter(path, batch_size=2)
    dead.write_all(_docs(3))                # an attempt that died after a row group
    first = ShardWriter(path, batch_size=2, extra_columns=("reason",))
    first.write_all(_docs(3))               # the old attempt has flushed a row group...
    assert len(list(path.parent.iterdir())) == 2  # ...and removed the dead one's file
    with ShardWriter(path, batch_size=2, extra_columns=("reason",)) as retry:
        retry.write_all(_docs(5))
        assert path.read_bytes() == b"PAR1 half a shard"  # not replaced before close
    assert list(read_documents(path)) == _docs(5)
    first.write_all(_docs(5)[3:])           # ...and goes on after the retry finished
    with pytest.raises(FileNotFoundError):  # the retry removed its file: it cannot commit
        first.close()
    first.close()                           # closing twice changes nothing
    assert list(read_documents(path)) == _docs(5)
    assert sorted(p.name for p in path.parent.iterdir()) == [f".{path.name}.entry", path.name]


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (target / "done.txt").exists()


def test_corrupt_shard_names_the_file(tmp_path):
    from redrobe.errors import InputError

    bad = tmp_path / "c4" / "part-00000.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=r"c4/part-00000.parquet: unreadable shard"):
        list(read_documents(bad))


# ----------------------------------------------------------------------------- crash safety

OUTPUTS = ("raw", "removed", "quarantine")


def old_tree(name: str) -> dict[str, str]:
    return {"part-0.txt": f"old {name} 0", "part-1.txt": f"old {name} 1"}


def new_tree(name: str) -> dict[str, str]:
    return {"sub/part-0.txt": f"new {name} 0", "sub/part-1.txt": f"new {name} 1", "x.txt": name}


def read_tree(root: Path) -> dict[str, str] | None:
    """The files of an output, its manifest left out (a committed one always has it)."""
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def commit_new(root: Path, names: tuple[str, ...]) -> None:
    """What a stage does: write every output into its staging dir, then commit them."""
    with atomic_dirs(*(root / n for n in names)) as staged:
        for directory, name in zip(staged, names):
            write_tree(directory, new_tree(name))


def _killed_commit(root: Path, names: tuple[str, ...], kill_at: int, log: Path) -> None:
    seen = crash_after(root, kill_at)
    commit_new(root, names)
    log.write_text(str(len(seen)))


def run_killed(root: Path, names: tuple[str, ...], kill_at: int) -> tuple[int | None, int]:
    """Commit in a forked child SIGKILLed at write ``kill_at`` (0: never): (exit code, writes)."""
    log = root.parent / "writes"
    child = multiprocessing.get_context("fork").Process(
        target=_killed_commit, args=(root, names, kill_at, log))
    child.start()
    child.join()
    return child.exitcode, int(log.read_text()) if child.exitcode == 0 else 0


def exchange_works(tmp_path: Path) -> bool:
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    (b / "x").mkdir(parents=True)
    works = documents.exchange(a, b)
    assert works == (a / "x").exists()   # swapped, or both left as they were
    shutil.rmtree(a)
    shutil.rmtree(b)
    return works


@pytest.mark.parametrize("swap", ["exchange", "aside"])
@pytest.mark.parametrize("names", [("raw",), OUTPUTS])
def test_a_commit_killed_at_any_write_leaves_all_old_or_all_new(tmp_path, monkeypatch, swap, names):
    if swap == "aside":   # the fallback where renameat2(RENAME_EXCHANGE) is unavailable
        monkeypatch.setattr(documents, "exchange", lambda a, b: False)
    elif not exchange_works(tmp_path):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    old = {n: old_tree(n) for n in names}
    new = {n: new_tree(n) for n in names}

    def fresh(k: int) -> Path:
        root = tmp_path / f"run-{k}" / "data"
        for name in names:
            write_tree(root / name, old[name])
        return root

    code, writes = run_killed(fresh(0), names, 0)
    assert code == 0 and writes > 5
    for k in range(1, writes + 1):
        root = fresh(k)
        assert run_killed(root, names, k)[0] == -signal.SIGKILL, k
        after_kill = {n: read_tree(root / n) for n in names}
        for name in names:    # each output is whole: old, new, or (fallback) old set aside
            aside = read_tree(root / f".{name}.old")
            assert after_kill[name] in (old[name], new[name]) or (
                after_kill[name] is None and aside == old[name]), (k, name)
        recover_outputs(*(root / n for n in names))
        recovered = {n: read_tree(root / n) for n in names}
        assert recovered in (old, new), k                       # all or none
        assert sorted(p.name for p in root.iterdir()) == sorted(names), k   # nothing left over
        commit_new(root, names)                                 # the rerun
        assert {n: read_tree(root / n) for n in names} == new
        assert sorted(p.name for p in root.iterdir()) == sorted(names)


def test_recovery_puts_an_aside_copy_back_and_removes_dead_staging(tmp_path):
    write_tree(tmp_path / ".out.old", old_tree("out"))           # killed between the renames
    write_tree(tmp_path / ".out.tmp-999999999", new_tree("out"))  # no such process
    write_tree(tmp_path / f".out.tmp-{os.getppid()}", {"busy": "a live writer's"})
    recover_outputs(tmp_path / "out")
    assert read_tree(tmp_path / "out") == old_tree("out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".out.tmp-{os.getppid()}", "out"]
    write_tree(tmp_path / ".out.old", old_tree("out"))           # killed after the second rename
    recover_outputs(tmp_path / "out")
    assert not (tmp_path / ".out.old").exists() and read_tree(tmp_path / "out") == old_tree("out")


def test_a_failed_stage_keeps_the_old_output(tmp_path):
    write_tree(tmp_path / "out", old_tree("out"))
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as staged:
        write_tree(staged, new_tree("out"))
        raise RuntimeError("the stage failed")
    assert read_tree(tmp_path / "out") == old_tree("out")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_scratch_dir_is_removed_and_sweeps_what_killed_runs_left(tmp_path):
    from redrobe.documents import scratch_dir
    dead = 2 ** 22 + 12345            # above pid_max's default: no such process
    stale = tmp_path / f"..out.tmp-{dead}.work-{dead}"   # a killed run's scratch beside its staging
    stale.mkdir()
    alive = tmp_path / f".other.work-{os.getppid()}"
    alive.mkdir()
    with scratch_dir(tmp_path / "out") as work:
        assert work.is_dir() and work.name == f".out.work-{os.getpid()}"
        assert not stale.exists() and alive.exists()
    assert not work.exists()
