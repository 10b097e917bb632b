"""WARC and WET files (warcio), as Common Crawl ships them.

    with open("crawl.warc.gz", "rb") as fh:
        for response in iter_html_responses(fh):
            response.offset, response.url, response.date, response.body
    with open("crawl.warc.wet.gz", "rb") as fh:
        for record in iter_wet_records(fh):          # Common Crawl's extracted text
            record.offset, record.url, record.date, record.text
    warc_documents(fh, Origin(name, sha256), "common_crawl")   # -> Documents
    wet_documents(fh, Origin(name, sha256), "common_crawl")

WARC:
Only ``response`` records whose HTTP ``Content-Type`` is HTML are documents;
requests, metadata, revisits and responses of other types (scripts, images...) are
not text documents and are skipped. ``offset`` is the record's byte offset in the
(compressed) file, the offset a CDX index uses. A record whose payload cannot be
decoded comes back with ``error`` set and no body, so the caller can quarantine it
instead of stopping the crawl. A document's meta has the URL (WARC-Target-URI),
``timestamp`` (WARC-Date), the record id, HTTP status and content type, and the
title trafilatura finds; a non-2xx response is removed (``http_not_ok``).

Framing (files mode, :func:`frames`): every record is checked against its declared
``Content-Length`` and the record after it before warcio parses it. A record whose
block contains the start of another record header (``\r\n\r\nWARC/1.x\r\n``: its
Content-Length runs past the next record), whose block ends early (truncated), whose
header is broken or longer than 64 KiB, or that is not followed by a blank line and
the next header, is quarantined with the offset and the reason; reading goes on at
the next record header, so the records after a damaged one are still read. (A
record whose payload really is a WARC file, such as an archived ``.warc``, looks
the same and is quarantined too.) A block holds at most ``Limits.doc_bytes``; a
longer record is counted, not held, and removed as ``too_long`` with its first
bytes (meta ``size_bytes``: the block's length). The record id is also kept as
``source_id``.

WET: the ``conversion`` records (``Content-Type: text/plain``) hold the text Common
Crawl extracted from each HTML response; ``warcinfo`` and other records are not
documents. The text is taken as is (UTF-8, as Common Crawl writes it); meta has
the URL, ``timestamp`` (WARC-Date), the record id, the id of the response it was
converted from (WARC-Refers-To) and the languages Common Crawl identified
(WARC-Identified-Content-Language), where present.
"""

from __future__ import annotations

import functools
import gzip
import io
import re
from dataclasses import dataclass, replace
from typing import IO, Any, Callable, Iterator

from warcio.archiveiterator import ArchiveIterator

from redrobe.documents import Document
from redrobe.sources.base import (
    DEFAULT_LIMITS,
    HTTP_NOT_OK,
    Limits,
    Origin,
    quarantined,
    removed,
    too_long,
)
from redrobe.sources.fileio import Budget, Pushback, metered
from redrobe.sources.webpage import extract_page

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\r?\n")
#: a record header that starts inside another record's block
_NEXT_HEADER = re.compile(rb"\r\n\r\nWARC/1\.[01]\r\n")
_NEXT_HEADER_BYTES = len(b"\r\n\r\nWARC/1.0\r\n")
_CONTENT_LENGTH = re.compile(rb"^(content-length:[ \t]*)(\d+)", re.IGNORECASE | re.MULTILINE)
_MAX_HEADER = 1 << 16     # bytes of WARC header fields one record may have
_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class WarcResponse:
    offset: int
    url: str | None
    date: str | None          # WARC-Date (ISO 8601)
    record_id: str | None     # WARC-Record-ID
    content_type: str
    status: str | None        # HTTP status code
    body: bytes | None
    error: str | None = None
    complete: bool = True     # False: the body was cut at ``max_bytes``


def is_html(content_type: str | None) -> bool:
    """True for HTML media types, whatever the parameters (charset...)."""
    return bool(content_type and content_type.split(";")[0].strip().lower() in _HTML_TYPES)


def _payload(record: object, max_bytes: int | None) -> tuple[bytes, bool]:
    """A record's decoded payload, at most ``max_bytes`` of it (content decoding such as
    gzip can multiply a block); and whether it is whole."""
    stream = record.content_stream()  # type: ignore[attr-defined]
    if max_bytes is None:
        return stream.read(), True
    data = stream.read(max_bytes + 1)
    return data[:max_bytes], len(data) <= max_bytes


def iter_html_responses(fileobj: IO[bytes],
                        max_bytes: int | None = None) -> Iterator[WarcResponse]:
    """The HTML ``response`` records of a WARC stream, in file order (bodies cut at
    ``max_bytes``)."""
    records = ArchiveIterator(fileobj)
    for record in records:
        if record.rec_type != "response" or record.http_headers is None:
            continue
        content_type = record.http_headers.get_header("Content-Type") or ""
        if not is_html(content_type):
            continue
        headers = record.rec_headers
        body, error, complete = None, None, True
        try:
            body, complete = _payload(record, max_bytes)
        except Exception as exc:  # warcio raises assorted errors on broken payloads
            error = f"{type(exc).__name__}: {exc}"
        yield WarcResponse(
            offset=records.get_record_offset(), url=headers.get_header("WARC-Target-URI"),
            date=headers.get_header("WARC-Date"), record_id=headers.get_header("WARC-Record-ID"),
            content_type=content_type, status=record.http_headers.get_statuscode(),
            body=body, error=error, complete=complete)


@dataclass(frozen=True)
class WetRecord:
    offset: int
    url: str | None
    date: str | None          # WARC-Date (ISO 8601)
    record_id: str | None
    refers_to: str | None     # WARC-Refers-To: the response the text was extracted from
    languages: str | None     # WARC-Identified-Content-Language (e.g. "eng,fra")
    text: str | None
    error: str | None = None
    complete: bool = True     # False: the text was cut at ``max_bytes`` (then decoded leniently)


def iter_wet_records(fileobj: IO[bytes], max_bytes: int | None = None) -> Iterator[WetRecord]:
    """The text/plain ``conversion`` records of a WET stream, in file order (texts cut at
    ``max_bytes``)."""
    records = ArchiveIterator(fileobj)
    for record in records:
        headers = record.rec_headers
        content_type = headers.get_header("Content-Type") or ""
        if record.rec_type != "conversion" or not content_type.startswith("text/plain"):
            continue
        text, error, complete = None, None, True
        try:
            data, complete = _payload(record, max_bytes)
            text = data.decode("utf-8") if complete else data.decode("utf-8", "replace")
        except Exception as exc:  # truncated payloads, invalid UTF-8...
            error = f"{type(exc).__name__}: {exc}"
        yield WetRecord(
            offset=records.get_record_offset(), url=headers.get_header("WARC-Target-URI"),
            date=headers.get_header("WARC-Date"), record_id=headers.get_header("WARC-Record-ID"),
            refers_to=headers.get_header("WARC-Refers-To"),
            languages=headers.get_header("WARC-Identified-Content-Language"),
            text=text, error=error, complete=complete)


# ----------------------------------------------------------------------------- documents

def response_meta(response: WarcResponse) -> dict[str, str | None]:
    """The meta fields of an HTML response (None where the record lacks them)."""
    return {"url": response.url, "timestamp": response.date,
            "warc_record_id": response.record_id, "http_status": response.status,
            "content_type": response.content_type}


def response_document(doc: Document, response: WarcResponse, where: str) -> Document:
    """Fill ``doc`` (id, meta set) from one response: main text, removed or quarantined."""
    if response.error is not None or response.body is None:
        return quarantined(doc, f"{where}: {response.error}")
    if not (response.status or "").startswith("2"):
        # Common Crawl's text extracts (WET) likewise carry only successful fetches
        return removed(doc.with_text(response.body.decode("utf-8", "replace")), HTTP_NOT_OK)
    try:
        page = extract_page(response.body, url=response.url)
    except Exception as exc:  # any extractor failure quarantines this record only
        return quarantined(doc.with_text(response.body.decode("utf-8", "replace")),
                           f"{where}: {type(exc).__name__}: {exc}")
    if page.title is None:
        return doc.with_text(page.text)
    return replace(doc, text=page.text, meta={**doc.meta, "title": page.title})


# ----------------------------------------------------------------------------- framing

@dataclass(frozen=True)
class Frame:
    """One record as the stream frames it: offset, header, the block's first bytes and
    declared length; or what is wrong with it (``error``)."""

    offset: int
    header: bytes = b""
    block: bytes = b""        # at most the per-document budget
    size: int = 0             # Content-Length
    error: str | None = None

    @property
    def complete(self) -> bool:
        return len(self.block) == self.size

    def record_bytes(self) -> bytes:
        """The record for warcio; a block cut at the budget declares the cut length."""
        header = self.header if self.complete else _CONTENT_LENGTH.sub(
            lambda m: m.group(1) + str(len(self.block)).encode(), self.header, count=1)
        return header + self.block + b"\r\n\r\n"


def frames(fileobj: IO[bytes], max_block: int, budget: Budget | None = None) -> Iterator[Frame]:
    """Every record of a WARC/WET stream, checked (module docstring); gzip members are
    decompressed (and charged to ``budget``) whatever the file's name."""
    stream = Pushback(fileobj)
    magic = stream.read_exactly(2)
    stream.unread(magic)
    if magic == _GZIP_MAGIC:
        stream = Pushback(metered(gzip.GzipFile(fileobj=stream), budget))  # type: ignore[arg-type]
    while True:
        offset, line = _first_line(stream)
        if not line:
            return
        if not _VERSION_LINE.fullmatch(line):
            skipped = len(line) + _skip_to_record(stream)
            yield Frame(offset, error=f"no WARC record header here ({skipped} bytes up to the "
                                      "next record header skipped)")
            continue
        yield _framed(stream, offset, line, max_block)


def _first_line(stream: Pushback) -> tuple[int, bytes]:
    """(offset, first non-blank line); blank lines separate records."""
    while True:
        offset = stream.position
        line = stream.readline(_MAX_HEADER)
        if line not in (b"\r\n", b"\n"):
            return offset, line


def _skip_to_record(stream: Pushback) -> int:
    """Read up to the next line that starts a record (left unread); the bytes skipped."""
    skipped, at_line_start = 0, True
    while line := stream.readline(_MAX_HEADER):
        if at_line_start and _VERSION_LINE.fullmatch(line):
            stream.unread(line)
            break
        skipped += len(line)
        at_line_start = line.endswith(b"\n")
    return skipped


def _framed(stream: Pushback, offset: int, version: bytes, max_block: int) -> Frame:
    header = _header(stream, version)
    if header is None:
        return Frame(offset, error=f"broken record header (unterminated or over {_MAX_HEADER} "
                                   "bytes)")
    length = _CONTENT_LENGTH.search(header)
    if length is None:
        return Frame(offset, header, error="the record header has no Content-Length")
    size = int(length.group(2))
    block, read, next_record = _block(stream, size, max_block)
    if next_record is not None:
        return Frame(offset, header, block, size,
                     f"Content-Length {size} runs past the next record header (at offset "
                     f"{next_record})")
    if read < size:
        return Frame(offset, header, block, size,
                     f"truncated: Content-Length {size}, but the input ends after {read} bytes")
    if not _at_record_boundary(stream):
        return Frame(offset, header, block, size,
                     f"Content-Length {size} does not end where the record ends (no blank "
                     "line and record header follow)")
    return Frame(offset, header, block, size)


def _header(stream: Pushback, version: bytes) -> bytes | None:
    """The header fields up to the blank line; None when broken or too long."""
    lines, size = [version], len(version)
    while size <= _MAX_HEADER:
        line = stream.readline(_MAX_HEADER)
        if not line.endswith(b"\n"):
            return None
        lines.append(line)
        size += len(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
    return None


def _block(stream: Pushback, size: int, keep: int) -> tuple[bytes, int, int | None]:
    """(first ``keep`` bytes, bytes read, offset of a record header found inside the
    block, left unread, or None); the rest of the block is only counted."""
    kept: list[bytes] = []
    held, read, tail = 0, 0, b""
    while read < size and (chunk := stream.read(min(_CHUNK, size - read))):
        window = tail + chunk
        found = _NEXT_HEADER.search(window)
        if found is not None:
            start = found.start() + 4  # the "WARC/" of the next record
            stream.unread(window[start:])
            read += len(chunk) - (len(window) - start)
            return b"".join(kept)[:max(read, 0)], read, stream.position
        if held < keep:
            kept.append(chunk[:keep - held])
            held += len(kept[-1])
        read += len(chunk)
        tail = window[-(_NEXT_HEADER_BYTES - 1):]
    return b"".join(kept), read, None


def _at_record_boundary(stream: Pushback) -> bool:
    """After a block: blank lines, then the end or a record header (left unread)."""
    _, line = _first_line(stream)
    stream.unread(line)
    return not line or _VERSION_LINE.fullmatch(line) is not None


def _damaged(origin: Origin, slice_name: str, frame: Frame) -> Document:
    """The quarantine record of a damaged record: its header and first bytes, as read."""
    record_id = _CONTENT_ID.search(frame.header)
    doc = origin.document(slice_name, (frame.header + frame.block).decode("utf-8", "replace"),
                          {"offset": frame.offset},
                          source_id=record_id.group(1).decode("utf-8", "replace")
                          if record_id else None)
    return quarantined(doc, f"{origin.file}@{frame.offset}: damaged record: {frame.error}")


_CONTENT_ID = re.compile(rb"^WARC-Record-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def _parsed(frame: Frame, origin: Origin, slice_name: str,
            parse: Callable[[IO[bytes]], Iterator[Any]]) -> Iterator[Any]:
    """What warcio makes of one framed record (nothing for records that are no
    documents); a record warcio cannot parse is quarantined."""
    try:
        yield from parse(io.BytesIO(frame.record_bytes()))
    except Exception as exc:  # warcio raises assorted errors on broken headers
        yield _damaged(origin, slice_name, replace(frame, error=f"{type(exc).__name__}: {exc}"))


def _documents(fileobj: IO[bytes], origin: Origin, slice_name: str, limits: Limits,
               budget: Budget | None, parse: Callable[[IO[bytes]], Iterator[Any]],
               document: Callable[[Frame, Any], Document]) -> Iterator[Document]:
    """``document(frame, parsed)`` for every record ``parse`` finds in the framed
    stream; damaged or unparsable records quarantined."""
    for frame in frames(fileobj, limits.doc_bytes, budget):
        if frame.error is not None:
            yield _damaged(origin, slice_name, frame)
            continue
        for parsed in _parsed(frame, origin, slice_name, parse):
            yield parsed if isinstance(parsed, Document) else document(frame, parsed)


def warc_documents(fileobj: IO[bytes], origin: Origin, slice_name: str,
                   limits: Limits = DEFAULT_LIMITS,
                   budget: Budget | None = None) -> Iterator[Document]:
    """One document per HTML response of a WARC stream (offsets into the decompressed
    stream), damaged records quarantined."""
    def document(frame: Frame, response: WarcResponse) -> Document:
        doc = origin.document(slice_name, "", {"offset": frame.offset},
                              source_id=response.record_id,
                              **response_meta(replace(response, offset=frame.offset)))
        if frame.complete and response.complete:
            return response_document(doc, response, f"{origin.file}@{frame.offset}")
        return too_long(doc, response.body or b"", frame.size, limits.max_chars)

    parse = functools.partial(iter_html_responses, max_bytes=limits.doc_bytes)
    yield from _documents(fileobj, origin, slice_name, limits, budget, parse, document)


def wet_documents(fileobj: IO[bytes], origin: Origin, slice_name: str,
                  limits: Limits = DEFAULT_LIMITS,
                  budget: Budget | None = None) -> Iterator[Document]:
    """One document per text conversion record of a WET stream (as above)."""
    def document(frame: Frame, record: WetRecord) -> Document:
        doc = origin.document(slice_name, record.text or "", {"offset": frame.offset},
                              url=record.url, timestamp=record.date,
                              warc_record_id=record.record_id, refers_to=record.refers_to,
                              languages=record.languages, source_id=record.record_id)
        if record.error is not None:
            return quarantined(doc, f"{origin.file}@{frame.offset}: {record.error}")
        if not (frame.complete and record.complete):
            return too_long(doc, (record.text or "").encode("utf-8"), frame.size,
                            limits.max_chars)
        return doc

    parse = functools.partial(iter_wet_records, max_bytes=limits.doc_bytes)
    yield from _documents(fileobj, origin, slice_name, limits, budget, parse, document)
