"""Strip Project Gutenberg boilerplate from a plain-text e-book.

    body = strip_gutenberg(raw_text)
    doc = book_document(raw_bytes, Origin(name, sha256), "books")   # a plain-text e-book file

Handles the marker forms found in real Project Gutenberg files:

- start: ``*** START OF THIS/THE PROJECT GUTENBERG EBOOK <TITLE> ***`` (also without
  spaces or trailing stars) and the 1990s form that ends the small print,
  ``*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*``;
- end: ``*** END OF THIS/THE PROJECT GUTENBERG EBOOK <TITLE> ***``,
  ``End of the Project Gutenberg EBook of <title>``, ``End of Project Gutenberg's
  <title>``, ``End of The Project Gutenberg Etext of <title>``;
- license blocks inside the text: the small print
  (``***START**THE SMALL PRINT!**...`` .. ``*END*THE SMALL PRINT!...*END*``) and the
  World Library notice repeated through the 1990s Shakespeare texts
  (``<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM SHAKESPEARE ... >>``);
- producer credits right after the start marker (``Produced by ...``).

Text without markers is returned unchanged apart from newline normalization and
trimmed blank lines, so a text that was already cleaned is not damaged. A license
block that never closes is kept rather than deleting the rest of the book.

``book_document`` decodes a file with the encoding its header declares
(``Character set encoding: ISO-8859-1``), UTF-8 otherwise or when the name is no
codec; a file that does not decode, or whose declared codec is no text encoding
(``rot13``), is quarantined. It takes title, author, language and the e-book's URL
(``[EBook #1234]`` -> ``https://www.gutenberg.org/ebooks/1234``, the number also as
``source_id``) from the header. ``book_from_stream`` reads a file with a byte
budget: a larger book is removed as ``too_long`` with its first characters and its
size, never held whole.
"""

from __future__ import annotations

import bisect
import codecs
import re
from typing import IO

from redrobe.documents import Document
from redrobe.sources.base import DEFAULT_LIMITS, Limits, Origin, quarantined, too_long
from redrobe.sources.fileio import read_capped

_START = re.compile(
    r"^\s*(\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG E-?(BOOK|TEXT)"
    r"|\*+\s*END\s*\*?\s*THE SMALL PRINT!)", re.IGNORECASE)
_END = re.compile(
    r"^\s*(\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG E-?(BOOK|TEXT)"
    r"|END OF (THE )?PROJECT GUTENBERG('S)?\b)", re.IGNORECASE)
#: (opening line, closing line) of license blocks that may sit inside the text
_BLOCKS = (
    (re.compile(r"^\s*\*+\s*START\s*\*+\s*THE SMALL PRINT!", re.IGNORECASE),
     re.compile(r"\*\s*END\s*\*?\s*THE SMALL PRINT!", re.IGNORECASE)),
    (re.compile(r"^\s*<<\s*THIS ELECTRONIC VERSION OF THE COMPLETE WORKS", re.IGNORECASE),
     re.compile(r">>\s*$")),
)
_HEADER = re.compile(r"^(Title|Author|Language|Character set encoding):\s*(.+?)\s*$",
                     re.IGNORECASE | re.MULTILINE)
_EBOOK_NUMBER = re.compile(r"\[E-?Book #(\d+)\]", re.IGNORECASE)
#: the header sits in the first few kilobytes of every Project Gutenberg file
_HEADER_BYTES = 8192
_CREDIT = re.compile(r"^\s*(produced by|this e-?text was prepared by|e-?text prepared by|"
                     r"transcribed from)\b", re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """The book's own text: header, footer, license blocks and credits removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, end = _body_bounds(lines)
    body = _drop_credits(_drop_blocks(lines[start:end]))
    return "\n".join(body).strip("\n")


def _body_bounds(lines: list[str]) -> tuple[int, int]:
    """Lines after the last start marker and before the first end marker after it."""
    start = 0
    for i, line in enumerate(lines):
        if _END.match(line):
            break
        if _START.match(line):
            start = i + 1
    end = next((i for i in range(start, len(lines)) if _END.match(lines[i])), len(lines))
    return start, end


def _drop_blocks(lines: list[str]) -> list[str]:
    """Remove closed license blocks anywhere in the body."""
    out: list[str] = []
    closings: dict[int, list[int]] = {}
    i = 0
    while i < len(lines):
        closing = _block_end(lines, i, closings)
        if closing is None:
            out.append(lines[i])
            i += 1
        else:
            i = closing + 1
    return out


def _block_end(lines: list[str], i: int, closings: dict[int, list[int]]) -> int | None:
    """Index of the line closing a license block opened at ``i`` (None: no closed block).
    ``closings`` caches each block kind's closing lines: found once, not once per
    opening line (a book of unclosed openings would cost quadratic time)."""
    for kind, (opening, closing) in enumerate(_BLOCKS):
        if opening.match(lines[i]):
            if kind not in closings:
                closings[kind] = [j for j, line in enumerate(lines) if closing.search(line)]
            after = bisect.bisect_left(closings[kind], i)
            return closings[kind][after] if after < len(closings[kind]) else None
    return None


def _drop_credits(lines: list[str]) -> list[str]:
    """Remove a producer-credit paragraph at the top of the body."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not _CREDIT.match(lines[first]):
        return lines
    blank = next((j for j in range(first, len(lines)) if not lines[j].strip()), len(lines))
    return lines[blank:]


def book_header(head: str) -> dict[str, str]:
    """Title/Author/Language/encoding and the e-book number from a file's first lines."""
    fields = {m.group(1).lower(): m.group(2) for m in _HEADER.finditer(head)}
    number = _EBOOK_NUMBER.search(head)
    if number:
        fields["ebook"] = number.group(1)
    return fields


def book_from_stream(fh: IO[bytes], origin: Origin, slice_name: str,
                     limits: Limits = DEFAULT_LIMITS) -> Document:
    """:func:`book_document` of a stream holding at most ``limits.doc_bytes`` of it."""
    capped = read_capped(fh, limits.doc_bytes)
    if capped.complete:
        return book_document(capped.head, origin, slice_name)
    header = book_header(capped.head[:_HEADER_BYTES].decode("latin-1"))
    return too_long(_blank_document(header, origin, slice_name), capped.head, capped.size,
                    limits.max_chars)


def book_document(data: bytes, origin: Origin, slice_name: str) -> Document:
    """One document for a plain-text e-book: header parsed, boilerplate stripped."""
    header = book_header(data[:_HEADER_BYTES].decode("latin-1"))
    encoding = _codec(header.get("character set encoding", "")) or "utf-8"
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding  # a BOM is not text
    doc = _blank_document(header, origin, slice_name)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return quarantined(doc.with_text(data.decode(encoding, "replace")),
                           f"{origin.file}: not {encoding} text: {exc}")
    except (UnicodeError, LookupError) as exc:  # a codec that is no text encoding (rot13...)
        return quarantined(doc.with_text(data.decode("utf-8", "replace")),
                           f"{origin.file}: the declared encoding {encoding!r} cannot decode "
                           f"the book: {type(exc).__name__}: {exc}")
    return doc.with_text(strip_gutenberg(text))


def _blank_document(header: dict[str, str], origin: Origin, slice_name: str) -> Document:
    url = f"https://www.gutenberg.org/ebooks/{header['ebook']}" if "ebook" in header else None
    return origin.document(slice_name, "", {"offset": 0}, title=header.get("title"),
                           author=header.get("author"), language=header.get("language"),
                           url=url, source_id=header.get("ebook"))


def _codec(name: str) -> str | None:
    """A Python codec for a declared encoding ("ISO Latin-1", "UTF-8"...), None if unknown."""
    cleaned = name.strip().lower().replace("iso latin-1", "latin-1")
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None
