"""WET text records and WARC responses as documents (warcio-written files)."""

import io

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from redrobe.sources.base import HTTP_NOT_OK, Origin
from redrobe.sources.warc import iter_wet_records, warc_documents, wet_documents

ORIGIN = Origin("crawl/CC-MAIN-20230320-00000.warc.wet.gz", "ab" * 32)
PAGE_TEXT = ("Harbour ferry terminal opens\nThe harbour authority opened the new ferry terminal "
             "on Monday after three years of work.")


def wet_file() -> bytes:
    """A gzipped WET file as Common Crawl writes it: warcinfo, then text conversions."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    writer.write_record(writer.create_warcinfo_record(
        "CC-MAIN-20230320-00000.warc.wet.gz",
        {"Software-Info": "ia-web-commons", "Extracted-Date": "Mon, 20 Mar 2023"}))

    def conversion(url: str, text: bytes, lang: str | None) -> None:
        headers = {"WARC-Date": "2023-03-20T10:00:00Z", "Content-Type": "text/plain",
                   "WARC-Refers-To": "<urn:uuid:11111111-2222-3333-4444-555555555555>"}
        if lang:
            headers["WARC-Identified-Content-Language"] = lang
        writer.write_record(writer.create_warc_record(url, "conversion", payload=io.BytesIO(text),
                                                      warc_headers_dict=headers))

    conversion("https://news.example/ferry", PAGE_TEXT.encode(), "eng")
    conversion("https://news.example/broken", b"caf\xe9 au lait", None)  # not UTF-8
    conversion("https://news.example/empty", b"", "eng")
    return buf.getvalue()


def test_wet_records_are_the_text_conversions_in_order():
    records = list(iter_wet_records(io.BytesIO(wet_file())))
    assert [r.url for r in records] == ["https://news.example/ferry", "https://news.example/broken",
                                        "https://news.example/empty"]
    first = records[0]
    assert first.text == PAGE_TEXT and first.date == "2023-03-20T10:00:00Z"
    assert first.languages == "eng" and first.refers_to.startswith("<urn:uuid:1111")
    assert records[1].text is None and "UnicodeDecodeError" in records[1].error
    assert 0 < records[0].offset < records[1].offset < records[2].offset


def test_wet_documents_meta_ids_and_quarantine():
    data = wet_file()
    docs = list(wet_documents(io.BytesIO(data), ORIGIN, "common_crawl"))
    ferry, broken, empty = docs
    assert ferry.text == PAGE_TEXT and ferry.source == "common_crawl"
    assert ferry.meta["url"] == "https://news.example/ferry"
    assert ferry.meta["timestamp"] == "2023-03-20T10:00:00Z" and ferry.meta["languages"] == "eng"
    assert ferry.meta["provenance"] == {"file": ORIGIN.file, "sha256": ORIGIN.sha256,
                                        "offset": ferry.meta["provenance"]["offset"]}
    assert broken.extra["error"].startswith(f"{ORIGIN.file}@{broken.meta['provenance']['offset']}:")
    assert empty.text == "" and not empty.extra  # the sink removes it as empty_text
    again = list(wet_documents(io.BytesIO(data), ORIGIN, "common_crawl"))
    assert [d.id for d in again] == [d.id for d in docs] and len({d.id for d in docs}) == 3


def test_warc_documents_carry_url_and_warc_date():
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    body = ("<html><head><title>Ferry</title></head><body><article><p>"
            + PAGE_TEXT.replace("\n", "</p><p>") + " " + "Commuters welcomed it. " * 8
            + "</p></article></body></html>").encode()
    for url, status in (("https://news.example/ferry", "200 OK"),
                        ("https://news.example/old", "301 Moved Permanently")):
        http = StatusAndHeaders(status, [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http,
            warc_headers_dict={"WARC-Date": "2023-03-20T10:00:00Z"}))
    page, moved = warc_documents(io.BytesIO(buf.getvalue()), ORIGIN, "common_crawl")
    assert page.meta["url"] == "https://news.example/ferry"
    assert page.meta["timestamp"] == "2023-03-20T10:00:00Z" and page.meta["http_status"] == "200"
    assert "ferry terminal" in page.text and page.meta["title"] == "Ferry"
    assert moved.extra["reason"] == HTTP_NOT_OK and moved.meta["url"].endswith("/old")
