"""WARC reading (warcio) and the common_crawl sample builder on a crafted crawl."""

import gzip
import io

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from redrobe.sources import sample
from redrobe.sources.base import HTTP_NOT_OK, KEPT, QUARANTINED, REMOVED, route
from redrobe.sources.warc import is_html, iter_html_responses

PARAGRAPHS = [
    "The harbour authority opened the new ferry terminal on Monday after three years of work, "
    "replacing a wooden pier that had served the island since the nineteenth century.",
    "Officials said the terminal can handle two vessels at once and will cut waiting times for "
    "commuters, who until now queued in the open during the winter storms.",
    "Local businesses welcomed the change, although some residents worried that larger ships "
    "would bring more traffic to the narrow streets of the old town near the water.",
]
ARTICLE_HTML = ("<!DOCTYPE html><html lang='en'><head><title>New ferry terminal opens</title>"
                "</head><body><nav><a href='/'>Home</a> | <a href='/news'>News</a></nav>"
                "<article><h1>New ferry terminal opens</h1>"
                + "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
                + "</article><footer>Copyright 2014 Harbour News</footer></body></html>").encode()
MOVED_HTML = b"<html><head><title>Found</title></head><body><p>The document has moved.</p></body></html>"


def crafted_warc() -> bytes:
    """A gzipped WARC: request, HTML 200, PNG 200, HTML 302 (as a crawler writes them)."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)

    def response(url: str, status: str, content_type: str, body: bytes) -> None:
        http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http,
            warc_headers_dict={"WARC-Date": "2014-01-26T20:06:24Z"}))

    request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "news.example")], is_http_request=True)
    writer.write_record(writer.create_warc_record("http://news.example/", "request",
                                                  payload=io.BytesIO(b""), http_headers=request))
    response("http://news.example/ferry", "200 OK", "text/html; charset=utf-8", ARTICLE_HTML)
    response("http://news.example/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    response("http://news.example/old", "302 Found", "text/html; charset=iso-8859-1", MOVED_HTML)
    return buf.getvalue()


def test_only_html_responses_are_yielded():
    responses = list(iter_html_responses(io.BytesIO(crafted_warc())))
    assert [r.url for r in responses] == ["http://news.example/ferry", "http://news.example/old"]
    assert [r.status for r in responses] == ["200", "302"]
    assert responses[0].body == ARTICLE_HTML and responses[0].date == "2014-01-26T20:06:24Z"
    assert 0 < responses[0].offset < responses[1].offset
    assert responses[0].record_id.startswith("<urn:uuid:")


def test_is_html():
    assert is_html("text/html; charset=UTF-8") and is_html("application/xhtml+xml")
    assert not is_html("application/x-javascript") and not is_html(None)


def test_common_crawl_builder_extracts_routes_and_quarantines(make_archive):
    pywb_meta = b"Metadata-Version: 2.4\nName: pywb\nLicense: GPL\n"
    archives = {
        "pywb": make_archive("pywb", "2.10.0", {"pywb-2.10.0.dist-info/METADATA": pywb_meta,
                                                sample.WARC_MEMBER: crafted_warc()}, kind="wheel"),
        "trafilatura": make_archive("trafilatura", "2.3.1", {
            "trafilatura-2.3.1/PKG-INFO": b"Metadata-Version: 2.4\nName: trafilatura\n"
                                          b"License-Expression: Apache-2.0\n",
            "trafilatura-2.3.1/tests/resources/page.html.gz": gzip.compress(ARTICLE_HTML),
            "trafilatura-2.3.1/tests/resources/broken.html.gz": b"not gzip at all",
            "trafilatura-2.3.1/tests/resources/nested/skip.html": ARTICLE_HTML,
        }),
    }
    docs = list(sample.common_crawl(archives))
    fates = [(route(d, 100_000)[0], d.meta["provenance"]["distribution"]) for d in docs]
    # WARC records and test pages are taken in turn
    assert fates == [(KEPT, "pywb==2.10.0"), (KEPT, "trafilatura==2.3.1"),
                     (REMOVED, "pywb==2.10.0"), (QUARANTINED, "trafilatura==2.3.1")]
    crawl, page, moved, broken = docs
    assert all(p in crawl.text for p in PARAGRAPHS)
    assert "Home | News" not in crawl.text and "Copyright" not in crawl.text
    assert crawl.meta["url"] == "http://news.example/ferry"
    assert crawl.meta["timestamp"] == "2014-01-26T20:06:24Z"
    assert crawl.meta["title"] == "New ferry terminal opens" and crawl.meta["license"] == "GPL"
    assert crawl.meta["provenance"]["member"] == sample.WARC_MEMBER
    assert crawl.meta["provenance"]["offset"] > 0
    assert moved.extra["reason"] == HTTP_NOT_OK and "document has moved" in moved.text
    assert broken.extra["error"].startswith("trafilatura-2.3.1/tests/resources/broken.html.gz: ")
    assert page.meta["license"] == "Apache-2.0" and all(p in page.text for p in PARAGRAPHS)
    assert page.meta["provenance"]["member"].endswith("resources/page.html.gz")
