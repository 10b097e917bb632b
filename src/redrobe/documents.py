"""The Document record and shard I/O.

Shards are Parquet files (zstd) laid out as ``<root>/<slice>/part-NNNNN.parquet``.
Every shard has the columns ``id``, ``text``, ``source`` and ``meta`` (a JSON object
serialized with sorted keys, so identical inputs give byte-identical files), plus any
extra string/number columns a stage adds (``reason``, ``duplicate_of``, ``error``...).

Reading streams record batches, so a stage holds at most one batch in memory.
Writing goes to a temporary sibling directory that is renamed into place only when
the stage finishes (:func:`atomic_dir`), so an interrupted stage never leaves an
output that looks complete.

A data stage gives each document a :class:`Status`: kept (moves on), removed (with a
reason) or quarantined (with an error).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from redrobe.errors import InputError

SHARD_GLOB = "*/part-*.parquet"
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


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_shards(root: str | os.PathLike, slice_name: str | None = None) -> list[Path]:
    """All shards under ``root`` (optionally one slice), sorted for determinism."""
    root = Path(root)
    pattern = f"{slice_name}/part-*.parquet" if slice_name else SHARD_GLOB
    return sorted(root.glob(pattern))


def shard_path(root: str | os.PathLike, slice_name: str, index: int) -> Path:
    return Path(root) / slice_name / f"part-{index:05d}.parquet"


def read_documents(path: str | os.PathLike, batch_size: int = 256) -> Iterator[Document]:
    """Stream the documents of one shard, ``batch_size`` rows at a time.

    A shard that cannot be read (corrupt file, missing column, bad meta JSON) raises
    InputError naming the file and, where known, the row.
    """
    try:
        pf = pq.ParquetFile(path)
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


def count_documents(path: str | os.PathLike) -> int:
    return pq.ParquetFile(path).metadata.num_rows


class ShardWriter:
    """Write documents to one Parquet shard in bounded row groups.

    The file is created lazily on the first document, and ``close`` writes an empty
    shard with the base schema when nothing was written, so every input shard maps to
    exactly one output shard (the lineage edge stays one-to-one).
    """

    def __init__(self, path: str | os.PathLike, batch_size: int = 256,
                 extra_columns: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.extra_columns = tuple(extra_columns)
        self.count = 0
        self._rows: list[Document] = []
        self._writer: pq.ParquetWriter | None = None

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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, self._schema(), compression="zstd")
        self._writer.write_table(self._table(self._rows))
        self._rows = []

    def close(self) -> None:
        self._flush()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self._table([]), self.path, compression="zstd")
        else:
            self._writer.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success replace ``path`` with it.

    On an exception the temporary directory is removed and ``path`` is left as it was
    (DVC already removed stale outputs before the stage ran), so a crashed stage
    never leaves a complete-looking output.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final) if final.is_dir() else final.unlink()
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
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
