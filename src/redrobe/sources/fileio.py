"""Input locations for the readers: local paths, globs and fsspec URLs, opened uniformly.

    for source in expand("data/in/*.warc.gz"):           # or "s3://bucket/cc/*.wet.gz",
        source.name, source.is_dir                        #    "memory://in/Posts.xml", "file:///x"
        with source.open() as fh: ...                     # decompressed by name (.gz/.bz2/.zst/.xz)
        with source.open(budget) as fh: ...               # ... every byte charged to the budget
        with source.open_raw() as fh: ...                 # the bytes as stored
        source.sha256()                                   # of the stored bytes (dirs: of the tree)
        hashed = source.hashed(); read(hashed); hashed.digest.hexdigest()  # the same, one pass
        for rel, member in source.walk(): ...             # a directory's files, sorted
        source.children()                                 # the files directly inside it
    capped = read_capped(fh, limit)                       # first ``limit`` bytes, size counted

Symbolic links are never followed: ``walk`` yields a link as a Source with
``is_link`` set (a linked directory is not descended) and ``children`` leaves links
out, so a link in a tree cannot pull a file from outside it into the data.

One pass: :meth:`Source.hashed` gives a source whose first open feeds every byte the
reader reads to a sha256 and, when the reader closes it, the bytes it left unread, so
an input is hashed by the read that parses it (:class:`InputDigest`); an input that is
opened twice or read out of order (Parquet reads its footer first, a directory is
many files) is hashed by a read of its own instead, with the same digest.

Budgets (docs/security.md, "Readers"): a :class:`Budget` caps the decompressed bytes
one input may yield (``ingest.max_input_bytes``; over it, :class:`InputTooLarge`),
:func:`read_capped` and :func:`capped_lines` hold at most a per-document number of
bytes and only count the rest, and :class:`RecordMeter` stops a streaming parser
whose current record grows past its budget (:class:`RecordTooLarge`).

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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

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
    is_link: bool = False           # a symbolic link (never followed)

    @property
    def basename(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def open_raw(self) -> IO[bytes]:
        return self.fs.open(self.path, "rb")

    @contextlib.contextmanager
    def open(self, budget: Budget | None = None) -> Iterator[IO[bytes]]:
        """A binary reader that decompresses by file name (.gz, .bz2, .zst, .xz); with a
        budget, every decompressed byte read is charged to it."""
        with self.open_raw() as raw, decompressed(raw, self.basename) as fh:
            yield metered(fh, budget)

    def sha256(self) -> str:
        """sha256 of the stored bytes; for a directory, of its sorted (path, sha256) list."""
        h = hashlib.sha256()
        if self.is_dir:
            for rel, member in self.walk():
                digest = f"link:{member.link_target()}" if member.is_link else member.sha256()
                h.update(f"{rel}\x00{digest}\n".encode())
            return h.hexdigest()
        with self.open_raw() as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()

    def hashed(self) -> HashedSource:
        """This input, hashed by the reads its reader makes (:class:`InputDigest`)."""
        return HashedSource(self.name, self.fs, self.path, self.is_dir, self.is_link,
                            digest=InputDigest(self))

    def link_target(self) -> str:
        """Where a symbolic link points (its text, not followed)."""
        return os.readlink(self.path) if isinstance(self.fs, LocalFileSystem) else ""

    def children(self) -> list[Source]:
        """The files directly inside a directory (not its subdirectories, not symbolic
        links), sorted by name."""
        entries = self.fs.ls(self.path.rstrip("/"), detail=True)
        return [Source(f"{self.name.rstrip('/')}/{e['name'].rstrip('/').rsplit('/', 1)[-1]}",
                       self.fs, e["name"])
                for e in sorted(entries, key=lambda e: e["name"])
                if e["type"] == "file" and not e.get("islink")]

    def walk(self) -> Iterator[tuple[str, Source]]:
        """Every file and symbolic link under a directory as (posix path relative to it,
        Source), sorted; a linked directory is listed, not descended."""
        root = self.path.rstrip("/")
        for path, is_link in sorted(_tree(self.fs, root)):
            rel = path[len(root):].lstrip("/") if path.startswith(root) else path
            yield rel, Source(f"{self.name.rstrip('/')}/{rel}", self.fs, path, is_link=is_link)


class InputDigest:
    """The sha256 of one input's stored bytes, taken from the pass its reader makes.

    The first open is hashed as it is read and, at close, to its end (what the reader
    left unread is read then, once); a second open or a seek elsewhere than the read
    position spoils that pass, and :meth:`hexdigest` then reads the input again. An
    error of the store (open or read) is kept: :meth:`hexdigest` raises it, since an
    input that could not be read whole has no digest.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.hash = hashlib.sha256()
        self.opens = 0
        self.whole = False        # the first open was read in order to its end
        self.error: Exception | None = None

    def open(self, raw: Callable[[], IO[bytes]]) -> IO[bytes]:
        self.opens += 1
        try:
            fh = raw()
        except Exception as exc:
            self.error = exc
            raise
        return io.BufferedReader(_Hashing(fh, self), _CHUNK) if self.opens == 1 else fh

    def hexdigest(self) -> str:
        if self.error is not None:
            raise self.error
        return self.hash.hexdigest() if self.whole and self.opens == 1 else self.source.sha256()


class _Reader(io.RawIOBase):
    """A raw reader whose subclass says what one read returns (:meth:`_read`)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def _read(self, size: int) -> bytes:
        raise NotImplementedError


class _Hashing(_Reader):
    """A raw reader that feeds what it reads, in order, to an :class:`InputDigest`."""

    def __init__(self, inner: IO[bytes], digest: InputDigest) -> None:
        self.inner, self.digest = inner, digest
        self.position, self.in_order = 0, True

    def seekable(self) -> bool:
        return self.inner.seekable()

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = self.inner.seek(offset, whence)
        self.in_order = self.in_order and target == self.position
        self.position = target
        return target

    def _read(self, size: int) -> bytes:
        try:
            data = self.inner.read(size)
        except Exception as exc:
            self.digest.error = exc
            raise
        if self.in_order:
            self.digest.hash.update(data)
        self.position += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                if self.in_order and self.digest.error is None:
                    while self._read(_CHUNK):  # the bytes the reader left, for the digest
                        pass
                    self.digest.whole = True
            finally:
                self.inner.close()
                super().close()


@dataclass(frozen=True)
class HashedSource(Source):
    """A :class:`Source` whose reads are hashed (see :class:`InputDigest`)."""

    digest: InputDigest = field(kw_only=True, compare=False)

    def open_raw(self) -> IO[bytes]:
        return self.digest.open(super().open_raw)


def _tree(fs: fsspec.AbstractFileSystem, root: str) -> Iterator[tuple[str, bool]]:
    """(path, is a symbolic link) of every file under ``root``, links not followed."""
    if not isinstance(fs, LocalFileSystem):  # remote filesystems have no symbolic links
        yield from ((path, False) for path in fs.find(root, withdirs=False))
        return
    for top, dirs, files in os.walk(root, onerror=_unreadable, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            yield Path(path).as_posix(), os.path.islink(path)


def _unreadable(error: OSError) -> None:
    raise error  # os.walk would skip a directory it cannot list: nothing may go missing


# ----------------------------------------------------------------------------- budgets

class InputTooLarge(InputError):
    """An input yielded more decompressed bytes than ``ingest.max_input_bytes``."""


class RecordTooLarge(InputError):
    """A streaming parser's current record grew past the per-document budget."""


@dataclass
class Budget:
    """The decompressed bytes one input may yield (``ingest.max_input_bytes``)."""

    name: str
    limit: int
    used: int = 0

    def charge(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise InputTooLarge(f"more than {self.limit} bytes after decompression "
                                "(ingest.max_input_bytes); the rest of the input is not read")


class Metered(_Reader):
    """A reader that charges every byte it passes on to a :class:`Budget`."""

    def __init__(self, inner: IO[bytes], budget: Budget) -> None:
        self.inner, self.budget = inner, budget

    def _read(self, size: int) -> bytes:
        read = getattr(self.inner, "read1", self.inner.read)  # what is there, no more
        data: bytes = read(size)
        self.budget.charge(len(data))
        return data


def metered(fh: IO[bytes], budget: Budget | None) -> IO[bytes]:
    """``fh`` with every byte read charged to ``budget`` (``fh`` itself when None)."""
    return fh if budget is None else io.BufferedReader(Metered(fh, budget), _CHUNK)


class RecordMeter(_Reader):
    """A reader for streaming parsers (XML) that counts the bytes read since the last
    :meth:`next_record` and raises :class:`RecordTooLarge` past ``limit``: the parser
    holds a record whole, so this bounds what it can hold."""

    def __init__(self, inner: IO[bytes], limit: int, what: str) -> None:
        self.inner, self.limit, self.what = inner, limit, what
        self.since = 0
        self.where = "the first record"

    def next_record(self, where: str) -> None:
        """A record ended; ``where`` names the next one in an error."""
        self.since, self.where = 0, where

    def _read(self, size: int) -> bytes:
        data = self.inner.read(size)
        self.since += len(data)
        if self.since > self.limit:
            raise RecordTooLarge(f"{self.where} is larger than {self.limit} bytes of {self.what} "
                                 "(the per-document budget set by ingest.max_doc_chars); "
                                 "the rest of the input is not read")
        return data


@dataclass(frozen=True)
class Capped:
    """The first bytes of a document and its full size (counted, not held)."""

    head: bytes
    size: int

    @property
    def complete(self) -> bool:
        return self.size == len(self.head)


def read_capped(fh: IO[bytes], limit: int) -> Capped:
    """At most ``limit`` bytes of ``fh``; the rest is read in chunks and only counted."""
    head = fh.read(limit)
    size = len(head)
    if size == limit:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            size += len(chunk)
    return Capped(head, size)


def capped_lines(fh: IO[bytes], limit: int) -> Iterator[Capped]:
    """The lines of ``fh`` (newline kept), each holding at most ``limit`` bytes."""
    while line := fh.readline(limit):
        size = len(line)
        if size == limit and not line.endswith(b"\n"):
            while rest := fh.readline(_CHUNK):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
        yield Capped(line, size)


class Pushback(_Reader):
    """A reader that can be handed bytes back (:meth:`unread`) and knows its position."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner, self.pending, self.position = inner, b"", 0

    def unread(self, data: bytes) -> None:
        self.pending, self.position = data + self.pending, self.position - len(data)

    def _read(self, size: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
        else:
            data = getattr(self.inner, "read1", self.inner.read)(size)
        self.position += len(data)
        return data

    def read_exactly(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the stream."""
        parts, wanted = [], size
        while wanted and (data := self.read(min(wanted, _CHUNK))):
            parts.append(data)
            wanted -= len(data)
        return b"".join(parts)

    def readline(self, limit: int | None = -1) -> bytes:
        limit = -1 if limit is None else limit
        line = self.pending if limit < 0 else self.pending[:limit]
        cut = line.find(b"\n")
        if cut >= 0:
            line = line[:cut + 1]
        elif limit < 0 or len(line) < limit:
            line += self.inner.readline(limit - len(line) if limit >= 0 else -1)
        self.pending = self.pending[min(len(line), len(self.pending)):]
        self.position += len(line)
        return line


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
