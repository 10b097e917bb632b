"""Where stage data lives: local paths or fsspec URLs, and the manifests that commit outputs.

Every location a stage reads or writes is a string: a local path, or a URL of any
fsspec filesystem (``s3://bucket/data/raw``, ``gs://...``, ``memory://...``).
:func:`location` turns one into a path object with pathlib's API (a plain
:class:`pathlib.Path` for local paths, a ``universal_pathlib`` ``UPath`` for URLs), so
stage code joins, names and opens locations the same way wherever they are. Local paths
are opened directly: fsspec's layer costs several times an open, and the partitioned
steps open thousands of files.

A directory output is committed by its manifest, ``_manifest.json``, written last:
every file of the output with its size, its sha256 and, for Parquet shards, its row
count. :class:`redrobe.documents.ShardWriter` computes a shard's digest while it writes
the bytes and leaves it in a small sidecar (``.<name>.entry``) that the commit folds
into the manifest, so nothing is read back from the store to commit it. Readers list an
output from its manifest and nothing else; on object storage an output without one is
not committed (a stage that died while writing it, or one still running) and is
refused, naming the location.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterable, cast

import fsspec

MANIFEST = "_manifest.json"
ENTRY_SUFFIX = ".entry"        # a sidecar: ``.<file name>.entry`` beside the file it describes
MANIFEST_VERSION = 1


def is_url(path: str | os.PathLike) -> bool:
    """True for a URL of a filesystem other than the local one (``file://`` is local)."""
    text = str(path)   # a UPath's str is its URL (it is no os.PathLike)
    return "://" in text and not text.startswith("file://")


def local_path(url: str) -> str | None:
    """The path of a local ``url`` (a plain path or file://), None for other schemes."""
    if "://" not in url:
        return url
    return url[len("file://"):] if url.startswith("file://") else None


def location(path: str | os.PathLike) -> Path:
    """``path`` as a path object: :class:`Path` for a local path, a ``UPath`` (pathlib's
    API over fsspec) for a URL. Typed as Path: UPath offers the same methods."""
    if isinstance(path, Path):
        return path
    text = str(path)
    local = local_path(text)
    if local is not None:
        return Path(local)
    from upath import UPath  # imported on first use: only object-storage runs need it

    return cast(Path, UPath(text))


def relative(path: str | os.PathLike, root: str | os.PathLike) -> PurePosixPath:
    """``path`` relative to ``root`` as a '/'-separated path (pathlib's relative_to gives
    UPaths whose parts are wrong for some schemes, so both are compared as text)."""
    full, base = str(location(path)), str(location(root)).rstrip("/")
    if not full.startswith(base + "/"):
        raise ValueError(f"{full} is not under {base}")
    return PurePosixPath(full[len(base) + 1:])


def join(base: str, *parts: str) -> str:
    """``base`` URL or path joined with ``parts`` by '/' (never os.sep rules for URLs)."""
    return "/".join([base.rstrip("/"), *parts])


def open_read(url: str | os.PathLike) -> IO[bytes]:
    """``url`` opened for binary reading: a local path directly, else through fsspec."""
    path = local_path(str(url))
    return open(path, "rb") if path is not None else fsspec.open(str(url), "rb").open()


def put_bytes(url: str, payload: bytes) -> None:
    """Write ``payload`` to ``url`` whole: a local file via a temporary name and a rename
    (a killed writer never leaves a complete-looking file), an object in one put."""
    path = local_path(url)
    if path is not None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
        return
    fs, path = fsspec.core.url_to_fs(url)
    fs.pipe_file(path, payload)


def get_bytes(url: str) -> bytes:
    """The whole content of ``url``."""
    with open_read(url) as fh:
        return fh.read()


def move_file(source: str, target: str) -> None:
    """Move a file, and the sidecar its writer left beside it if any, to ``target``: a
    rename locally, a copy and a delete on object storage."""
    src, dst = location(source), location(target)
    _move(src, dst)
    sidecar = entry_sidecar(src)
    if sidecar.exists():
        _move(sidecar, entry_sidecar(dst))


def _move(src: Path, dst: Path) -> None:
    if local_path(str(src)) is not None and local_path(str(dst)) is not None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return
    fs, name = _fs(src)
    fs.mv(name, _fs(dst)[1])


def file_digest(url: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open_read(url) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class HashingWriter:
    """A binary file object that hashes and counts what passes through it to ``sink``,
    so a file's digest is known the moment its last byte is written."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.sink.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sink.close()


# ----------------------------------------------------------------------------- manifests

@dataclass(frozen=True)
class Entry:
    """One file of a committed output: its path relative to the output, size, sha256,
    and rows for a Parquet shard (None for other files)."""

    path: str
    bytes: int
    sha256: str
    rows: int | None = None


def entry_sidecar(file: Path) -> Path:
    return file.with_name(f".{file.name}{ENTRY_SUFFIX}")


def write_entry(file: Path, size: int, sha256: str, rows: int | None) -> None:
    """Leave ``file``'s size, digest and rows beside it for the commit's manifest."""
    payload = json.dumps({"bytes": size, "sha256": sha256, "rows": rows}, sort_keys=True)
    put_bytes(str(entry_sidecar(file)), payload.encode("utf-8"))


def read_manifest(root: str | os.PathLike) -> list[Entry] | None:
    """The entries of the output at ``root``, or None when it has no manifest. Read
    fresh: a filesystem object that listed ``root`` before (a long-lived process, such
    as a flow that runs several stages) may cache a listing from before another
    process committed the output."""
    path = location(root) / MANIFEST
    if is_url(str(path)):
        fs, name = _fs(path)
        fs.invalidate_cache(name)
    try:
        payload = json.loads(get_bytes(str(path)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable manifest: {exc}") from exc
    try:
        return [Entry(**e) for e in payload["files"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed manifest: {exc!r}") from exc


def commit_manifest(root: Path, rows_of: Any) -> list[Entry]:
    """Write ``root``'s manifest, last: every file under it (hidden files and the
    manifest left out) with the sidecar its writer left, or, for a file written some
    other way, a digest read now. ``rows_of(file)`` gives a Parquet shard's rows. The
    sidecars are removed once the manifest is written."""
    fs, base = _fs(root)
    files = sorted(f for f in fs.find(base) if not _hidden(f, base))
    entries, sidecars = [], []
    for name in files:
        file = root / name[len(base):].lstrip("/")
        sidecar = entry_sidecar(file)
        entries.append(_entry(file, name[len(base):].lstrip("/"), sidecar, rows_of, fs))
        sidecars.append(sidecar)
    payload = {"version": MANIFEST_VERSION, "files": [asdict(e) for e in entries]}
    put_bytes(str(root / MANIFEST), (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())
    for sidecar in sidecars:
        _remove_file(sidecar)
    return entries


def _entry(file: Path, rel: str, sidecar: Path, rows_of: Any, fs: Any) -> Entry:
    size = int(fs.size(_fs(file)[1]))
    try:
        known = json.loads(get_bytes(str(sidecar)))
        if known["bytes"] == size:    # else the file was replaced after its writer closed
            return Entry(rel, size, known["sha256"], known["rows"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    rows = rows_of(file) if rel.endswith(".parquet") else None
    return Entry(rel, size, file_digest(str(file)), rows)


def manifest_digests(root: str | os.PathLike) -> dict[str, str]:
    """``str(location)`` -> sha256 of every file the output's manifest lists (none without one)."""
    base = location(root)
    return {str(base / e.path): e.sha256 for e in read_manifest(base) or []}


def remove_manifest(root: str | os.PathLike) -> None:
    """Uncommit the output at ``root``: readers refuse it until a new manifest is written."""
    _remove_file(location(root) / MANIFEST)


def listed(root: str | os.PathLike, entries: Iterable[Entry]) -> list[Path]:
    return [location(root) / e.path for e in entries]


def _hidden(found: str, base: str) -> bool:
    rel = found[len(base):].lstrip("/")
    return rel == MANIFEST or any(part.startswith(".") for part in rel.split("/"))


def _fs(path: Path) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(str(path))


def _remove_file(path: Path) -> None:
    fs, name = _fs(path)
    try:
        fs.rm_file(name)
    except FileNotFoundError:
        pass


def remove_tree(path: str | os.PathLike) -> None:
    """Delete ``path`` and everything under it, if it exists."""
    fs, name = _fs(location(path))
    if fs.exists(name):
        fs.rm(name, recursive=True)
