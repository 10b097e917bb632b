"""Input locations: local paths and globs, file:// and memory:// URLs, decompression, digests."""

import bz2
import gzip
import hashlib

import fsspec
import pytest
import zstandard

from redrobe.errors import InputError
from redrobe.sources.fileio import expand


@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/fileio"):  # the memory filesystem is process-wide
        fs.rm("/fileio", recursive=True)


def test_local_glob_keeps_given_names_sorted_and_marks_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.txt").write_text("b")
    (tmp_path / "in" / "a.txt").write_text("a")
    (tmp_path / "in" / "tree").mkdir()
    sources = expand("in/*")
    assert [s.name for s in sources] == ["in/a.txt", "in/b.txt", "in/tree"]
    assert [s.is_dir for s in sources] == [False, False, True]
    assert sources[0].sha256() == hashlib.sha256(b"a").hexdigest()


def test_missing_path_and_empty_glob_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand(str(tmp_path / "absent.xml"))
    with pytest.raises(InputError, match="matches no file"):
        expand(str(tmp_path / "*.wet.gz"))
    with pytest.raises(InputError, match="matches no file"):
        expand("memory://fileio-absent/*.xml")


@pytest.mark.parametrize("name,pack", [("t.txt.gz", gzip.compress), ("t.txt.bz2", bz2.compress),
                                       ("t.txt.zst", zstandard.ZstdCompressor().compress),
                                       ("t.txt", bytes)])
def test_open_decompresses_by_name_and_digest_is_of_stored_bytes(memfs, name, pack):
    stored = pack(b"line one\nline two\n")
    memfs.pipe(f"/fileio/{name}", stored)
    (source,) = expand(f"memory://fileio/{name}")
    assert source.name == f"memory:///fileio/{name}"
    with source.open() as fh:
        assert fh.read() == b"line one\nline two\n"
    assert source.sha256() == hashlib.sha256(stored).hexdigest()


def test_file_url_and_directory_walk(tmp_path):
    (tmp_path / "tree" / "pkg").mkdir(parents=True)
    (tmp_path / "tree" / "pkg" / "m.py").write_text("x = 1\n")
    (tmp_path / "tree" / "LICENSE").write_text("MIT")
    (source,) = expand(f"file://{tmp_path / 'tree'}")
    assert source.is_dir and source.name == f"file://{tmp_path / 'tree'}"
    assert [rel for rel, _ in source.walk()] == ["LICENSE", "pkg/m.py"]
    digest = source.sha256()
    (tmp_path / "tree" / "pkg" / "m.py").write_text("x = 2\n")
    assert source.sha256() != digest  # the tree digest covers every file's bytes
