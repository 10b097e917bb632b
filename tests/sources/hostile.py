"""Builders of hostile and well-formed inputs for the reader tests (hostile, fuzz, archive).

Each builder returns the bytes of one small input as its real producer writes it
(warcio for WARC/WET, the dump layout for Posts.xml and MediaWiki, tar for arXiv),
so a test can damage it on purpose.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Literal

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from redrobe.accounting import Ledger
from redrobe.documents import Document, list_shards, read_documents
from redrobe.sources.inputs import InputSpec, ingest_inputs
from redrobe.sources.sink import OutputDirs

PAGE = ("<html><head><title>Tides</title></head><body><article><p>"
        + "The tide rose over the harbour wall and the boats lifted on their moorings. " * 6
        + "</p></article></body></html>")


def warc_file(n: int = 3, gzip: bool = False, padding: int = 0) -> bytes:
    """``n`` HTML responses with record ids ``<urn:uuid:...-00000000000i>``; the first
    page grows by ``padding`` words."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip)
    for i in range(n):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        page = PAGE.replace("Tides", f"Tides {i}").replace("</p>", " high" * padding * (i == 0)
                                                          + "</p>")
        writer.write_record(writer.create_warc_record(
            f"https://harbour.example/{i}", "response",
            payload=io.BytesIO(page.encode()), http_headers=http,
            warc_headers_dict={"WARC-Date": "2023-03-20T10:00:00Z",
                               "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"}))
    return buf.getvalue()


def wet_file(n: int = 3) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    for i in range(n):
        writer.write_record(writer.create_warc_record(
            f"https://harbour.example/{i}", "conversion",
            payload=io.BytesIO(f"Page {i}: the tide rose over the wall.".encode()),
            warc_headers_dict={"Content-Type": "text/plain",
                               "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"}))
    return buf.getvalue()


def posts_xml(*rows: str) -> bytes:
    body = "\n".join(f"  <row {row} />" for row in rows)
    return f'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n{body}\n</posts>\n'.encode()


POSTS = posts_xml(
    'Id="1" PostTypeId="1" Score="3" Title="Tides" Body="&lt;p&gt;Why do tides rise?&lt;/p&gt;"',
    'Id="2" PostTypeId="2" ParentId="1" Score="5" Body="&lt;p&gt;The moon.&lt;/p&gt;"',
    'Id="3" PostTypeId="1" Score="1" Title="Waves" Body="&lt;p&gt;What makes waves?&lt;/p&gt;"')


def mediawiki_xml(pages: int = 3) -> bytes:
    body = "".join(
        f"<page><title>Tide {i}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i + 10}</id>"
        f"<timestamp>2020-01-01T00:00:00Z</timestamp><text>The '''tide''' number {i} rises."
        "</text></revision></page>" for i in range(pages))
    return ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo>'
            "<dbname>enwiki</dbname><base>https://en.wikipedia.org/wiki/Main_Page</base>"
            f"</siteinfo>{body}</mediawiki>").encode()


def jsonl_file(n: int = 3) -> bytes:
    return "".join(json.dumps({"id": f"doc-{i}", "text": f"Record {i} about tides."}) + "\n"
                   for i in range(n)).encode()


BOOK = (b"Title: Tides\nAuthor: A. Sailor\n\n*** START OF THE PROJECT GUTENBERG EBOOK TIDES ***\n"
        b"The sea rose and fell.\n*** END OF THE PROJECT GUTENBERG EBOOK TIDES ***\n")

PAPER = {"main.tex": "\\documentclass{article}\\begin{document}\\section{Tides}\\input{body}"
                     "\\end{document}",
         "body.tex": "The tide rises twice a day."}


def tar_bytes(files: dict[str, str], mode: Literal["w", "w:gz"] = "w") -> bytes:
    """A tar archive of ``files`` (name -> text); ``mode`` "w:gz" for a .tar.gz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ingest_dir(inputs: list[InputSpec], out: Path, max_chars: int = 10_000,
               max_input_bytes: int = 1 << 30) -> tuple[Ledger, dict[str, list[Document]]]:
    """Run files-mode ingest; (checked ledger, documents of each tree: raw/removed/quarantine)."""
    dirs = OutputDirs(out / "raw", out / "removed", out / "quarantine")
    reports, _ = ingest_inputs(inputs, dirs, "common_crawl", shard_docs=100, batch_size=8,
                               max_chars=max_chars, max_input_bytes=max_input_bytes)
    ledger = Ledger()
    for report in reports:
        ledger.merge(report.ledger)
    ledger.check()
    trees = {name: [doc for path in list_shards(root) for doc in read_documents(path)]
             for name, root in (("raw", dirs.raw), ("removed", dirs.removed),
                                ("quarantine", dirs.quarantine))}
    return ledger, trees
