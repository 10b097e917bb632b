"""Pinned distributions: download when missing, sha256 verification, reading members."""

import email.message
import hashlib
import subprocess
from pathlib import Path

import pytest
from hostile import tar_bytes

from redrobe.errors import InputError
from redrobe.sources.archive import SDIST, Pin, fetch, is_permissive, license_from_metadata
from redrobe.sources.sample import GENSIM

CONTENT = b"pretend archive bytes"
PIN = Pin("demo", "1.0", "demo-1.0.tar.gz", hashlib.sha256(CONTENT).hexdigest())


class FakePip:
    """Stands in for `pip download`: records the command, writes the archive file."""

    def __init__(self, content: bytes | None = CONTENT, returncode: int = 0) -> None:
        self.content, self.returncode, self.calls = content, returncode, []

    def __call__(self, cmd, **kwargs):
        self.calls.append(cmd)
        self.requirements = Path(cmd[cmd.index("-r") + 1]).read_text()
        if self.content is not None and self.returncode == 0:
            dest = Path(cmd[cmd.index("--dest") + 1])
            (dest / PIN.filename).write_bytes(self.content)
        return subprocess.CompletedProcess(cmd, self.returncode, "", "ERROR: No matching distribution")


def test_fetch_downloads_once_with_pinned_selectors(tmp_path):
    pip = FakePip()
    path = fetch(PIN, tmp_path / "cache", runner=pip)
    assert path == tmp_path / "cache" / PIN.filename and path.read_bytes() == CONTENT
    cmd = pip.calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--require-hashes" in cmd
    assert cmd[-4:-2] == [*SDIST]
    assert pip.requirements == f"demo==1.0 --hash=sha256:{PIN.sha256}\n"
    fetch(PIN, tmp_path / "cache", runner=pip)  # cached: pip is not run again
    assert len(pip.calls) == 1


def test_the_archive_appears_in_the_cache_whole(tmp_path):
    """pip writes into a private folder: a process sharing the cache sees no partial file."""
    cache = tmp_path / "cache"

    class Watching(FakePip):
        def __call__(self, cmd, **kwargs):
            assert Path(cmd[cmd.index("--dest") + 1]).parent == cache
            done = super().__call__(cmd, **kwargs)
            assert not (cache / PIN.filename).exists()
            return done

    assert fetch(PIN, cache, runner=Watching()).read_bytes() == CONTENT
    assert [p.name for p in cache.iterdir()] == [PIN.filename]


def test_platform_wheels_are_pinned_to_one_file():
    assert "--platform" in GENSIM.pip_args and "--python-version" in GENSIM.pip_args
    assert GENSIM.filename.startswith("gensim-4.4.0-cp311-cp311-manylinux")


def test_sha256_mismatch_names_the_file(tmp_path):
    (tmp_path / PIN.filename).write_bytes(b"tampered")
    with pytest.raises(InputError, match=f"{PIN.filename}: sha256 .* does not match"):
        fetch(PIN, tmp_path, runner=FakePip())


def sdist_with_build_code(links: Path, marker: Path) -> bytes:
    """demo-1.0.tar.gz in ``links`` whose setup.py writes ``marker`` when anything runs it."""
    setup = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('setup.py ran')\n"
             "from setuptools import setup\nsetup(name='demo', version='1.0')\n")
    members = {"demo-1.0/setup.py": setup,
               "demo-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"}
    sdist = tar_bytes(members, "w:gz")
    links.mkdir()
    (links / "demo-1.0.tar.gz").write_bytes(sdist)
    return sdist


def local_pin(links: Path, sha256: str) -> Pin:
    # offline: pip finds the sdist in a local find-links folder; no build isolation, so a
    # build (if pip ever got that far) needs nothing from an index
    return Pin("demo", "1.0", "demo-1.0.tar.gz", sha256,
               SDIST + ("--no-index", "--find-links", str(links), "--no-build-isolation"))


def test_a_tampered_sdist_is_refused_before_its_build_code_runs(tmp_path):
    marker = tmp_path / "build-code-ran"
    sdist_with_build_code(tmp_path / "links", marker)
    pin = local_pin(tmp_path / "links", hashlib.sha256(b"the genuine archive").hexdigest())
    with pytest.raises(InputError, match=r"demo-1.0.tar.gz: the file pip found for demo==1.0 "
                                         r"does not match the pinned sha256"):
        fetch(pin, tmp_path / "cache")
    assert not marker.exists()
    assert not (tmp_path / "cache" / pin.filename).exists()


def test_the_pinned_sdist_is_fetched_with_real_pip(tmp_path):
    """The same archive under its true sha256 is accepted. pip then prepares the verified
    sdist, which runs its setup.py: the marker shows the hook in the test above is live
    (and the limit docs/security.md states: a pinned sdist's own build code does run)."""
    marker = tmp_path / "build-code-ran"
    data = sdist_with_build_code(tmp_path / "links", marker)
    pin = local_pin(tmp_path / "links", hashlib.sha256(data).hexdigest())
    assert fetch(pin, tmp_path / "cache").read_bytes() == data
    assert marker.exists()


def test_download_failure_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="could not download demo==1.0.*No matching"):
        fetch(PIN, tmp_path, runner=FakePip(returncode=1))


def test_members_are_read_in_archive_order_without_extracting(make_archive, tmp_path):
    members = {"demo-1.0/b.txt": b"bee", "demo-1.0/a.txt": b"ay", "demo-1.0/PKG-INFO":
               b"Metadata-Version: 2.1\nName: demo\nLicense: MIT\n"}
    for kind in ("sdist", "wheel"):
        archive = make_archive("demo", "1.0", members, kind=kind)
        found = list(archive.iter_members(lambda n: n.endswith(".txt")))
        assert found == [("demo-1.0/b.txt", b"bee"), ("demo-1.0/a.txt", b"ay")]
        with archive.open("demo-1.0/a.txt") as fh:
            assert fh.read() == b"ay"
        with (pytest.raises(InputError, match="no member 'demo-1.0/missing'"),
              archive.open("demo-1.0/missing")):
            pass
    assert make_archive("demo", "1.0", members).license() == "MIT"
    assert not (tmp_path / "demo-1.0").exists()


def test_missing_metadata_is_an_input_error(make_archive):
    archive = make_archive("demo", "1.0", {"demo-1.0/a.py": b"x = 1\n"})
    with pytest.raises(InputError, match="no package metadata"):
        archive.license()


def _meta(**headers) -> email.message.Message:
    msg = email.message.Message()
    for key, value in headers.items():
        for v in value if isinstance(value, list) else [value]:
            msg[key.replace("_", "-")] = v
    return msg


def test_license_from_metadata_precedence():
    assert license_from_metadata(_meta(License_Expression="Apache-2.0", License="ASL")) == "Apache-2.0"
    assert license_from_metadata(_meta(License="BSD-3-Clause")) == "BSD-3-Clause"
    classifiers = ["Programming Language :: Python", "License :: OSI Approved :: MIT License"]
    assert license_from_metadata(_meta(License="UNKNOWN", Classifier=classifiers)) == "MIT"
    long_text = "Copyright (c) 2010\nPermission is hereby granted, free of charge..."
    assert license_from_metadata(_meta(License=long_text, Classifier=[
        "License :: OSI Approved :: Apache Software License"])) == "Apache-2.0"
    assert license_from_metadata(_meta()) == "unknown"


def test_permissive_licenses():
    assert all(map(is_permissive, ["MIT", "BSD-3-Clause", "BSD", "Apache-2.0"]))
    assert not any(map(is_permissive, ["GPL", "LGPL-2.1-only", "unknown"]))
