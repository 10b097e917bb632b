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

An output that must be built on a local disk (token arrays, a tokenizer, an HTML
site) is built in a local staging directory and published to its URL by
:func:`publish_tree`, its manifest last. Readers that need local files (memory maps,
pread) get a committed remote output through :func:`fetch_tree`: a bounded,
content-addressed cache of verified copies (see the fetch cache section below).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterable, cast

import fsspec

from redrobe.errors import InputError

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
    entries, sidecars = [], []
    for rel in _files(fs, base):
        file = root / rel
        sidecar = entry_sidecar(file)
        entries.append(_entry(file, rel, sidecar, rows_of, fs))
        sidecars.append(sidecar)
    _write_manifest(root, entries)
    for sidecar in sidecars:
        _remove_file(sidecar)
    return entries


def _files(fs: Any, base: str) -> list[str]:
    """The paths, relative to ``base``, of an output's files (hidden ones and the
    manifest left out), in the manifest's order."""
    return [f[len(base):].lstrip("/") for f in sorted(fs.find(base)) if not _hidden(f, base)]


def _write_manifest(root: Path, entries: list[Entry]) -> None:
    payload = {"version": MANIFEST_VERSION, "files": [asdict(e) for e in entries]}
    put_bytes(str(root / MANIFEST), (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())


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


def process_alive(pid: int) -> bool:
    """Whether the process ``pid`` runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        pass
    return True


def remove_tree(path: str | os.PathLike) -> None:
    """Delete ``path`` and everything under it, if it exists."""
    fs, name = _fs(location(path))
    if fs.exists(name):
        fs.rm(name, recursive=True)


# ----------------------------------------------------------------------------- local builds
#
# Some outputs can only be built on a local disk (memory-mapped token arrays, the BPE
# trainer's save, Great Expectations' HTML). For a URL output such a stage builds in a
# local staging directory and publishes it here once it is complete: each file's
# sha256 is computed from the bytes as they are uploaded, so the manifest, written
# last, lists exactly what the store received and nothing is read back.

def publish_tree(local: str | os.PathLike, url: str | os.PathLike, rows_of: Any) -> list[Entry]:
    """Upload the complete directory ``local`` to ``url`` and commit it there by its
    manifest, last. The old output is uncommitted first (its manifest deleted: readers
    refuse it from here on, then its files), as for an output written in place. The
    entries equal those of :func:`commit_manifest` on ``local``: same files, order,
    sizes, digests and rows (a sidecar's rows, else ``rows_of`` for a Parquet file)."""
    source, target = location(local), location(url)
    remove_manifest(target)
    remove_tree(target)
    fs, base = _fs(source)
    entries = [_upload(source / rel, target / rel, rel, rows_of) for rel in _files(fs, base)]
    _write_manifest(target, entries)
    return entries


def _upload(file: Path, target: Path, rel: str, rows_of: Any) -> Entry:
    tfs, name = _fs(target)
    with open(file, "rb") as src, tfs.open(name, "wb") as out:
        sink = HashingWriter(out)   # (an upload cut short leaves the output uncommitted)
        for chunk in iter(lambda: src.read(1 << 20), b""):
            sink.write(chunk)
    rows = None
    if rel.endswith(".parquet"):
        try:   # the rows its writer counted, else counted now (a local file: the footer)
            rows = json.loads(get_bytes(str(entry_sidecar(file))))["rows"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            rows = rows_of(file)
    return Entry(rel, sink.size, sink.hash.hexdigest(), rows)


# ----------------------------------------------------------------------------- fetch cache
#
# The model-side readers memory-map and pread their inputs (token arrays, tokenizer
# files), which needs local files. A committed output on object storage is fetched into
# a local cache directory laid out by content:
#
#     <cache>/objects/<sha256[:2]>/<sha256>    one copy of each file's bytes
#     <cache>/trees/<url key>-<manifest key>/  the output's tree: hard links to the objects
#                                              and its manifest
#
# A file is downloaded once, its digest checked against the manifest's as it is written;
# a later version of the output that shares it links the same object. When a new
# version of a URL is fetched its older trees are deleted and every object no tree
# links any more with them, so the cache holds one copy of each URL's newest committed
# version (the bound: the size of the remote inputs). A reader that still has a replaced
# version's files open keeps reading them (POSIX unlink semantics).

OBJECTS, TREES = "objects", "trees"


def fetch_tree(url: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """A local directory holding the committed output at ``url``: ``url`` itself when
    it is local, else its tree in the fetch cache ``cache_dir`` (fetched when missing).
    An output without a manifest is refused as uncommitted; a file whose bytes do not
    match its manifest entry raises InputError naming its URL."""
    if not is_url(str(url)):
        return location(url)
    root = location(url)
    try:
        manifest = read_manifest(root)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if manifest is None:
        raise InputError(f"{root}: no {MANIFEST}: not a committed output (a stage that wrote it "
                         "died or is still running); rerun the stage that writes it")
    cache = Path(cache_dir).absolute()   # task processes may start in another directory
    key = _key(str(root))
    tree = cache / TREES / f"{key}-{_key(json.dumps([asdict(e) for e in manifest]))}"
    if not tree.is_dir():
        _build_tree(root, manifest, cache, tree)
        _evict(cache, key, keep=tree)
    return tree


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _build_tree(root: Path, manifest: list[Entry], cache: Path, tree: Path) -> None:
    """Fill a staging directory with the output's files and rename it into place: a tree
    in the cache is complete. Another process that built the same tree first wins."""
    staging = tree.with_name(f".{tree.name}.tmp-{uuid.uuid4().hex}-{os.getpid()}")
    try:
        for entry in manifest:
            _fetch_file(root, entry, cache, staging / entry.path)
        _write_manifest(staging, manifest)
        try:
            os.rename(staging, tree)
        except OSError:
            if not tree.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_file(root: Path, entry: Entry, cache: Path, dest: Path) -> None:
    """Put ``entry``'s bytes at ``dest``: a link to the cached object, else downloaded
    (digest checked) and then linked into the objects."""
    obj = cache / OBJECTS / entry.sha256[:2] / entry.sha256
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(obj, dest)
        return
    except FileNotFoundError:
        pass            # not cached, or evicted by another process just now
    except OSError:     # a filesystem without hard links: a copy
        if obj.is_file():
            shutil.copyfile(obj, dest)
            return
    _download(root / entry.path, entry, dest)
    obj.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(dest, obj)
    except FileExistsError:
        pass
    except OSError:
        pass            # no hard links here: the tree keeps the only copy


def _download(url: Path, entry: Entry, dest: Path) -> None:
    try:
        with open_read(url) as src, open(dest, "wb") as out:
            sink = HashingWriter(out)
            for chunk in iter(lambda: src.read(1 << 20), b""):
                sink.write(chunk)
    except FileNotFoundError as exc:
        raise InputError(f"{url}: listed in its output's {MANIFEST} but missing ({exc}); "
                         "rerun the stage that writes it") from exc
    digest = sink.hash.hexdigest()
    if digest != entry.sha256 or sink.size != entry.bytes:
        raise InputError(f"{url}: {sink.size} bytes with sha256 {digest}, but its output's "
                         f"{MANIFEST} lists {entry.bytes} bytes with sha256 {entry.sha256}: "
                         "changed after it was committed; rerun the stage that writes it")


def _evict(cache: Path, key: str, keep: Path) -> None:
    """Delete the other trees of the URL ``key`` (older versions), then every object
    that no tree links any more (its link count is 1: the object's own name)."""
    for old in (cache / TREES).glob(f"{key}-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    for staging in (cache / TREES).glob(f".{key}-*.tmp-*"):   # left by a killed fetch
        pid = staging.name.rsplit("-", 1)[1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
    for obj in (cache / OBJECTS).glob("*/*"):
        try:
            if obj.stat().st_nlink == 1:
                obj.unlink()
        except FileNotFoundError:
            pass
