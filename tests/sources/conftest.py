"""Fixtures for the source adapter tests: small crafted archives and output dirs.

Tests build their own faithfully-formed inputs (a wheel is a zip, an sdist a tar.gz
with the usual top folder and PKG-INFO); no third-party text is committed.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from redrobe.documents import file_digest
from redrobe.sources.archive import Archive, Pin
from redrobe.sources.sink import OutputDirs

Members = dict[str, bytes]


def write_zip(path: Path, members: Members) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, members: Members) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def make_archive(tmp_path: Path) -> Callable[..., Archive]:
    """make_archive(name, version, members, kind="sdist"|"wheel") -> a verified-like Archive."""

    def make(name: str, version: str, members: Members, kind: str = "sdist") -> Archive:
        if kind == "wheel":
            path = write_zip(tmp_path / f"{name}-{version}-py3-none-any.whl", members)
        else:
            path = write_tar(tmp_path / f"{name}-{version}.tar.gz", members)
        return Archive(Pin(name, version, path.name, file_digest(path)), path)

    return make


@pytest.fixture
def dirs(tmp_path: Path) -> OutputDirs:
    return OutputDirs(tmp_path / "raw", tmp_path / "removed", tmp_path / "quarantine")
