"""What every ingest adapter shares: stable ids, removal reasons and routing.

An adapter yields one :class:`~redrobe.documents.Document` per source record. A
record that is not usable carries its fate in ``extra``: ``reason`` (removed, one of
the constants below) or ``error`` (quarantined, with the error text). :func:`route`
then applies the two checks common to every source (empty text, too long)::

    fate, doc = route(doc, max_chars=2_000_000)   # fate in (KEPT, REMOVED, QUARANTINED)

Ids are ``<slice>/<16 hex>``: a hash of the record's provenance (distribution,
member, offset; or file digest and line), never of run order, so the same record
gets the same id in every run and on every machine.

An input hashed while it is read (files mode) has no digest until it has been read:
its reader is given :data:`PENDING_SHA256` instead, and :func:`with_digest` puts the
digest into each document's id and provenance afterwards, as if it had been known::

    doc = with_digest(doc, "9f86d0...")   # same id and provenance as given the digest
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from redrobe.config import Ingest
from redrobe.documents import Document, Status

# Removal reasons (the ``reason`` column of data/interim/removed/ingest).
EMPTY_TEXT = "empty_text"        # nothing left after extraction / markup stripping
TOO_LONG = "too_long"            # longer than ingest.max_doc_chars
WIKI_REDIRECT = "wiki_redirect"  # a MediaWiki redirect page has no article text
WIKI_NON_ARTICLE = "wiki_non_article"  # talk, user, template... pages (namespace != 0)
BINARY = "binary"                # a code file that is not UTF-8 text
HTTP_NOT_OK = "http_not_ok"      # a crawled redirect/error page (HTTP status not 2xx)
VENDORED = "vendored"            # third-party code copied into a code tree (vendor/, ...)
NOT_CODE = "not_code"            # a text file of a code tree whose extension is no language
LICENSE_NOT_PERMISSIVE = "license_not_permissive"  # code tree not MIT/BSD/Apache (RedPajama-1T)
LATEX_NO_SECTION = "latex_no_section"  # a LaTeX paper with no section-like command
SYMLINK = "symlink"              # a symbolic link in a code tree (never followed)
LANGUAGE_NOT_KEPT = "language_not_kept"  # a routed slice's document in a language it does not keep
LANGUAGE_SCORE_BELOW_MIN = "language_score_below_min"  # identified below ingest.languages.*.min_score
REASONS = (EMPTY_TEXT, TOO_LONG, WIKI_REDIRECT, WIKI_NON_ARTICLE, BINARY, HTTP_NOT_OK, VENDORED,
           NOT_CODE, LICENSE_NOT_PERMISSIVE, LATEX_NO_SECTION, SYMLINK, LANGUAGE_NOT_KEPT,
           LANGUAGE_SCORE_BELOW_MIN)

#: the fates :func:`route` returns (:class:`redrobe.documents.Status`)
KEPT, REMOVED, QUARANTINED = Status.KEPT, Status.REMOVED, Status.QUARANTINED


#: stands for an input's sha256 until it is known (NUL: no file name or part holds it)
PENDING_SHA256 = "\x00sha256 pending"
_PENDING_ID = f"/{PENDING_SHA256}\x1f"


def stable_id(slice_name: str, *provenance: Any) -> str:
    """``<slice>/<hex>`` from the provenance parts (e.g. distribution, member, offset);
    with :data:`PENDING_SHA256` among them, ``<slice>/<pending><parts>`` (resolved by
    :func:`with_digest`)."""
    key = "\x1f".join(str(p) for p in provenance)
    if PENDING_SHA256 in provenance:
        return f"{slice_name}{_PENDING_ID}{key}"
    return f"{slice_name}/{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"


def with_digest(doc: Document, sha256: str) -> Document:
    """``doc`` with the input's digest in place of :data:`PENDING_SHA256` (id, provenance)."""
    slice_name, pending, key = doc.id.partition(_PENDING_ID)
    if pending:
        doc = replace(doc, id=stable_id(slice_name, key.replace(PENDING_SHA256, sha256)))
    provenance = doc.meta.get("provenance", {})
    if provenance.get("sha256") == PENDING_SHA256:
        doc = replace(doc, meta={**doc.meta, "provenance": {**provenance, "sha256": sha256}})
    return doc


@dataclass(frozen=True)
class Origin:
    """The input file a reader is reading: its name (path or URL) and sha256."""

    file: str
    sha256: str

    def document(self, slice_name: str, text: str, position: dict[str, Any],
                 **meta: Any) -> Document:
        """A document whose id hashes (slice, sha256, position); ``None`` meta is left out.

        ``position`` says where in the file the record is (offset, line, member...)
        and goes into ``meta.provenance`` with the file name and sha256.
        """
        parts = [f"{k}={v}" for k, v in position.items()]
        fields = {k: v for k, v in meta.items() if v is not None}
        provenance = {"file": self.file, "sha256": self.sha256, **position}
        return Document(id=stable_id(slice_name, self.sha256, *parts), text=text,
                        source=slice_name, meta={**fields, "provenance": provenance})


@dataclass(frozen=True)
class Limits:
    """What one document and one input may hold (``ingest.max_doc_chars``,
    ``ingest.max_input_bytes``)."""

    max_chars: int
    max_input_bytes: int

    @property
    def doc_bytes(self) -> int:
        """Bytes of text a document may hold: UTF-8 spends at most 4 bytes on a character,
        so more bytes than this are more characters than ``max_chars``."""
        return 4 * self.max_chars

    @property
    def markup_bytes(self) -> int:
        """Bytes one XML or JSON record may take: an escaped character takes up to 10
        (``&#1114111;``; JSON's ``\\uXXXX`` 6), so a longer record holds more than
        ``max_chars`` characters."""
        return 10 * self.max_chars


#: the params defaults, for readers called without the stage's limits
DEFAULT_LIMITS = Limits(Ingest().max_doc_chars, Ingest().max_input_bytes)


def too_long(doc: Document, head: bytes, size: int, max_chars: int,
             size_key: str = "size_bytes") -> Document:
    """Removed as ``too_long`` without being read whole: the first ``max_chars``
    characters of ``head`` are kept and the size counted goes into meta ``size_key``."""
    text = head.decode("utf-8", "replace")[:max_chars]
    return removed(replace(doc, text=text, meta={**doc.meta, size_key: size}), TOO_LONG)


def removed(doc: Document, reason: str) -> Document:
    """Mark a document as removed with a named reason."""
    return doc.with_extra(reason=reason)


def quarantined(doc: Document, error: str) -> Document:
    """Mark a record that failed to parse; ``error`` says where and why."""
    return doc.with_extra(error=error)


def route(doc: Document, max_chars: int) -> tuple[Status, Document]:
    """Decide a document's fate: (KEPT | REMOVED | QUARANTINED, document)."""
    if "error" in doc.extra:
        return QUARANTINED, doc
    if "reason" in doc.extra:
        return REMOVED, doc
    if not doc.text.strip():
        return REMOVED, removed(doc, EMPTY_TEXT)
    if len(doc.text) > max_chars:
        return REMOVED, removed(doc, TOO_LONG)
    return KEPT, doc
