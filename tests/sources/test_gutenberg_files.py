"""Project Gutenberg plain-text files as book documents (header, encoding, boilerplate)."""

from redrobe.sources.base import Origin
from redrobe.sources.gutenberg import book_document, book_header

ORIGIN = Origin("books/pg1513.txt", "34" * 32)
HEADER = """The Project Gutenberg EBook of Romeo and Juliet, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost and with
almost no restrictions whatsoever.

Title: Romeo and Juliet

Author: William Shakespeare

Release Date: November, 1998  [EBook #1513]

Language: English

Character set encoding: {encoding}

*** START OF THIS PROJECT GUTENBERG EBOOK ROMEO AND JULIET ***

Produced by the PG Shakespeare Team.

"""
BODY = "ACT I. Scene I.\nVerona. A public place.\n\nEnter Sampson and Gregory, with swords."
FOOTER = "\n\nEnd of the Project Gutenberg EBook of Romeo and Juliet, by William Shakespeare\n"


def test_header_fields():
    header = book_header(HEADER.format(encoding="ASCII"))
    assert header == {"title": "Romeo and Juliet", "author": "William Shakespeare",
                      "ebook": "1513", "language": "English", "character set encoding": "ASCII"}


def test_book_document_strips_boilerplate_and_takes_meta():
    doc = book_document((HEADER.format(encoding="UTF-8") + BODY + FOOTER).encode(), ORIGIN, "books")
    assert doc.text == BODY and not doc.extra
    assert doc.meta["title"] == "Romeo and Juliet" and doc.meta["author"] == "William Shakespeare"
    assert doc.meta["url"] == "https://www.gutenberg.org/ebooks/1513"
    assert doc.meta["provenance"] == {"file": ORIGIN.file, "sha256": ORIGIN.sha256, "offset": 0}


def test_declared_latin1_decodes_and_undeclared_non_utf8_is_quarantined():
    body = "Enter Juli\u00e9t."
    raw = (HEADER.format(encoding="ISO-8859-1") + body + FOOTER).encode("latin-1")
    assert book_document(raw, ORIGIN, "books").text == body
    raw = (HEADER.replace("Character set encoding: {encoding}\n", "") + body).encode("latin-1")
    bad = book_document(raw, ORIGIN, "books")
    assert bad.extra["error"].startswith(f"{ORIGIN.file}: not utf-8-sig text")
