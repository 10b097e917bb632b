"""A local (or fsspec) directory of source files -> github-slice documents.

    docs = tree_documents(expand("repos/click")[0], "github")

Every file of the tree is one record, in sorted path order; version-control
metadata (``.git``, ``.hg``, ``.svn``) is not part of the project and is not read.
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
from redrobe.sources.base import BINARY, LICENSE_NOT_PERMISSIVE, NOT_CODE, VENDORED, Origin, removed
from redrobe.sources.code import (
    TREE_LANGUAGES,
    decode_source,
    is_license_file,
    is_vendored,
    language_of,
    license_of,
)
from redrobe.sources.fileio import Source

#: version-control metadata directories: not files of the project
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})


def tree_license(tree: Source) -> tuple[str | None, str | None]:
    """(SPDX id or None, license file path) from the first root license file, sorted by name."""
    for member in tree.children():
        if is_license_file(member.basename):
            with member.open_raw() as fh:
                text = decode_source(fh.read())
            return (license_of(text) if text is not None else None), member.basename
    return None, None


def tree_documents(tree: Source, slice_name: str) -> Iterator[Document]:
    """One document per file of the tree (see the module docstring for the fates)."""
    license_name, license_file = tree_license(tree)
    permissive = license_name is not None and is_permissive(license_name)
    for rel, member in tree.walk():
        if set(rel.split("/")[:-1]) & VCS_DIRS:
            continue
        with member.open_raw() as fh:
            data = fh.read()
        yield _file_document(tree, rel, member, data, slice_name, license_name, license_file,
                             permissive)


def _file_document(tree: Source, rel: str, member: Source, data: bytes, slice_name: str,
                   license_name: str | None, license_file: str | None,
                   permissive: bool) -> Document:
    language = language_of(rel, TREE_LANGUAGES)
    origin = Origin(member.name, hashlib.sha256(data).hexdigest())
    text = decode_source(data)
    doc = origin.document(slice_name, text or "", {"repo_name": tree.basename, "path": rel},
                          repo_name=tree.basename, path=rel, language=language, size=len(data),
                          license=license_name, license_file=license_file)
    if text is None:
        return removed(doc, BINARY)
    if language is None or rel == license_file:
        return removed(doc, NOT_CODE)
    if is_vendored(rel):
        return removed(doc, VENDORED)
    if not permissive:
        return removed(doc, LICENSE_NOT_PERMISSIVE)
    return doc
