"""StackExchange dumps (``Posts.xml``) -> one document per question with its answers.

    docs = post_documents(fileobj, Origin(name, sha256), "stackexchange",
                          site="cs.stackexchange.com")

RedPajama-1T's stackexchange slice (docs/references.md, "RedPajama-1T slices"): HTML stripped, the question
then its answers sorted by score. A document's text is::

    Q:

    <title>

    <question body>

    A:

    <highest-scored answer>          (score descending, ties by post id ascending)

    A:

    <next answer> ...

Meta: ``url`` (``https://<site>/questions/<id>`` when the site is known), ``title``,
``score`` (the question's), ``tags`` (list; both the ``<a><b>`` and ``|a|b|`` dump
forms), ``timestamp`` (CreationDate), ``answer_count`` (answers included),
``accepted_answer_id``, ``license`` (ContentLicense, newer dumps).

``source_id`` is the post's Id (a string).

Hostile rows: a row whose Id repeats an earlier post's is quarantined (the first is
kept), and so is a row with a missing or non-numeric Id/Score/ParentId, naming the
file and the row's ordinal. A row whose XML passes ``Limits.markup_bytes`` stops
the reading of the file there (the parser holds a row whole), with an error naming
the row before it.

Memory: Posts.xml lists each answer after its question but anywhere later in the
file (an answer written years after the question sits near the end), so grouping
answers in memory would hold most of the site. Instead one ``iterparse`` pass
(clearing every element) spills the rows to a temporary SQLite file, questions and
answers indexed by (parent, score, id); documents are then read back one question
at a time in id order. Memory holds one row while parsing and one question with
its answers while writing; the disk holds one copy of the posts' text. Answers
whose question is not in the file are quarantined; other post types (tag wikis,
moderator nominations...) are not documents. Malformed XML raises
``xml.etree.ElementTree.ParseError`` before any document is made.
"""

from __future__ import annotations

import contextlib
import html
import re
import sqlite3
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, Iterator

from redrobe.documents import Document
from redrobe.sources.base import DEFAULT_LIMITS, Limits, Origin, quarantined
from redrobe.sources.fileio import RecordMeter

QUESTION, ANSWER = "1", "2"   # PostTypeId values of the dump schema
_TAG_FORMS = re.compile(r"<([^<>]+)>|\|([^|]+)")
_BLOCK_TAGS = frozenset({"p", "div", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3",
                         "h4", "h5", "h6", "table", "tr", "hr"})

_SCHEMA = """
CREATE TABLE questions (id INTEGER PRIMARY KEY, title TEXT, body TEXT, tags TEXT, score INTEGER,
                        created TEXT, accepted INTEGER, license TEXT);
CREATE TABLE answers (id INTEGER PRIMARY KEY, parent INTEGER, score INTEGER, body TEXT);
CREATE TABLE rejected (row INTEGER PRIMARY KEY, post TEXT, error TEXT, body TEXT);
"""


# ----------------------------------------------------------------------------- HTML

class _TextExtractor(HTMLParser):
    """Visible text of a post body: block elements become line breaks, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS or tag == "br":
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of a post's HTML body, paragraphs separated by one blank line."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_tags(tags: str | None) -> list[str]:
    """``<python><list>`` or ``|python|list|`` -> ["python", "list"]."""
    return [a or b for a, b in _TAG_FORMS.findall(tags or "") if (a or b)]


# ----------------------------------------------------------------------------- spill

def _rows(fileobj: IO[bytes], max_row_bytes: int) -> Iterator[dict[str, str]]:
    """The attributes of every ``<row>``, element memory released as it goes; a row
    longer than ``max_row_bytes`` raises RecordTooLarge (the parser holds a row whole)."""
    meter = RecordMeter(fileobj, max_row_bytes, "XML")
    root = None
    for event, elem in ET.iterparse(meter, events=("start", "end")):
        if root is None:
            root = elem
        if event == "end" and elem.tag == "row":
            meter.next_record(f"the row after the one with Id {elem.get('Id')!r}")
            yield dict(elem.attrib)
            elem.clear()
            root.clear()  # drop the cleared rows the root still references


def _spill(fileobj: IO[bytes], db: sqlite3.Connection, max_row_bytes: int) -> None:
    db.executescript(_SCHEMA)
    for ordinal, row in enumerate(_rows(fileobj, max_row_bytes), start=1):
        try:
            _insert(db, row)
        except (sqlite3.IntegrityError, ValueError, KeyError) as exc:
            db.execute("INSERT INTO rejected VALUES (?, ?, ?, ?)",
                       (ordinal, row.get("Id"), _rejection(row, exc), row.get("Body", "")))
    db.execute("CREATE INDEX by_parent ON answers (parent, score DESC, id)")


def _insert(db: sqlite3.Connection, row: dict[str, str]) -> None:
    kind = row.get("PostTypeId")
    if kind == QUESTION:
        db.execute("INSERT INTO questions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (int(row["Id"]), row.get("Title", ""), row.get("Body", ""),
                    row.get("Tags", ""), int(row.get("Score", 0)), row.get("CreationDate"),
                    _int(row.get("AcceptedAnswerId")), row.get("ContentLicense")))
    elif kind == ANSWER:
        db.execute("INSERT INTO answers VALUES (?, ?, ?, ?)",
                   (int(row["Id"]), _int(row.get("ParentId")), int(row.get("Score", 0)),
                    row.get("Body", "")))


def _rejection(row: dict[str, str], exc: Exception) -> str:
    if isinstance(exc, sqlite3.IntegrityError):
        return f"post Id {row.get('Id')} repeats an earlier post's (the first one is kept)"
    if isinstance(exc, KeyError):
        return f"no {exc} attribute"
    return f"{type(exc).__name__}: {exc}"


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


@contextlib.contextmanager
def _spilled(fileobj: IO[bytes], workdir: str | None,
             max_row_bytes: int) -> Iterator[sqlite3.Connection]:
    with tempfile.TemporaryDirectory(prefix="redrobe-se-", dir=workdir) as tmp:
        db = sqlite3.connect(Path(tmp) / "posts.sqlite")
        try:
            _spill(fileobj, db, max_row_bytes)
            yield db
        finally:
            db.close()


# ----------------------------------------------------------------------------- documents

def question_text(title: str, body: str, answers: list[str]) -> str:
    """The Q:/A: layout of the module docstring (HTML already stripped)."""
    parts = [f"Q:\n\n{title}\n\n{body}".rstrip()]
    parts += [f"A:\n\n{answer}" for answer in answers]
    return "\n\n".join(parts)


def post_documents(fileobj: IO[bytes], origin: Origin, slice_name: str, site: str | None = None,
                   workdir: str | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> Iterator[Document]:
    """One document per question (answers by score), then orphan answers and rejected
    rows quarantined."""
    with _spilled(fileobj, workdir, limits.markup_bytes) as db:
        questions = db.execute("SELECT id, title, body, tags, score, created, accepted, license "
                               "FROM questions ORDER BY id")
        for row in questions:
            answers = db.execute("SELECT body FROM answers WHERE parent = ? "
                                 "ORDER BY score DESC, id", (row[0],)).fetchall()
            yield _question_document(origin, slice_name, site, row, [a[0] for a in answers])
        orphans = db.execute("SELECT id, parent, body FROM answers WHERE parent IS NULL OR "
                             "parent NOT IN (SELECT id FROM questions) ORDER BY id")
        for answer_id, parent, body in orphans:
            doc = origin.document(slice_name, html_to_text(body), {"post": answer_id})
            yield quarantined(doc, f"{origin.file}: answer {answer_id}: its question "
                                   f"{parent} is not in the file")
        for ordinal, post, error, body in db.execute("SELECT * FROM rejected ORDER BY row"):
            doc = origin.document(slice_name, html_to_text(body or ""), {"row": ordinal},
                                  source_id=post)
            yield quarantined(doc, f"{origin.file}: row {ordinal}: {error}")


def _question_document(origin: Origin, slice_name: str, site: str | None, row: tuple[Any, ...],
                       answers: list[str]) -> Document:
    post_id, title, body, tags, score, created, accepted, license_name = row
    title = html.unescape(title or "").strip()  # plain text, not markup: "List<T>" stays
    text = question_text(title, html_to_text(body), [html_to_text(a) for a in answers])
    return origin.document(slice_name, text, {"post": post_id},
                           url=f"https://{site}/questions/{post_id}" if site else None,
                           title=title, score=score, tags=parse_tags(tags), timestamp=created,
                           answer_count=len(answers), accepted_answer_id=accepted,
                           license=license_name, source_id=str(post_id))
