"""A local (or fsspec) directory of source files -> github-slice documents.

    docs = tree_documents(expand("repos/click")[0], "github")

Every file of the tree is one record, in sorted path order; version-control
metadata (``.git``, ``.hg``, ``.svn``) is not part of the project and is not read.
A symbolic link is never followed: a linked file (or directory, which is not
descended) is one record removed as ``symlink`` with its target in meta
``link_target``, so a link cannot pull a file from outside the tree into the data.
A file is read with a byte budget: a larger one is removed as ``too_long`` with its
first characters (meta ``size`` is its full size), never held whole.
The tree's license comes from a LICENSE / LICENCE / COPYING file at its root
(``code.license_of``: SPDX id by its characteristic phrases) and is recorded in
every document's meta with the file it came from. Fates, as RedPajama-1T's github
slice decides them (MIT/BSD/Apache only; third-party copies and non-code skipped):

- the license file itself and files whose extension is no language of
  ``code.TREE_LANGUAGES`` (docs, data, images...): removed ``not_code``, or
  ``binary`` when they are not UTF-8 text (text left empty: the bytes are not text);
- files under a vendoring directory (``vendor/``, ``third_party/``...): ``vendored``;
- every file of a tree whose license is not MIT/BSD/Apache, or that has none:
  ``license_not_permissive``;
- source files that are not UTF-8 text: ``binary``;
- the rest is kept: text, meta ``repo_name`` (the directory name), ``path``,
  ``language``, ``size``, ``license``, ``license_file``.

Ids hash (slice, file sha256, repo name, path): stable wherever the tree lives.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

from redrobe.documents import Document
from redrobe.sources.archive import is_permissive
from redrobe.sources.base import (
    BINARY,
    DEFAULT_LIMITS,
    LICENSE_NOT_PERMISSIVE,
    NOT_CODE,
    SYMLINK,
    VENDORED,
    Limits,
    Origin,
    removed,
    stable_id,
    too_long,
)
from redrobe.sources.code import (
    TREE_LANGUAGES,
    decode_source,
    is_license_file,
    is_vendored,
    language_of,
    license_of,
)
from redrobe.sources.fileio import Budget, Capped, Source, metered, read_capped

#: version-control metadata directories: not files of the project
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})
#: license phrases sit at the top of the file: this much of it is read
_LICENSE_BYTES = 1 << 16


def tree_license(tree: Source) -> tuple[str | None, str | None]:
    """(SPDX id or None, license file path) from the first root license file, sorted by name."""
    for member in tree.children():
        if is_license_file(member.basename):
            with member.open_raw() as fh:
                text = _license_text(fh.read(_LICENSE_BYTES))
            return (license_of(text) if text is not None else None), member.basename
    return None, None


def _license_text(head: bytes) -> str | None:
    """The first bytes of a license file as text (None: binary); a cut that splits a
    UTF-8 character drops its first bytes."""
    for cut in range(4 if len(head) == _LICENSE_BYTES else 1):
        text = decode_source(head[:len(head) - cut])
        if text is not None:
            return text
    return None


def tree_documents(tree: Source, slice_name: str, limits: Limits = DEFAULT_LIMITS,
                   budget: Budget | None = None) -> Iterator[Document]:
    """One document per file of the tree (see the module docstring for the fates)."""
    license_name, license_file = tree_license(tree)
    permissive = license_name is not None and is_permissive(license_name)
    for rel, member in tree.walk():
        if set(rel.split("/")[:-1]) & VCS_DIRS:
            continue
        if member.is_link:
            yield _link_document(tree, rel, member, slice_name)
            continue
        with member.open_raw() as fh:
            capped = read_capped(metered(fh, budget), limits.doc_bytes)
        yield _file_document(tree, rel, member, capped, slice_name, license_name, license_file,
                             permissive, limits.max_chars)


def _link_document(tree: Source, rel: str, member: Source, slice_name: str) -> Document:
    """A symbolic link: removed, its target recorded, the file it points to never read."""
    target = member.link_target()
    where = {"file": member.name, "repo_name": tree.basename, "path": rel}
    doc = Document(id=stable_id(slice_name, "symlink", tree.basename, rel, target), text="",
                   source=slice_name, meta={"repo_name": tree.basename, "path": rel,
                                            "link_target": target, "provenance": where})
    return removed(doc, SYMLINK)


def _file_document(tree: Source, rel: str, member: Source, capped: Capped, slice_name: str,
                   license_name: str | None, license_file: str | None,
                   permissive: bool, max_chars: int) -> Document:
    language = language_of(rel, TREE_LANGUAGES)
    # a file too long to hold is identified by its first bytes (and its size in meta)
    origin = Origin(member.name, hashlib.sha256(capped.head).hexdigest())
    text = decode_source(capped.head) if capped.complete else None
    doc = origin.document(slice_name, text or "", {"repo_name": tree.basename, "path": rel},
                          repo_name=tree.basename, path=rel, language=language, size=capped.size,
                          license=license_name, license_file=license_file)
    if not capped.complete:
        return too_long(doc, capped.head, capped.size, max_chars)
    if text is None:
        return removed(doc, BINARY)
    if language is None or rel == license_file:
        return removed(doc, NOT_CODE)
    if is_vendored(rel):
        return removed(doc, VENDORED)
    if not permissive:
        return removed(doc, LICENSE_NOT_PERMISSIVE)
    return doc
