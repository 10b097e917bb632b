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

WET: the ``conversion`` records (``Content-Type: text/plain``) hold the text Common
Crawl extracted from each HTML response; ``warcinfo`` and other records are not
documents. The text is taken as is (UTF-8, as Common Crawl writes it); meta has
the URL, ``timestamp`` (WARC-Date), the record id, the id of the response it was
converted from (WARC-Refers-To) and the languages Common Crawl identified
(WARC-Identified-Content-Language), where present.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import IO, Iterator

from warcio.archiveiterator import ArchiveIterator

from redrobe.documents import Document
from redrobe.sources.base import HTTP_NOT_OK, Origin, quarantined, removed
from redrobe.sources.webpage import extract_page

_HTML_TYPES = ("text/html", "application/xhtml+xml")


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


def is_html(content_type: str | None) -> bool:
    """True for HTML media types, whatever the parameters (charset...)."""
    return bool(content_type and content_type.split(";")[0].strip().lower() in _HTML_TYPES)


def iter_html_responses(fileobj: IO[bytes]) -> Iterator[WarcResponse]:
    """The HTML ``response`` records of a WARC stream, in file order."""
    records = ArchiveIterator(fileobj)
    for record in records:
        if record.rec_type != "response" or record.http_headers is None:
            continue
        content_type = record.http_headers.get_header("Content-Type") or ""
        if not is_html(content_type):
            continue
        headers = record.rec_headers
        body, error = None, None
        try:
            body = record.content_stream().read()
        except Exception as exc:  # warcio raises assorted errors on broken payloads
            error = f"{type(exc).__name__}: {exc}"
        yield WarcResponse(
            offset=records.get_record_offset(), url=headers.get_header("WARC-Target-URI"),
            date=headers.get_header("WARC-Date"), record_id=headers.get_header("WARC-Record-ID"),
            content_type=content_type, status=record.http_headers.get_statuscode(),
            body=body, error=error)


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


def iter_wet_records(fileobj: IO[bytes]) -> Iterator[WetRecord]:
    """The text/plain ``conversion`` records of a WET stream, in file order."""
    records = ArchiveIterator(fileobj)
    for record in records:
        headers = record.rec_headers
        content_type = headers.get_header("Content-Type") or ""
        if record.rec_type != "conversion" or not content_type.startswith("text/plain"):
            continue
        text, error = None, None
        try:
            text = record.content_stream().read().decode("utf-8")
        except Exception as exc:  # truncated payloads, invalid UTF-8...
            error = f"{type(exc).__name__}: {exc}"
        yield WetRecord(
            offset=records.get_record_offset(), url=headers.get_header("WARC-Target-URI"),
            date=headers.get_header("WARC-Date"), record_id=headers.get_header("WARC-Record-ID"),
            refers_to=headers.get_header("WARC-Refers-To"),
            languages=headers.get_header("WARC-Identified-Content-Language"),
            text=text, error=error)


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


class _Watched(io.RawIOBase):
    """A reader that turns a truncation error into end-of-stream and remembers it: warcio
    takes an EOFError for the end of the file, which would drop the rest silently."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.failure: EOFError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        read = getattr(self.inner, "read1", self.inner.read)  # read1: what is there, no more
        try:
            data = read(len(buffer))
        except EOFError as exc:  # end the stream here; check() raises once warcio is done
            self.failure = exc
            return 0
        buffer[:len(data)] = data
        return len(data)

    def check(self) -> None:
        if self.failure is not None:
            raise EOFError(f"truncated stream: {self.failure}")


def warc_documents(fileobj: IO[bytes], origin: Origin, slice_name: str) -> Iterator[Document]:
    """One document per HTML response of a decompressed WARC stream (offsets into it);
    EOFError when the stream is truncated, after the records read before the cut."""
    watched = _Watched(fileobj)
    for response in iter_html_responses(io.BufferedReader(watched)):
        doc = origin.document(slice_name, "", {"offset": response.offset},
                              **response_meta(response))
        yield response_document(doc, response, f"{origin.file}@{response.offset}")
    watched.check()


def wet_documents(fileobj: IO[bytes], origin: Origin, slice_name: str) -> Iterator[Document]:
    """One document per text conversion record of a decompressed WET stream (as above)."""
    watched = _Watched(fileobj)
    for record in iter_wet_records(io.BufferedReader(watched)):
        doc = origin.document(slice_name, record.text or "", {"offset": record.offset},
                              url=record.url, timestamp=record.date,
                              warc_record_id=record.record_id, refers_to=record.refers_to,
                              languages=record.languages)
        if record.error is not None:
            yield quarantined(doc, f"{origin.file}@{record.offset}: {record.error}")
        else:
            yield doc
    watched.check()
