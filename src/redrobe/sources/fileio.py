"""Input locations for the readers: local paths, globs and fsspec URLs, opened uniformly.

    for source in expand("data/in/*.warc.gz"):           # or "s3://bucket/cc/*.wet.gz",
        source.name, source.is_dir                        #    "memory://in/Posts.xml", "file:///x"
        with source.open() as fh: ...                     # decompressed by name (.gz/.bz2/.zst/.xz)
        with source.open_raw() as fh: ...                 # the bytes as stored
        source.sha256()                                   # of the stored bytes (dirs: of the tree)
        for rel, member in source.walk(): ...             # a directory's files, sorted
        source.children()                                 # the files directly inside it

A local path or glob (no ``protocol://``) keeps the name it was given (relative
paths stay relative, so provenance does not depend on the checkout's location);
a URL is expanded by fsspec and named ``protocol://path``. A pattern that matches
nothing is an :class:`InputError` naming it: a missing input is a configuration
mistake, not a bad record.
"""

from __future__ import annotations

import bz2
import contextlib
import glob
import gzip
import hashlib
import io
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import fsspec
import zstandard
from fsspec.implementations.local import LocalFileSystem

from redrobe.errors import InputError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One input file or directory on some filesystem (picklable: fsspec filesystems are)."""

    name: str                       # as shown in provenance, errors and metrics
    fs: fsspec.AbstractFileSystem
    path: str                       # the path inside ``fs``
    is_dir: bool = False

    @property
    def basename(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def open_raw(self) -> IO[bytes]:
        return self.fs.open(self.path, "rb")

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """A binary reader that decompresses by file name (.gz, .bz2, .zst, .xz)."""
        with self.open_raw() as raw, decompressed(raw, self.basename) as fh:
            yield fh

    def sha256(self) -> str:
        """sha256 of the stored bytes; for a directory, of its sorted (path, sha256) list."""
        h = hashlib.sha256()
        if self.is_dir:
            for rel, member in self.walk():
                h.update(f"{rel}\x00{member.sha256()}\n".encode())
            return h.hexdigest()
        with self.open_raw() as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()

    def children(self) -> list[Source]:
        """The files directly inside a directory (not its subdirectories), sorted by name."""
        entries = self.fs.ls(self.path.rstrip("/"), detail=True)
        return [Source(f"{self.name.rstrip('/')}/{e['name'].rstrip('/').rsplit('/', 1)[-1]}",
                       self.fs, e["name"])
                for e in sorted(entries, key=lambda e: e["name"]) if e["type"] == "file"]

    def walk(self) -> Iterator[tuple[str, Source]]:
        """Every file under a directory as (posix path relative to it, Source), sorted."""
        root = self.path.rstrip("/")
        for path in sorted(self.fs.find(root, withdirs=False)):
            rel = path[len(root):].lstrip("/") if path.startswith(root) else path
            yield rel, Source(f"{self.name.rstrip('/')}/{rel}", self.fs, path)


@contextlib.contextmanager
def decompressed(raw: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    """Wrap a binary stream in the decompressor its name asks for (none for other names)."""
    lower = name.lower()
    if lower.endswith((".gz", ".tgz")):
        with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            yield fh  # type: ignore[misc]  # typeshed: GzipFile is no IO[bytes] (BZ2File is)
    elif lower.endswith(".bz2"):
        with bz2.BZ2File(raw, "rb") as fh:
            yield fh
    elif lower.endswith(".xz"):
        with lzma.LZMAFile(raw, "rb") as fh:
            yield fh
    elif lower.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        with io.BufferedReader(reader) as fh:  # line iteration needs a buffered reader
            yield fh
    else:
        yield raw


def expand(pattern: str) -> list[Source]:
    """The files and directories a path, glob or fsspec URL names, sorted, at least one."""
    if "://" in pattern or "::" in pattern:
        return _expand_url(pattern)
    fs = LocalFileSystem()
    if glob.has_magic(pattern):
        names = sorted(glob.glob(pattern, recursive=True))
        if not names:
            raise InputError(f"{pattern!r} matches no file")
    else:
        if not Path(pattern).exists():
            raise InputError(f"{pattern}: no such file")
        names = [pattern]
    return [Source(n, fs, str(Path(n).resolve()), Path(n).is_dir()) for n in names]


def _expand_url(pattern: str) -> list[Source]:
    fs, path = fsspec.core.url_to_fs(pattern)
    paths = sorted(fs.glob(path)) if glob.has_magic(path) else [path]
    paths = [p for p in paths if fs.exists(p)]
    if not paths:
        raise InputError(f"{pattern!r} matches no file")
    protocol = pattern.split("://", 1)[0] if "://" in pattern else ""
    return [Source(f"{protocol}://{path}" if protocol else path, fs, path, fs.isdir(path))
            for path in paths]
