"""HTML responses from a WARC file (warcio), as Common Crawl ships them.

    with open("crawl.warc.gz", "rb") as fh:
        for response in iter_html_responses(fh):
            response.offset, response.url, response.date, response.body

Only ``response`` records whose HTTP ``Content-Type`` is HTML are documents;
requests, metadata, revisits and responses of other types (scripts, images...) are
not text documents and are skipped. ``offset`` is the record's byte offset in the
(compressed) file, the offset a CDX index uses. A record whose payload cannot be
decoded comes back with ``error`` set and no body, so the caller can quarantine it
instead of stopping the crawl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Iterator

from warcio.archiveiterator import ArchiveIterator

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
    return bool(content_type) and content_type.split(";")[0].strip().lower() in _HTML_TYPES


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
