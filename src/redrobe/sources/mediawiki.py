"""MediaWiki XML dumps: pages with mwxml, wikitext to plain text with mwparserfromhell.

    site, pages = read_dump(open("enwiki-...-pages-articles.xml", "rb"))
    for page in pages:                      # WikiPage: latest revision of each page
        if not page.redirect and page.namespace == 0:
            text = wikitext_to_text(page.wikitext)
            url = page_url(site.base_url, page.title)
    docs = dump_documents(open("dump.xml.bz2" decompressed), Origin(name, sha256), "wikipedia")

``wikitext_to_text`` keeps the prose of an article: headings become plain lines,
links keep their visible text, bold/italic quotes go. It drops what is not prose
(the choices of the HF ``wikipedia`` builder that RedPajama-1T used, plus
templates): templates and parameters, ``<ref>`` and other non-prose tags
(tables, galleries, math, timelines...), file/image/media links, category and
interlanguage links, magic words such as ``__NOTOC__``, and the trailing
reference-style sections ("See also", "References", "External links", "Further
reading", ...) with their subsections.

``dump_documents`` makes one document per page: redirects are removed
(``wiki_redirect``), pages outside the article namespace too (``wiki_non_article``),
a page the wikitext parser fails on is quarantined. Meta: title, url, timestamp of
the latest revision, language (from the database name), page and revision ids (the
page id also as ``source_id``), and for Wikipedia the text license (CC BY-SA 3.0,
4.0 for revisions from 2023-06-29 on). A page whose XML passes
``Limits.markup_bytes`` stops the reading of the dump there (the parser holds a page
whole), with an error naming the page before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Iterator
from urllib.parse import quote

import mwparserfromhell
import mwxml
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from redrobe.documents import Document
from redrobe.sources.base import (
    DEFAULT_LIMITS,
    WIKI_NON_ARTICLE,
    WIKI_REDIRECT,
    Limits,
    Origin,
    quarantined,
    removed,
)
from redrobe.sources.fileio import RecordMeter

_URL_SAFE = ":/(),'!*@;$"  # characters Wikipedia leaves unescaped in article URLs


@dataclass(frozen=True)
class SiteInfo:
    dbname: str       # e.g. "enwiki"
    base_url: str     # e.g. "https://en.wikipedia.org/wiki/Main_Page"

    @property
    def language(self) -> str | None:
        """"enwiki" -> "en" (Wikipedia database names are <language>wiki)."""
        return self.dbname[:-4] if self.dbname.endswith("wiki") else None


@dataclass(frozen=True)
class WikiPage:
    """One page of the dump with its latest revision."""

    page_id: int
    title: str
    namespace: int
    redirect: str | None        # redirect target title, None for articles
    revision_id: int | None
    timestamp: str | None       # ISO 8601, UTC
    wikitext: str


def read_dump(fileobj: IO[bytes]) -> tuple[SiteInfo, Iterator[WikiPage]]:
    """Site info and a stream of pages (one page's revisions in memory at a time)."""
    dump = mwxml.Dump.from_file(fileobj)
    info = SiteInfo(dbname=str(dump.site_info.dbname or ""), base_url=str(dump.site_info.base or ""))
    return info, _pages(dump)


def _pages(dump: mwxml.Dump) -> Iterator[WikiPage]:
    for page in dump:
        latest = None
        for revision in page:  # dumps list revisions oldest first
            latest = revision
        yield WikiPage(
            page_id=int(page.id), title=str(page.title), namespace=int(page.namespace or 0),
            redirect=str(page.redirect) if page.redirect else None,
            revision_id=int(latest.id) if latest is not None else None,
            timestamp=str(latest.timestamp) if latest is not None and latest.timestamp else None,
            wikitext=(latest.text or "") if latest is not None else "",
        )


def page_url(base_url: str, title: str) -> str:
    """Article URL from the site's base (``https://en.wikipedia.org/wiki/Main_Page``)."""
    prefix = base_url.rsplit("/", 1)[0]
    return f"{prefix}/{quote(title.replace(' ', '_'), safe=_URL_SAFE)}"


#: Wikipedia moved its text license from CC BY-SA 3.0 to 4.0 on this day (Terms of Use 2023)
CC_BY_SA_4_SINCE = "2023-06-29"


def page_meta(site: SiteInfo, page: WikiPage) -> dict[str, object]:
    """The meta fields of one page (the caller adds license and provenance)."""
    return {"title": page.title, "url": page_url(site.base_url, page.title),
            "timestamp": page.timestamp, "language": site.language, "page_id": page.page_id,
            "revision_id": page.revision_id, "redirect": page.redirect}


def page_document(doc: Document, page: WikiPage, where: str) -> Document:
    """Fill ``doc`` (id, meta, wikitext set) from its page: article text, removed or quarantined."""
    if page.redirect:
        return removed(doc, WIKI_REDIRECT)
    if page.namespace != 0:
        return removed(doc, WIKI_NON_ARTICLE)
    try:
        return doc.with_text(wikitext_to_text(page.wikitext))
    except Exception as exc:  # any parser failure quarantines this page only
        return quarantined(doc, f"{where}: page {page.page_id}: {type(exc).__name__}: {exc}")


def wikipedia_license(site: SiteInfo, timestamp: str | None) -> str | None:
    """Wikipedia's text license for a revision; None for other wikis (not stated in dumps)."""
    if "wikipedia.org" not in site.base_url:
        return None
    return "CC-BY-SA-4.0" if (timestamp or "") >= CC_BY_SA_4_SINCE else "CC-BY-SA-3.0"


def dump_documents(fileobj: IO[bytes], origin: Origin, slice_name: str,
                   limits: Limits = DEFAULT_LIMITS) -> Iterator[Document]:
    """One document per page of a (decompressed) dump; position = the page's ordinal."""
    meter = RecordMeter(fileobj, limits.markup_bytes, "XML")
    site, pages = read_dump(meter)  # type: ignore[arg-type]  # a RawIOBase reads bytes
    for ordinal, page in enumerate(pages):
        meter.next_record(f"the page after page {page.page_id} ({page.title!r})")
        doc = origin.document(slice_name, page.wikitext, {"page": ordinal},
                              license=wikipedia_license(site, page.timestamp),
                              source_id=str(page.page_id), **page_meta(site, page))
        yield page_document(doc, page, origin.file)


# ----------------------------------------------------------------------------- wikitext

#: tags whose content is not running prose
_DROP_TAGS = frozenset({"ref", "references", "table", "gallery", "timeline", "imagemap", "math",
                        "chem", "ce", "score", "syntaxhighlight", "source", "templatedata",
                        "graph", "mapframe", "hiero"})
_MEDIA_OR_CATEGORY = re.compile(r"^\s*:?\s*(file|image|media|category)\s*:", re.IGNORECASE)
_INTERLANGUAGE = re.compile(r"^\s*[a-z]{2,3}(-[a-z]{2,8})?\s*:", re.IGNORECASE)
_TAIL_SECTIONS = frozenset({"see also", "references", "external links", "further reading",
                            "notes", "bibliography", "sources", "footnotes", "citations",
                            "notes and references", "references and notes", "works cited"})
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_STYLE_QUOTES = re.compile(r"'{2,}")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:])(?=\s|$)")  # left where a template was


def wikitext_to_text(wikitext: str) -> str:
    """Plain article text from wikitext (see the module docstring for what is dropped)."""
    out: list[str] = []
    skip_below: int | None = None  # inside a tail section of this heading level
    # style markup ('' and ''') is left as text: mwparserfromhell's style-tag parsing lets
    # one unbalanced '' swallow whole sections (headings included) into an italic tag
    for node in mwparserfromhell.parse(wikitext, skip_style_tags=True).nodes:
        if isinstance(node, Heading):
            title = _plain_text(node.title).strip()
            if skip_below is not None and node.level > skip_below:
                continue
            skip_below = node.level if title.lower() in _TAIL_SECTIONS else None
            if skip_below is None:
                out.append(f"\n\n{title}\n")
        elif skip_below is None:
            _render(node, out)
    return _tidy("".join(out))


def _plain_text(code: Wikicode) -> str:
    out: list[str] = []
    for node in code.nodes:
        _render(node, out)
    return "".join(out)


def _render(node: object, out: list[str]) -> None:
    """Append the visible prose of one node."""
    if isinstance(node, Text):
        out.append(node.value)
    elif isinstance(node, HTMLEntity):
        out.append(node.normalize())
    elif isinstance(node, (Template, Argument, Comment)):
        return
    elif isinstance(node, Tag):
        _render_tag(node, out)
    elif isinstance(node, Wikilink):
        _render_link(node, out)
    elif isinstance(node, ExternalLink):
        if node.title is not None:
            out.append(_plain_text(node.title))
        elif not node.brackets:
            out.append(str(node.url))
    elif isinstance(node, Heading):
        out.append(f"\n{_plain_text(node.title).strip()}\n")


def _render_tag(node: Tag, out: list[str]) -> None:
    name = str(node.tag).strip().lower()
    if name in _DROP_TAGS:
        return
    if name == "br":
        out.append("\n")
    elif node.contents is not None and not node.self_closing:
        out.append(_plain_text(node.contents))


def _render_link(node: Wikilink, out: list[str]) -> None:
    title = str(node.title)
    if _MEDIA_OR_CATEGORY.match(title):
        return
    if node.text is not None:
        out.append(_plain_text(node.text))
    elif not _INTERLANGUAGE.match(title):
        out.append(title.strip().lstrip(":"))


def _tidy(text: str) -> str:
    """Drop style quotes, magic words, empty brackets; one blank line between paragraphs."""
    text = _EMPTY_BRACKETS.sub("", _MAGIC_WORD.sub("", _STYLE_QUOTES.sub("", text)))
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
