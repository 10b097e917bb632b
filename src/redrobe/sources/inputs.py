"""Ingest files mode: every RedPajama slice's real formats, from local paths or fsspec URLs.

    specs = [InputSpec("data/in/*.warc.gz", "warc", "common_crawl"),
             InputSpec("memory://se/Posts.xml", "stackexchange", site="cs.stackexchange.com"),
             InputSpec("papers/*.tar.gz")]                       # format "auto": by file name
    reports, inputs = ingest_inputs(specs, dirs, default_slice="common_crawl",
                                    shard_docs=1000, batch_size=256, max_chars=2_000_000)

Formats (``FORMATS``) and the reader each uses; the slice is the spec's ``slice``,
else the format's RedPajama slice (``FORMAT_SLICES``), else ``default_slice``:

==============  ===========================  ======================================
format          input                        reader
==============  ===========================  ======================================
redpajama       .jsonl/.json(.gz/.zst),      ``redpajama`` (records name their own
                .parquet                     slice; the spec's slice is the default)
warc            .warc(.gz)                   ``warc.warc_documents`` (HTML responses)
wet             .wet(.gz), .warc.wet.gz      ``warc.wet_documents`` (text conversions)
mediawiki       .xml(.bz2/.gz/.zst)          ``mediawiki.dump_documents``
latex           .tex, a directory, .tar,     ``latex.paper_documents`` (one paper per
                .tar.gz/.tgz, arXiv's .gz    input)
stackexchange   Posts.xml(.bz2/.gz/.zst)     ``stackexchange.post_documents``
code            a directory (a source tree)  ``codetree.tree_documents``
gutenberg       .txt(.gz/.bz2)               ``gutenberg.book_document``
==============  ===========================  ======================================

``auto`` picks the format from the name (``detect_format``); a directory is a
``latex`` paper when it holds a top-level ``.tex`` file, else a ``code`` tree.

Nothing is lost and nothing crashes the stage: an input whose format cannot be told
from its name, or that cannot be read (bad gzip/bz2, malformed XML, unreadable tar,
a decode or lookup error, MemoryError, more decompressed bytes than
``ingest.max_input_bytes``...), becomes one quarantined record naming the file and
the error, written after the documents the reader had already produced from it; the
ledger counts it like any document, so in == out + removed + quarantined holds.
Every reader streams: a document holds at most ``Limits.doc_bytes`` (4 x
``ingest.max_doc_chars``) bytes, a longer one is removed as ``too_long`` with its
first characters and its size; a symbolic link is never followed. A path or glob that
matches nothing is an InputError (a configuration mistake).

One task per input (:func:`read_input_task`, on the executor given) reads it one
document at a time into one :class:`SliceSink` per slice, writing partial shards of at
most ``shard_docs`` documents to a scratch folder; :func:`plan_shards` lays them end to
end in input order and cuts them every ``shard_docs`` documents, one task per output
shard (:func:`write_shard_task`), so the output is what one sink per slice fed by
every input in turn writes, byte for byte, whatever the worker count. A task holds one
input's reader and writers (bounded by ``batch_size`` and the reader limits); the
driver holds per-shard records only.

Each input is read once: its sha256 (in every id and provenance) is taken from the
bytes its reader reads (``Source.hashed``), so its documents are spooled to local
disk (the system temp dir) until the input ends, then written with the digest. A
Parquet file or a directory is hashed by a read of its own (see ``fileio``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import pickle
import sqlite3
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, ContextManager, Iterator, Mapping, Sequence

import zstandard
from mwxml.errors import MalformedXML
from warcio.exceptions import ArchiveLoadFailed

from redrobe.accounting import Ledger
from redrobe.documents import Document, ShardWriter, read_documents, scratch_dir, shard_path
from redrobe.errors import InputError
from redrobe.parallel import Executor, LocalExecutor
from redrobe.progress import Progress, documents_seen, map_tracked
from redrobe.sources import codetree, gutenberg, latex, mediawiki, redpajama, stackexchange, warc
from redrobe.sources.base import PENDING_SHA256, Limits, Origin, quarantined, stable_id, with_digest
from redrobe.sources.fileio import Budget, Source, expand
from redrobe.sources.routing import LANGUAGE_COLUMNS, Router
from redrobe.sources.sink import OutputDirs, ShardRecord, SliceReport, SliceSink
from redrobe.storage import location, move_file, relative

FORMATS = ("redpajama", "warc", "wet", "mediawiki", "latex", "stackexchange", "code", "gutenberg")
AUTO = "auto"
#: the RedPajama slice each format feeds unless the input names another
FORMAT_SLICES = {"warc": "common_crawl", "wet": "common_crawl", "mediawiki": "wikipedia",
                 "latex": "arxiv", "stackexchange": "stackexchange", "code": "github",
                 "gutenberg": "books"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".xz")

#: what a corrupt, truncated or hostile input raises while a reader reads it (zlib.error
#: is wrapped by gzip as BadGzipFile, an OSError; a bad record never reaches here);
#: MemoryError and RecursionError too: one input must not stop the stage; mwxml checks a
#: dump's structure with assert (AssertionError on a wrong root element)
READ_ERRORS = (OSError, EOFError, ValueError, LookupError, tarfile.TarError, ET.ParseError,
               MalformedXML, ArchiveLoadFailed, zstandard.ZstdError, InputError, sqlite3.Error,
               MemoryError, RecursionError, AssertionError, *redpajama.READ_ERRORS)


@dataclass(frozen=True)
class InputSpec:
    """One entry of ``ingest.inputs``: a path/glob/URL, its format and slice."""

    path: str
    format: str = AUTO
    slice: str = ""       # "" -> the format's slice (FORMAT_SLICES), else default_slice
    site: str = ""        # stackexchange: the site's domain, for question URLs


def _strip_compression(name: str) -> str:
    lower = name.lower()
    for suffix in _COMPRESSED:
        if lower.endswith(suffix) and not lower.endswith((".tar.gz", ".warc.gz", ".wet.gz")):
            return lower[: -len(suffix)]
    return lower


def detect_format(source: Source) -> str | None:
    """The format a file name implies (None when it implies none)."""
    if source.is_dir:
        has_tex = any(c.basename.lower().endswith(".tex") for c in source.children())
        return "latex" if has_tex else "code"
    name = source.basename.lower()
    bare = _strip_compression(name)
    if name.endswith((".wet", ".wet.gz")):
        return "wet"
    if name.endswith((".warc", ".warc.gz")):
        return "warc"
    if name.endswith(redpajama.JSONL_SUFFIXES + redpajama.PARQUET_SUFFIXES):
        return "redpajama"
    if bare == "posts.xml" or bare.endswith("-posts.xml"):
        return "stackexchange"
    if bare.endswith(".xml"):
        return "mediawiki"
    if name.endswith((".tex", ".tar", ".tar.gz", ".tgz")):
        return "latex"
    if bare.endswith(".txt"):
        return "gutenberg"
    return None


def slice_for(spec: InputSpec, fmt: str | None, default_slice: str) -> str:
    return spec.slice or FORMAT_SLICES.get(fmt or "", "") or default_slice


def stackexchange_site(spec: InputSpec, source: Source) -> str | None:
    """The spec's site, else the dump's folder (``cs.stackexchange.com/Posts.xml``) or
    file name prefix (``stackoverflow.com-Posts.xml``) when it is a domain."""
    if spec.site:
        return spec.site
    prefix = source.basename.rsplit("-", 1)[0] if "-" in source.basename else ""
    parent = source.path.rstrip("/").rsplit("/", 2)[-2] if "/" in source.path else ""
    return next((c for c in (prefix, parent) if "." in c and not c.lower().endswith(".xml")), None)


# ----------------------------------------------------------------------------- reading

def _opened(open_stream: Callable[[], ContextManager[IO[bytes]]],
            read: Callable[[IO[bytes]], Iterator[Document]]) -> Iterator[Document]:
    """Open an input, read its documents, close it (also when the consumer stops early)."""
    with open_stream() as fh:
        yield from read(fh)


def source_documents(source: Source, fmt: str, slice_name: str, spec: InputSpec,
                     origin: Origin, batch_size: int, limits: Limits) -> Iterator[Document]:
    """The documents of one input in ``fmt`` (may raise one of READ_ERRORS); every
    decompressed byte is charged to the input's budget."""
    budget = Budget(source.name, limits.max_input_bytes)

    def metered() -> ContextManager[IO[bytes]]:
        return source.open(budget)

    if fmt == "redpajama":
        kind = redpajama.file_kind(Path(source.basename))
        # Parquet needs a seekable file; its row groups are charged to the budget instead
        opener = metered if kind == "jsonl" else source.open
        for record in redpajama.records_of(source.name, origin.sha256, kind, opener,
                                           batch_size, limits.markup_bytes, budget):
            yield redpajama.to_document(record, slice_name, limits.max_chars)
    elif fmt in ("warc", "wet"):
        # decompressed here, not by warcio: warcio ends quietly at a truncated gzip member
        reader = warc.warc_documents if fmt == "warc" else warc.wet_documents
        yield from _opened(metered, lambda fh: reader(fh, origin, slice_name, limits, budget))
    elif fmt == "mediawiki":
        yield from _opened(metered,
                           lambda fh: mediawiki.dump_documents(fh, origin, slice_name, limits))
    elif fmt == "stackexchange":
        site = stackexchange_site(spec, source)
        yield from _opened(metered, lambda fh: stackexchange.post_documents(
            fh, origin, slice_name, site=site, limits=limits))
    elif fmt == "latex":
        yield from latex.paper_documents(source, origin, slice_name, limits, budget)
    elif fmt == "code":
        if not source.is_dir:
            raise InputError(f"{source.name}: a code input must be a directory (a source tree)")
        yield from codetree.tree_documents(source, slice_name, limits, budget)
    elif fmt == "gutenberg":
        with metered() as fh:
            yield gutenberg.book_from_stream(fh, origin, slice_name, limits)
    else:
        raise InputError(f"{source.name}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def failure_document(origin: Origin, slice_name: str, produced: int, error: str) -> Document:
    """The quarantine record of an input that could not be (fully) read."""
    where = f" after {produced} record(s)" if produced else ""
    return quarantined(
        Document(id=stable_id(slice_name, origin.sha256, origin.file, "failure", produced),
                 text="", source=slice_name,
                 meta={"provenance": {"file": origin.file, "sha256": origin.sha256,
                                      "records_before": produced}}),
        f"{origin.file}: {error}{where}")


@dataclass(frozen=True)
class Reading:
    """One input being read: its origin, format (None: unknown), slice and documents."""

    origin: Origin
    format: str | None
    slice: str
    documents: Iterator[Document]


def read_input(source: Source, spec: InputSpec, default_slice: str, batch_size: int,
               limits: Limits) -> Reading:
    """Read one input, hashing it in the same pass; a failure ends its documents with a
    quarantine record. The documents wait in a spool on local disk until the digest their
    ids and provenance hold is known (the input has been read to its end)."""
    fmt = detect_format(source) if spec.format == AUTO else spec.format
    slice_name = slice_for(spec, fmt, default_slice)
    if fmt is None:
        return _unknown_format(source, slice_name)
    hashed = source.hashed()
    with _Spool() as spool:
        spool.write(_guarded(hashed, fmt, slice_name, spec, Origin(source.name, PENDING_SHA256),
                             batch_size, limits))
        try:
            digest = hashed.digest.hexdigest()
        except READ_ERRORS as exc:  # the store failed: what was read has no digest
            return _unreadable(source, fmt, slice_name, exc)
        return Reading(Origin(source.name, digest), fmt, slice_name, spool.replay(digest))


def _unknown_format(source: Source, slice_name: str) -> Reading:
    try:
        origin = Origin(source.name, source.sha256())
    except READ_ERRORS as exc:
        return _unreadable(source, None, slice_name, exc)
    failed = failure_document(origin, slice_name, 0, "unknown format: the file name implies "
                              f"none of {', '.join(FORMATS)}; name it in ingest.inputs[].format")
    return Reading(origin, None, slice_name, iter([failed]))


def _unreadable(source: Source, fmt: str | None, slice_name: str, exc: BaseException) -> Reading:
    origin = Origin(source.name, "")
    failed = failure_document(origin, slice_name, 0, f"unreadable ({type(exc).__name__}: {exc})")
    return Reading(origin, fmt, slice_name, iter([failed]))


class _Spool:
    """Documents on local disk, one in memory at a time, until their input's digest is
    known; :meth:`replay` gives them back with it (and closes the spool when done)."""

    def __init__(self) -> None:
        # closed by __exit__, or by replay when that hands the documents on
        self.file = tempfile.TemporaryFile()  # noqa: SIM115
        self.count = 0
        self.replaying = False

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.replaying:
            self.file.close()

    def write(self, documents: Iterator[Document]) -> None:
        for doc in documents:
            pickle.dump(doc, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += 1

    def replay(self, sha256: str) -> Iterator[Document]:
        self.replaying = True
        return self._replay(sha256)

    def _replay(self, sha256: str) -> Iterator[Document]:
        with self.file:
            self.file.seek(0)
            for _ in range(self.count):  # written by this process just now, hence unpickled
                yield with_digest(pickle.load(self.file), sha256)


def _guarded(source: Source, fmt: str, slice_name: str, spec: InputSpec, origin: Origin,
             batch_size: int, limits: Limits) -> Iterator[Document]:
    produced = 0
    try:
        for doc in source_documents(source, fmt, slice_name, spec, origin, batch_size, limits):
            produced += 1
            yield doc
    except READ_ERRORS as exc:
        yield failure_document(origin, slice_name, produced,
                               f"unreadable {fmt} input ({type(exc).__name__}: {exc})")


# ----------------------------------------------------------------------------- ingest

TREES = ("raw", "removed", "quarantine")
#: the extra column each tree's shards carry (as :class:`SliceSink` writes them)
TREE_COLUMNS = {"raw": (), "removed": ("reason",), "quarantine": ("error",)}
#: ... and those a language partition's shards add
ROUTED_COLUMNS = {"raw": LANGUAGE_COLUMNS, "removed": LANGUAGE_COLUMNS, "quarantine": ()}


@dataclass(frozen=True)
class InputTask:
    """Read one input into partial shards under ``work`` (one task per input file)."""

    input: str                 # the source's name, as in provenance and errors
    source: Source
    spec: InputSpec
    work: str                  # <work>/<tree>/<slice>/part-NNNNN.parquet
    default_slice: str
    shard_docs: int
    batch_size: int
    max_chars: int
    max_input_bytes: int
    routers: tuple[tuple[str, Router], ...] = ()   # routed slices (ingest.languages)


@dataclass(frozen=True)
class InputResult:
    """What one input produced: its digest and one report per slice it fed (its partial
    shards, at most ``shard_docs`` documents each, paths relative to ``work/<tree>``)."""

    input: str
    sha256: str
    work: str
    reports: tuple[SliceReport, ...]


def read_input_task(task: InputTask) -> InputResult:
    """The task body: read, hash and route one input, as the one-process loop did."""
    limits = Limits(task.max_chars, task.max_input_bytes)
    reading = read_input(task.source, task.spec, task.default_slice, task.batch_size, limits)
    dirs = OutputDirs(*(location(task.work) / tree for tree in TREES))
    sinks: dict[str, SliceSink] = {}
    routers = dict(task.routers)

    def sink_for(slice_name: str) -> SliceSink:
        if slice_name not in sinks:
            sinks[slice_name] = SliceSink(dirs, slice_name, task.shard_docs, task.batch_size,
                                          task.max_chars, routers.get(slice_name))
        return sinks[slice_name]

    digest = reading.origin.sha256
    if reading.format != "redpajama":  # its slice shows even when the input held nothing
        sink_for(reading.slice).input_digests[task.input] = digest
    for doc in reading.documents:
        sink = sink_for(doc.source)
        sink.input_digests[task.input] = digest
        sink.add(doc, task.input)
    return InputResult(task.input, digest, task.work,
                       tuple(report for name in sorted(sinks) for report in sinks[name].close()))


@dataclass(frozen=True)
class Span:
    """Rows ``start:stop`` of a partial shard of ``rows`` documents read from ``input``."""

    path: str
    start: int
    stop: int
    rows: int
    input: str


@dataclass(frozen=True)
class ShardTask:
    """Write one output shard from consecutive spans of partial shards."""

    path: str
    spans: tuple[Span, ...]
    batch_size: int
    extra_columns: tuple[str, ...]


def write_shard_task(task: ShardTask) -> int:
    """The task body: the shard's documents, rewritten in order; a span that is a whole
    partial shard is moved (written by the same writer from the same documents: the same
    bytes). Returns the documents written."""
    spans = task.spans
    if len(spans) == 1 and spans[0].start == 0 and spans[0].stop == spans[0].rows:
        if location(spans[0].path).exists() or not location(task.path).exists():  # a rerun: moved
            move_file(spans[0].path, task.path)
        return spans[0].rows
    writer = ShardWriter(task.path, task.batch_size, task.extra_columns)
    for span in spans:
        with contextlib.closing(read_documents(span.path, task.batch_size)) as docs:
            writer.write_all(itertools.islice(docs, span.start, span.stop))
    writer.close()
    return writer.count


def plan_shards(results: Sequence[InputResult], dirs: OutputDirs, shard_docs: int,
                batch_size: int) -> tuple[list[SliceReport], list[ShardTask]]:
    """The per-partition reports and the shard tasks that lay the inputs' partial shards
    end to end, in input order, cut every ``shard_docs`` documents: the shards one sink fed
    by every input in turn writes (``part-00000`` empty when a tree got nothing, except in
    a language partition)."""
    slices = sorted({r.slice for result in results for r in result.reports})
    reports, tasks = [], []
    for name in slices:
        parts = [(result, r) for result in results for r in result.reports if r.slice == name]
        routed = any(r.routed for _, r in parts)
        trees = {}
        for tree in TREES:
            spans = [Span(str(location(result.work) / tree / shard.path), 0, shard.docs, shard.docs,
                          result.input)
                     for result, r in parts for shard in getattr(r, tree) if shard.docs]
            columns = TREE_COLUMNS[tree] + (ROUTED_COLUMNS[tree] if routed else ())
            shard_tasks = _cut(spans, location(getattr(dirs, tree)), name, shard_docs, batch_size,
                               columns, placeholder=not routed)
            trees[tree] = [_record(t, location(getattr(dirs, tree))) for t in shard_tasks]
            tasks += shard_tasks
        ledger = Ledger()
        digests: dict[str, str] = {}
        for _, r in parts:
            ledger.merge(r.ledger)
            digests.update(r.input_digests)
        reports.append(SliceReport(name, ledger, trees["raw"], trees["removed"],
                                   trees["quarantine"], sum(r.kept_bytes for _, r in parts),
                                   digests, sum(r.control_chars for _, r in parts), routed))
    return reports, tasks


def _cut(spans: Sequence[Span], root: Path, slice_name: str, shard_docs: int, batch_size: int,
         columns: tuple[str, ...], placeholder: bool = True) -> list[ShardTask]:
    """Group ``spans`` into shards of ``shard_docs`` documents (the last one may be short;
    one empty shard when there are none, unless not ``placeholder``), splitting a span
    across a shard boundary."""
    if not spans and not placeholder:
        return []
    shards: list[list[Span]] = [[]]
    room = shard_docs
    for span in spans:
        start = span.start
        while start < span.stop:
            if room == 0:
                shards.append([])
                room = shard_docs
            stop = min(span.stop, start + room)
            shards[-1].append(dataclasses.replace(span, start=start, stop=stop))
            room -= stop - start
            start = stop
    return [ShardTask(str(shard_path(root, slice_name, k)), tuple(group), batch_size, columns)
            for k, group in enumerate(shards)]


def _record(task: ShardTask, root: Path) -> ShardRecord:
    return ShardRecord(relative(task.path, root).as_posix(),
                       sum(s.stop - s.start for s in task.spans),
                       tuple(sorted({s.input for s in task.spans})))


def ingest_inputs(specs: Sequence[InputSpec], dirs: OutputDirs, default_slice: str,
                  shard_docs: int, batch_size: int, max_chars: int, max_input_bytes: int,
                  executor: Executor | None = None, progress: Progress | None = None,
                  routers: Mapping[str, Router] | None = None,
                  ) -> tuple[list[SliceReport], dict[str, str]]:
    """Stream every input into per-slice shards: (one report per slice, input -> sha256).

    One task per input (:func:`read_input_task`) on ``executor`` (default: this process)
    writes partial shards to a scratch directory beside ``dirs.raw``; then one task per
    output shard (:func:`write_shard_task`) lays them end to end in input order. The
    shards, reports and digests are those of reading the inputs one after another.
    ``routers``: the slices routed by language (one report per partition)."""
    executor = executor or LocalExecutor(1)
    sources = [(spec, source) for spec in specs for source in expand(spec.path)]  # fail early
    unique: dict[str, tuple[InputSpec, Source]] = {}
    for spec, source in sources:
        unique.setdefault(source.name, (spec, source))  # the same input named twice is read once
    with scratch_dir(dirs.raw) as work:
        tasks = [InputTask(name, source, spec, str(work / f"{i:06d}"), default_slice,
                           shard_docs, batch_size, max_chars, max_input_bytes,
                           tuple(sorted((routers or {}).items())))
                 for i, (name, (spec, source)) in enumerate(unique.items())]
        if progress is None:
            results = executor.map(read_input_task, tasks)
        else:
            results = map_tracked(executor, read_input_task, tasks, progress,
                                  items=lambda r: sum(documents_seen(s.ledger) for s in r.reports))
        reports, shard_tasks = plan_shards(results, dirs, shard_docs, batch_size)
        executor.map(write_shard_task, shard_tasks)
    return reports, {r.input: r.sha256 for r in results}
