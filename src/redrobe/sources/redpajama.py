"""The user's own RedPajama-format shards: JSONL (plain, .gz, .zst) and Parquet.

    files = expand_paths(["data/in/*.jsonl.zst", "extra/cc.parquet"])   # InputError if none
    for record in iter_records(files[0], batch_size=256):               # streamed
        record.value or record.error
    doc = to_document(record, default_slice="common_crawl")             # slice from the record

A record is ``{"text": str, "meta": {...} | JSON string, "red_pajama_subset": str}``
(RedPajama-1T's released format); ``source`` is accepted instead of
``red_pajama_subset``, and ``meta.source`` after both. The slice is that name
(RedPajama's ``book`` becomes ``books``), else ``default_slice``. A document's id
hashes (file sha256, line or row), so it is stable across runs and machines;
``meta.provenance`` records {file, sha256, line (1-based, JSONL) | row (0-based,
Parquet)}.

A record's own ``id`` (a top-level field, where the file has one) is kept as
``meta.source_id`` (a string).

Errors: a path or glob that matches nothing, an unsupported file type or a file
that cannot be read (corrupt gzip/zstd/Parquet) stops with an InputError naming the
file; a bad record (invalid UTF-8 or JSON, not an object, missing or non-string
``text``, bad ``meta`` or slice name) is quarantined with ``file:line: error``.
Blank lines are not records. Memory holds one line (at most ``max_line_bytes``,
``Limits.markup_bytes`` by default: a longer line is counted, not held, and its
record removed as ``too_long`` in the default slice with its first characters and
meta ``size_bytes``) or one Parquet row group (its declared size charged to the
budget before it is read).
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, ContextManager, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from redrobe.documents import Document, file_digest
from redrobe.errors import InputError
from redrobe.sources.base import DEFAULT_LIMITS, quarantined, stable_id, too_long
from redrobe.sources.fileio import Budget, capped_lines

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst")
PARQUET_SUFFIXES = (".parquet",)
#: RedPajama-1T names the books subset "book"; redrobe's slice is "books"
SLICE_ALIASES = {"book": "books"}
_SLICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_FIELDS = ("text", "meta", "red_pajama_subset", "source")


@dataclass(frozen=True)
class RawRecord:
    """One line/row of an input file: the parsed object, or the error that stopped it."""

    file: str
    sha256: str
    position: int                 # 1-based line (JSONL) or 0-based row (Parquet)
    unit: str                     # "line" or "row"
    value: dict[str, Any] | None
    raw: str                      # the line as text (JSONL) or "" (Parquet)
    error: str | None = None
    size: int | None = None       # bytes of a line too long to hold (raw: its first bytes)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.position}" if self.unit == "line" else f"{self.file}:row {self.position}"


# ----------------------------------------------------------------------------- files

def expand_paths(patterns: Sequence[str]) -> list[Path]:
    """Files named by paths or globs, in the given order (globs sorted), without repeats."""
    found: list[Path] = []
    seen: set[Path] = set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"ingest.paths: {pattern!r} matches no file")
        else:
            if not Path(pattern).is_file():
                raise InputError(f"ingest.paths: {pattern}: no such file")
            matches = [Path(pattern)]
        for match in matches:
            if match.resolve() not in seen:  # the same file named twice is read once
                seen.add(match.resolve())
                found.append(match)
    for path in found:
        file_kind(path)  # fail early on an unsupported file type
    return found


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise InputError(f"{path}: unsupported file type (expected one of "
                     f"{', '.join(JSONL_SUFFIXES + PARQUET_SUFFIXES)})")


@contextlib.contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """A decompressing binary reader for .gz / .zst / plain files."""
    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]  # typeshed: GzipFile is no IO[bytes] (BZ2File is)
    elif name.endswith(".zst"):
        with open(path, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with io.BufferedReader(reader) as fh:  # line iteration needs a buffered reader
                yield fh
    else:
        with open(path, "rb") as fh:
            yield fh


def iter_records(path: Path, batch_size: int = 256) -> Iterator[RawRecord]:
    """Stream the records of one JSONL or Parquet file; InputError if it is unreadable."""
    kind = file_kind(path)
    try:
        sha = file_digest(path)
        yield from records_of(str(path), sha, kind, lambda: open_binary(path), batch_size)
    except READ_ERRORS as exc:
        raise InputError(f"{path}: unreadable {kind} file ({type(exc).__name__}: {exc})") from exc


#: what a corrupt JSONL(.gz/.zst) or Parquet file raises while it is read
READ_ERRORS = (OSError, EOFError, zlib.error, zstandard.ZstdError, pa.ArrowException)


def records_of(name: str, sha: str, kind: str, open_stream: Callable[[], ContextManager[IO[bytes]]],
               batch_size: int, max_line_bytes: int = DEFAULT_LIMITS.markup_bytes,
               budget: Budget | None = None) -> Iterator[RawRecord]:
    """The records of one file of ``kind`` ("jsonl" | "parquet"), opened by ``open_stream``
    (a decompressing reader: local, or any fsspec filesystem)."""
    with open_stream() as fh:
        if kind == "jsonl":
            for line_no, line in enumerate(capped_lines(fh, max_line_bytes), start=1):
                if not line.complete:
                    yield RawRecord(name, sha, line_no, "line", None,
                                    line.head.decode("utf-8", "replace"), size=line.size)
                elif line.head.strip():
                    yield _parse_line(name, sha, line_no, line.head)
        else:
            yield from _parquet_records(name, sha, fh, batch_size, budget)


def _parse_line(file: str, sha: str, line_no: int, raw: bytes) -> RawRecord:
    def bad(error: str, text: str) -> RawRecord:
        return RawRecord(file, sha, line_no, "line", None, text, error)

    raw = raw.rstrip(b"\r\n")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return bad(f"invalid UTF-8: {exc}", raw.decode("utf-8", "replace"))
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        return bad(f"invalid JSON: {exc}", line)
    if not isinstance(value, dict):
        return bad(f"record is a JSON {type(value).__name__}, not an object", line)
    return RawRecord(file, sha, line_no, "line", value, line)


def _parquet_records(name: str, sha: str, fh: IO[bytes], batch_size: int,
                     budget: Budget | None) -> Iterator[RawRecord]:
    pf = pq.ParquetFile(fh)
    columns = [c for c in _FIELDS + ("id",) if c in pf.schema_arrow.names]
    if "text" not in columns:
        raise InputError(f"{name}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)})")
    row = 0
    for group in range(pf.num_row_groups):
        if budget is not None:  # before decoding it: a row group is decoded whole
            budget.charge(pf.metadata.row_group(group).total_byte_size)
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns, row_groups=[group]):
            for value in batch.to_pylist():
                yield RawRecord(name, sha, row, "row", value, "")
                row += 1


# ----------------------------------------------------------------------------- documents

def to_document(record: RawRecord, default_slice: str,
                max_chars: int = DEFAULT_LIMITS.max_chars) -> Document:
    """The document of one record; a bad record comes back quarantined with its error."""
    doc = Document(id=stable_id(default_slice, record.sha256, record.position), text=record.raw,
                   source=default_slice,
                   meta={"provenance": {"file": record.file, "sha256": record.sha256,
                                        record.unit: record.position}})
    if record.size is not None:
        return too_long(doc, record.raw.encode("utf-8"), record.size, max_chars)
    if record.error is not None or record.value is None:
        return quarantined(doc, f"{record.where}: {record.error}")
    try:
        text, meta, slice_name = _fields(record.value, default_slice)
    except ValueError as exc:
        # keep the record itself with the error (a Parquet row has no raw line)
        raw = record.raw or json.dumps(record.value, ensure_ascii=False, sort_keys=True, default=str)
        return quarantined(doc.with_text(raw), f"{record.where}: {exc}")
    source_id = record.value.get("id")
    if source_id is not None:
        meta = {**meta, "source_id": str(source_id)}
    return Document(id=stable_id(slice_name, record.sha256, record.position), text=text,
                    source=slice_name, meta={**meta, "provenance": doc.meta["provenance"]})


def _fields(value: dict[str, Any], default_slice: str) -> tuple[str, dict[str, Any], str]:
    """(text, meta, slice) of a record; ValueError names what is wrong."""
    text = value.get("text")
    if text is None:
        raise ValueError("missing 'text'")
    if not isinstance(text, str):
        raise ValueError(f"'text' is a {type(text).__name__}, not a string")
    meta = value.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"'meta' is a string but not JSON: {exc}") from exc
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise ValueError(f"'meta' is a {type(meta).__name__}, not an object")
    named = next((v for v in (value.get("red_pajama_subset"), value.get("source"), meta.get("source"))
                  if v not in (None, "")), None)
    return text, meta, default_slice if named is None else normalize_slice(named)


def normalize_slice(name: Any) -> str:
    """A slice name usable as a directory: lower case, RedPajama aliases mapped."""
    if not isinstance(name, str):
        raise ValueError(f"slice name {name!r} is not a string")
    slug = SLICE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if not _SLICE_NAME.match(slug):
        raise ValueError(f"invalid slice name {name!r} (use letters, digits, '_' or '-')")
    return slug
