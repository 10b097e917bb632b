"""The Document record and shard I/O.

Shards are Parquet files (zstd) laid out as ``<root>/<slice>/part-NNNNN.parquet``, or
``<root>/<slice>/<language>/part-NNNNN.parquet`` for a slice that ingest routes by
language (``ingest.languages``). The folder a shard sits in under its root is its
*partition*: ``books`` or ``wikipedia/de`` (:func:`partition_of`); stages count,
split and evaluate per partition and look a slice's rules and params up by the base
slice (:func:`split_partition`). Every shard has the columns ``id``, ``text``,
``source`` and ``meta`` (a JSON object serialized with sorted keys, so identical inputs
give byte-identical files), plus any extra string/number columns a stage adds
(``reason``, ``duplicate_of``, ``error``, ``language``...).

Reading streams record batches, so a stage holds at most one batch in memory.
Writing goes to a staging sibling directory that is swapped into place only when the
stage finishes (:func:`atomic_dir`, :func:`atomic_dirs` for outputs committed
together), so an interrupted stage leaves the old output or the new one, complete,
never a mix or a partial one.

A data stage gives each document a :class:`Status`: kept (moves on), removed (with a
reason) or quarantined (with an error).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import functools
import glob
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Generator, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from redrobe.errors import InputError
from redrobe.storage import (
    MANIFEST,
    HashingWriter,
    commit_manifest,
    is_url,
    location,
    open_read,
    process_alive,
    publish_tree,
    read_manifest,
    relative,
    remove_manifest,
    remove_tree,
    write_entry,
)
from redrobe.storage import file_digest as file_digest

SHARD_GLOB = "*/part-*.parquet"
#: a language partition's shards, one folder deeper (``<slice>/<language>/part-*``)
PARTITION_SHARD_GLOB = "*/*/part-*.parquet"
SHARD_NAME = "part-*.parquet"
BASE_COLUMNS = ("id", "text", "source", "meta")


class Status(str, Enum):
    """A document's fate in a data stage. A member is its value wherever it is written
    (``str()``, f-strings, JSON, CSV, Parquet): ``"kept"``, as ``enum.StrEnum`` on 3.11+."""

    KEPT = "kept"
    REMOVED = "removed"
    QUARANTINED = "quarantined"

    def __str__(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Document:
    """One text document. ``extra`` holds stage columns (reason, duplicate_of, ...)."""

    id: str
    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_extra(self, **columns: Any) -> Document:
        return replace(self, extra={**self.extra, **columns})

    def with_text(self, text: str) -> Document:
        return replace(self, text=text)


def meta_json(meta: dict[str, Any]) -> str:
    """Canonical JSON for the meta column (sorted keys, no whitespace variance)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def list_shards(root: str | os.PathLike, slice_name: str | None = None) -> list[Path]:
    """All shards under ``root`` (optionally of one slice or partition), sorted for
    determinism: ``<slice>/part-*.parquet`` and ``<slice>/<language>/part-*.parquet``.

    A committed output is listed from its manifest (:mod:`redrobe.storage`): files that
    are not in it (left by a run that died, or dropped in by hand) are not shards of it.
    A local directory without a manifest (written by hand or by an older version) is
    listed by name; on object storage an output without a manifest is refused."""
    root = location(root)
    try:
        entries = read_manifest(root)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    prefix = f"{slice_name}/" if slice_name else ""
    if entries is not None:
        return sorted(root / e.path for e in entries if e.path.startswith(prefix) and is_shard(e.path))
    if is_url(str(root)):
        raise InputError(f"{root}: no {MANIFEST}: not a committed output (a stage that wrote it "
                         "died or is still running); rerun the stage that writes it")
    found = [p for pattern in (SHARD_GLOB, PARTITION_SHARD_GLOB) for p in root.glob(pattern)]
    return sorted(p for p in found if relative(p, root).as_posix().startswith(prefix))


def is_shard(rel: str) -> bool:
    """Whether a path relative to an output's root names a shard: ``part-*.parquet`` in a
    partition folder (``<slice>`` or ``<slice>/<language>``)."""
    parts = rel.split("/")
    return len(parts) in (2, 3) and fnmatch.fnmatchcase(parts[-1], SHARD_NAME)


def partition_of(shard: str | os.PathLike, root: str | os.PathLike) -> str:
    """The partition of a shard under ``root``: its folder, ``books`` or ``wikipedia/de``."""
    return relative(shard, root).parent.as_posix()


def split_partition(partition: str) -> tuple[str, str | None]:
    """(base slice, language) of a partition; language None for an unrouted slice."""
    slice_name, _, language = partition.partition("/")
    return slice_name, language or None


def base_slice(partition: str) -> str:
    """The slice whose rules and params a partition uses (``wikipedia/de`` -> ``wikipedia``)."""
    return split_partition(partition)[0]


def partition_name(slice_name: str, language: str | None = None) -> str:
    """``<slice>/<language>``, or the slice itself when it is not routed."""
    return f"{slice_name}/{language}" if language else slice_name


def shard_path(root: str | os.PathLike, partition: str, index: int) -> Path:
    """``<root>/<partition>/part-NNNNN.parquet`` (a partition is a slice or ``<slice>/<lang>``)."""
    return location(root) / partition / f"part-{index:05d}.parquet"


def read_documents(path: str | os.PathLike, batch_size: int = 256) -> Generator[Document, None, None]:
    """Stream the documents of one shard, ``batch_size`` rows at a time.

    A shard that cannot be read (corrupt file, missing column, bad meta JSON) raises
    InputError naming the file and, where known, the row.
    """
    source: Any = None
    try:
        source = _source(path)
        pf = pq.ParquetFile(source)
        extra_cols = [c for c in pf.schema_arrow.names if c not in BASE_COLUMNS]
        row = 0
        for batch in pf.iter_batches(batch_size=batch_size):
            cols = batch.to_pydict()
            for i in range(batch.num_rows):
                row += 1
                yield Document(
                    id=cols["id"][i],
                    text=cols["text"][i],
                    source=cols["source"][i],
                    meta=json.loads(cols["meta"][i]) if cols["meta"][i] else {},
                    extra={c: cols[c][i] for c in extra_cols},
                )
    except (pa.ArrowException, OSError, KeyError, json.JSONDecodeError) as exc:
        where = f"{path}" + (f" row {row}" if "row" in locals() and row else "")
        raise InputError(f"{where}: unreadable shard: {type(exc).__name__}: {exc}") from exc
    finally:
        if source is not None and not isinstance(source, str):
            source.close()


def count_documents(path: str | os.PathLike) -> int:
    source = _source(path)
    try:
        return pq.ParquetFile(source).metadata.num_rows
    finally:
        if not isinstance(source, str):
            source.close()


def _source(path: str | os.PathLike) -> Any:
    """What pyarrow reads ``path`` from: a local path as it is (pyarrow's own file I/O),
    a URL opened through fsspec (a file object that pyarrow reads by range)."""
    text = str(path)
    return open_read(text) if is_url(text) else text


class ShardWriter:
    """Write documents to one Parquet shard in bounded row groups.

    The file is created lazily on the first document, and ``close`` writes an empty
    shard with the base schema when nothing was written, so every input shard maps to
    exactly one output shard (the lineage edge stays one-to-one). The shard appears at
    ``path`` (a local path or a URL) whole, when the writer closes; its sha256 is
    computed from the bytes as they are written and left beside it for the manifest that
    commits the output (:mod:`redrobe.storage`).
    """

    def __init__(self, path: str | os.PathLike, batch_size: int = 256,
                 extra_columns: Iterable[str] = ()) -> None:
        self.path = location(path)
        self.remote = is_url(str(self.path))
        self.batch_size = batch_size
        self.extra_columns = tuple(extra_columns)
        self.count = 0
        self._rows: list[Document] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink: HashingWriter | None = None
        # Written under a name of its own and renamed over ``path`` on close: a rerun of a
        # task (a Ray retry after its node died) replaces the file whole, even while the
        # first attempt, cut off but alive, still writes its own temporary file. An object
        # store does that itself: an object appears whole when its upload completes.
        self._tmp = self.path if self.remote else \
            self.path.with_name(f".{self.path.name}.tmp-{uuid.uuid4().hex}")
        self._closed = False

    def write(self, doc: Document) -> None:
        self._rows.append(doc)
        self.count += 1
        if len(self._rows) >= self.batch_size:
            self._flush()

    def write_all(self, docs: Iterable[Document]) -> None:
        for doc in docs:
            self.write(doc)

    def _schema(self) -> pa.Schema:
        fields = [pa.field(c, pa.string()) for c in BASE_COLUMNS]
        fields += [pa.field(c, pa.string()) for c in self.extra_columns]
        return pa.schema(fields)

    def _table(self, docs: list[Document]) -> pa.Table:
        data: dict[str, list[str | None]] = {
            "id": [d.id for d in docs],
            "text": [d.text for d in docs],
            "source": [d.source for d in docs],
            "meta": [meta_json(d.meta) for d in docs],
        }
        for c in self.extra_columns:
            data[c] = [_as_str(d.extra.get(c)) for d in docs]
        return pa.Table.from_pydict(data, schema=self._schema())

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._open(), self._schema(), compression="zstd")
        self._writer.write_table(self._table(self._rows))
        self._rows = []

    def _open(self) -> HashingWriter:
        """The hashing file the Parquet bytes go to. Locally the folder is created and what
        earlier attempts at this shard left is deleted first (one task writes a shard at a
        time: an earlier attempt died, or was given up for dead)."""
        if not self.remote:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}.tmp-*"):
                stale.unlink(missing_ok=True)
        self._sink = HashingWriter(self._tmp.open("wb"))
        return self._sink

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        if self._writer is None:
            pq.write_table(self._table([]), self._open(), compression="zstd")
        else:
            self._writer.close()
        assert self._sink is not None  # opened by the first write or just above
        self._sink.close()
        if not self.remote:
            os.replace(self._tmp, self.path)
        write_entry(self.path, self._sink.size, self._sink.hash.hexdigest(), self.count)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


# ----------------------------------------------------------------------------- atomic outputs
#
# A stage writes each output directory into a staging sibling ``.<name>.tmp-<pid>`` and
# swaps it in whole when it succeeds. The swap is one renameat2(RENAME_EXCHANGE) where the
# kernel and filesystem have it (Linux >= 3.15: ext4, xfs, btrfs, tmpfs, ...), so readers
# see the old or the new directory, never neither; elsewhere the old one is first renamed
# aside to ``.<name>.old``. A stage with several outputs (ingest) writes a commit journal
# ``.<first>.commit`` once every output is complete and before the first swap, so after a
# crash the next run finishes the swaps: all outputs new, or (no journal) all old.
# What a killed writer leaves is recovered when the next writer of the same paths starts
# (:func:`recover_outputs`): the journal is rolled forward, an aside copy is put back when
# the output is missing (else deleted), and staging dirs of dead processes are deleted.

_RENAME_EXCHANGE = 2    # linux/fs.h
_AT_FDCWD = -100        # fcntl.h: paths relative to the working directory


@functools.cache
def _renameat2() -> Any:
    """libc's renameat2, or None (not Linux, or a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):  # not supported here
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _staging(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def _journal(final: Path) -> Path:
    return final.with_name(f".{final.name}.commit")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _swap_in(staged: Path, final: Path) -> None:
    """Put the complete ``staged`` at ``final``; the old output (if any) is deleted after."""
    if not os.path.lexists(final):
        os.rename(staged, final)
        return
    if exchange(staged, final):   # ``staged`` now holds the old output
        _remove(staged)
        return
    aside = _aside(final)
    _remove(aside)                # a leftover of an earlier run, if recovery did not see it
    os.rename(final, aside)       # a crash here leaves the old output aside: recovered
    os.rename(staged, final)
    _remove(aside)


def _same_inode(path: Path, inode: list[int]) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return [st.st_dev, st.st_ino] == inode


def _roll_forward(journal: Path) -> None:
    """Finish the swaps of an interrupted commit: every staged output in its journal is
    complete (the journal is written after the last of them), so finishing is safe."""
    try:
        entries = json.loads(journal.read_text(encoding="utf-8"))
        pairs = [(Path(e["staged"]), Path(e["final"]), e["inode"]) for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{journal}: unreadable commit journal ({exc}); delete it and the "
                         "outputs it names, then rerun the stage") from exc
    for staged, final, inode in pairs:
        if _same_inode(final, inode):
            continue              # swapped before the crash
        if not _same_inode(staged, inode):
            raise InputError(f"{journal}: cannot finish an interrupted commit: {staged} is gone "
                             f"and {final} is not the new output; delete the journal and rerun")
        _swap_in(staged, final)
    journal.unlink()


def recover_outputs(*paths: str | os.PathLike) -> None:
    """Clean up after a writer of ``paths`` that was killed (see the comment above)."""
    finals = [Path(p) for p in paths]
    if not finals:
        return
    journal = _journal(finals[0])
    if os.path.lexists(journal):
        _roll_forward(journal)
    for final in finals:
        aside = _aside(final)
        if os.path.lexists(aside):
            if os.path.lexists(final):
                _remove(aside)
            else:
                os.rename(aside, final)
    for path in [*finals, journal]:
        _remove_stale_staging(path)


def _remove_stale_staging(final: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` siblings of ``final`` whose process is gone (or is us)."""
    _remove_dead(final.parent, f".{glob.escape(final.name)}.tmp-*", unnamed=True)


def _remove_dead(folder: Path, pattern: str, unnamed: bool) -> None:
    """Delete the entries of ``folder`` matching ``pattern`` (ending in ``-<pid>``) whose
    process is gone or is us; ``unnamed``: also those whose suffix is no pid."""
    for stale in folder.glob(pattern):
        pid = stale.name.rsplit("-", 1)[1]
        if (unnamed and not pid.isdigit()) or (pid.isdigit() and (int(pid) == os.getpid()
                                                                  or not process_alive(int(pid)))):
            _remove(stale)


@contextlib.contextmanager
def scratch_dir(final: str | os.PathLike) -> Iterator[Path]:
    """A fresh scratch directory ``.<name>.work-<pid>`` beside ``final``, removed on exit.
    Scratch directories that killed runs left in the same folder are removed first (any
    ``.*.work-<pid>`` whose process is gone: ``final`` may itself be a staging directory
    whose name changes with every run). Beside an object-store ``final`` the scratch is
    a prefix named with a random suffix instead (no process there to ask whether it is
    alive), removed on exit."""
    final = location(final)
    if is_url(str(final)):
        work = final.with_name(f".{final.name}.work-{uuid.uuid4().hex}")
        try:
            yield work
        finally:
            remove_tree(work)
        return
    final = final.absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead(final.parent, ".*.work-*", unnamed=False)
    work = final.with_name(f".{final.name}.work-{os.getpid()}")
    work.mkdir()
    try:
        yield work
    finally:
        _remove(work)


@contextlib.contextmanager
def atomic_dirs(*paths: str | os.PathLike, build_locally: bool = False) -> Iterator[tuple[Path, ...]]:
    """Yield an empty directory to write per output; on success commit them all.

    Every output gets its manifest (:mod:`redrobe.storage`) once it is complete. A
    local output is written to a staging sibling and swapped in whole (together with the
    other local outputs: after a crash the next run completes the swaps, see the comment
    above). An output on object storage, where nothing renames a folder, is uncommitted
    first (its manifest deleted, then its old files), written in place and committed by
    its new manifest. On an exception local staging directories are removed and local
    outputs left as they were; an object-store output stays uncommitted, which readers
    refuse, so a failed stage never leaves a complete-looking output.

    ``build_locally``: a stage whose files must be built on a local disk (memory maps,
    a library's own save, HTML) gets a local staging directory for an object-store
    output too, in the system temp dir; on success it is published
    (:func:`redrobe.storage.publish_tree`: the old output uncommitted, the files
    uploaded and hashed as they go, the manifest last) and deleted. Until then the old
    remote output stays committed, and on an exception it is left as it was."""
    finals = [location(p) for p in paths]
    local = [f for f in finals if not is_url(str(f))]
    if local:
        recover_outputs(*local)
    staged = [_local_build(f) if build_locally and is_url(str(f)) else _prepare_output(f)
              for f in finals]
    try:
        yield tuple(staged)
    except BaseException:
        for directory in staged:
            if not is_url(str(directory)):
                shutil.rmtree(directory, ignore_errors=True)
        raise
    for directory, final in zip(staged, finals):
        if is_url(str(directory)) or not is_url(str(final)):
            commit_manifest(directory, count_documents)
    try:
        for directory, final in zip(staged, finals):
            if is_url(str(final)) and not is_url(str(directory)):
                publish_tree(directory, final, count_documents)
    finally:
        for directory, final in zip(staged, finals):
            if is_url(str(final)) and not is_url(str(directory)):
                shutil.rmtree(directory, ignore_errors=True)
    pairs = [(s, f) for s, f in zip(staged, finals) if not is_url(str(f))]
    if pairs:
        _commit(pairs)


def _local_build(final: Path) -> Path:
    """A fresh local directory to build the object-store output ``final`` in."""
    return Path(tempfile.mkdtemp(prefix=f"redrobe-{final.name}-"))


def _prepare_output(final: Path) -> Path:
    """Where an output is written: a fresh local staging sibling, or the object-store
    location itself, uncommitted and emptied."""
    if not is_url(str(final)):
        staged = _staging(final)
        staged.mkdir(parents=True)
        return staged
    remove_manifest(final)   # first: from here on readers refuse the output
    remove_tree(final)
    return final


def _commit(pairs: list[tuple[Path, Path]]) -> None:
    journal = _journal(pairs[0][1])
    if len(pairs) > 1:
        entries = []
        for staged, final in pairs:
            st = os.lstat(staged)
            entries.append({"staged": str(staged), "final": str(final),
                            "inode": [st.st_dev, st.st_ino]})
        write_json(journal, entries)
    for staged, final in pairs:
        _swap_in(staged, final)
    if len(pairs) > 1:
        journal.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, build_locally: bool = False) -> Iterator[Path]:
    """Yield a staging sibling of ``path``; on success swap it in (:func:`atomic_dirs`)."""
    with atomic_dirs(path, build_locally=build_locally) as (staged,):
        yield staged


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success.

    Temporary siblings that killed writers left are deleted first."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(final)
    tmp = _staging(final)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write JSON atomically with sorted keys and a trailing newline."""
    with atomic_file(path) as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
