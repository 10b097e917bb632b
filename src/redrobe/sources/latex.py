"""arXiv LaTeX sources -> text, the way RedPajama-1T's arxiv slice cleans them.

    paper = read_paper(expand("src/2101.00001.tar.gz")[0])   # .tex, directory, .tar(.gz), .gz
    text = clean_tex(paper.main_text, paper.files)          # preamble/comments/bib gone
    docs = paper_documents(source, "arxiv")                 # one document per paper

A paper is a single ``.tex`` file, a directory, a ``.tar`` / ``.tar.gz`` / ``.tgz``
of its source tree, or arXiv's gzipped single file (``<id>.gz`` that is no tar).
Multi-file papers: the main file is the ``.tex`` file with ``\\documentclass`` (ties:
with ``\\begin{document}``, then the shallowest path, then name order), and its
``\\input{}`` / ``\\include{}`` of other files of the paper are inlined (depth 8).

Cleaning, in order (RedPajama-1T, rp_v1 ``data_prep/arxiv``; docs/references.md, "RedPajama-1T slices"):

1. comments: from an unescaped ``%`` to the end of the line; lines that were only a
   comment go entirely;
2. user macros without arguments, ``\\newcommand{\\name}{body}`` /
   ``\\renewcommand`` / ``\\def\\name{body}``, are collected from the whole paper;
3. the preamble: everything before the first section-like command (``\\part``,
   ``\\chapter``, ``\\section``, ``\\subsection``, ``\\subsubsection``, ``\\paragraph``,
   ``\\subparagraph``, starred or not) is dropped; a paper without one is removed
   (``latex_no_section``);
4. the bibliography: from ``\\begin{thebibliography}``, ``\\begin{references}`` or
   ``\\bibliographystyle{...}`` / ``\\bibliography{...}`` to the end of the text;
5. the collected macros are expanded (a name followed by a non-letter), repeatedly
   so macros using macros resolve (at most 8 rounds: recursive definitions stop).

Meta: ``arxiv_id`` and ``url`` (``https://arxiv.org/abs/<id>``) when the file name is
an arXiv identifier (``2101.00001``, ``2101.00001v2``, ``hep-th9901001``), the main
file; the paper's other files are listed in ``files``.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterator

from redrobe.documents import Document
from redrobe.sources.base import LATEX_NO_SECTION, Origin, quarantined, removed
from redrobe.sources.fileio import Source

_SECTION = re.compile(
    r"\\(part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[\[{]")
_BIBLIOGRAPHY = re.compile(r"\\begin\{(thebibliography|references)\}|\\bibliography(style)?\{[^}]*\}",
                           re.IGNORECASE)
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")
_NEWCOMMAND = re.compile(r"\\(?:re)?newcommand\*?\s*\{?\s*(\\[A-Za-z]+)\s*\}?\s*\{")
_DEF = re.compile(r"\\def\s*(\\[A-Za-z]+)\s*\{")
_INPUT = re.compile(r"\\(?:input|include)\s*\{([^}]+)\}")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?\d{7}(?:v\d+)?)$")
_MAX_ROUNDS = 8
_TEX_SUFFIX = ".tex"


@dataclass(frozen=True)
class Paper:
    """The .tex files of one paper (name -> text) and which one is the main file."""

    files: dict[str, str]
    main: str | None


# ----------------------------------------------------------------------------- cleaning

def strip_comments(tex: str) -> str:
    """Drop ``%`` comments (not ``\\%``); a line that was only a comment goes entirely."""
    out = []
    for line in tex.split("\n"):
        stripped = _COMMENT.sub(r"\1", line)
        if stripped.strip() or not line.strip() or stripped == line:
            out.append(stripped.rstrip() if stripped != line else line)
    return "\n".join(out)


def _braced(tex: str, start: int) -> tuple[str, int] | None:
    """The balanced ``{...}`` body whose opening brace is at ``start - 1``, and its end."""
    depth, i = 1, start
    while i < len(tex):
        char = tex[i]
        if char == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return tex[start:i], i + 1
        i += 1
    return None


def collect_macros(tex: str) -> dict[str, str]:
    """``\\name -> body`` of the argument-free \\newcommand / \\renewcommand / \\def macros."""
    macros: dict[str, str] = {}
    for pattern in (_NEWCOMMAND, _DEF):
        for match in pattern.finditer(tex):
            found = _braced(tex, match.end())
            if found is not None:  # "[1]" argument specs never match: they precede the body
                macros[match.group(1)] = found[0]
    return macros


def expand_macros(tex: str, macros: dict[str, str]) -> str:
    """Replace each macro name (not followed by a letter) by its body, until nothing changes."""
    if not macros:
        return tex
    names = sorted(macros, key=len, reverse=True)  # \foobar before \foo
    pattern = re.compile("(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z])")
    for _ in range(_MAX_ROUNDS):
        expanded = pattern.sub(lambda m: macros[m.group(1)], tex)
        if expanded == tex:
            break
        tex = expanded
    return tex


def _drop_definitions(tex: str) -> str:
    """Remove macro definitions left in the body (their effect is now inlined)."""
    for pattern in (_NEWCOMMAND, _DEF):
        while (match := pattern.search(tex)) is not None:
            found = _braced(tex, match.end())
            if found is None:
                break
            tex = tex[:match.start()] + tex[found[1]:]
    return tex


def clean_tex(tex: str) -> str | None:
    """The paper's text as RedPajama keeps it; None when it has no section-like command."""
    tex = strip_comments(tex)
    macros = collect_macros(tex)
    first = _SECTION.search(tex)
    if first is None:
        return None
    body = tex[first.start():]
    bib = _BIBLIOGRAPHY.search(body)
    if bib is not None:
        body = body[:bib.start()]
    body = expand_macros(_drop_definitions(body), macros)
    return re.sub(r"\n{3,}", "\n\n", body).strip()


# ----------------------------------------------------------------------------- papers

def main_file(files: dict[str, str]) -> str | None:
    """The main .tex file: \\documentclass, then \\begin{document}, shallowest, by name."""
    def rank(name: str) -> tuple[bool, bool, int, str]:
        text = strip_comments(files[name])
        return ("\\documentclass" not in text, "\\begin{document}" not in text,
                name.count("/"), name)
    candidates = sorted(files, key=rank)
    if not candidates:
        return None
    best = candidates[0]
    return best if len(files) == 1 or "\\documentclass" in strip_comments(files[best]) \
        or "\\begin{document}" in strip_comments(files[best]) else None


def inline_inputs(name: str, files: dict[str, str], depth: int = 0) -> str:
    """The text of ``name`` with \\input / \\include of other files of the paper inlined."""
    def replace(match: re.Match[str]) -> str:
        target = _resolve(name, match.group(1).strip(), files)
        if target is None or depth >= _MAX_ROUNDS:
            return match.group(0)
        return inline_inputs(target, files, depth + 1)
    return _INPUT.sub(replace, strip_comments(files[name]))


def _resolve(current: str, ref: str, files: dict[str, str]) -> str | None:
    """The file an \\input names: relative to the paper root or to the including file."""
    for base in ("", str(PurePosixPath(current).parent)):
        candidate = str(PurePosixPath(base, ref)) if base not in ("", ".") else ref
        for name in (candidate, candidate + _TEX_SUFFIX):
            if name in files:
                return name
    return None


def read_paper(source: Source) -> Paper:
    """The .tex files of a paper source; raises tarfile/OS/gzip errors on a broken archive."""
    name = source.basename.lower()
    if source.is_dir:
        files = {rel: _read_text(m) for rel, m in source.walk()
                 if rel.lower().endswith(_TEX_SUFFIX)}
    elif name.endswith(_TEX_SUFFIX):
        files = {source.basename: _read_text(source)}
    else:
        with source.open_raw() as fh:
            files = _archive_files(fh.read(), source.basename)
    return Paper(files, main_file(files))


def _archive_files(data: bytes, name: str) -> dict[str, str]:
    """The .tex members of a tar (plain or gzipped), or the one file of arXiv's single .gz."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            return {m.name.removeprefix("./"): _text(tar.extractfile(m).read())  # type: ignore[union-attr]
                    for m in sorted(tar.getmembers(), key=lambda m: m.name)
                    if m.isfile() and m.name.lower().endswith(_TEX_SUFFIX)}
    except tarfile.ReadError:
        if not name.lower().endswith(".gz") or name.lower().endswith((".tar.gz", ".tgz")):
            raise
    return {name[:-3] + _TEX_SUFFIX: _text(gzip.decompress(data))}  # arXiv's gzipped .tex


def _read_text(source: Source) -> str:
    with source.open_raw() as fh:
        return _text(fh.read())


def _text(data: bytes) -> str:
    """LaTeX sources are mostly UTF-8; older ones Latin-1 (every byte decodes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def arxiv_id(name: str) -> str | None:
    """``2101.00001`` from ``2101.00001.tar.gz`` and the like; None for other names."""
    stem = re.sub(r"(\.tar)?(\.gz|\.tgz|\.tex|\.tar)$", "", name)
    return stem if _ARXIV_ID.match(stem) else None


def paper_documents(source: Source, origin: Origin, slice_name: str) -> Iterator[Document]:
    """One document for the paper (removed when it has no section, quarantined when no main)."""
    paper = read_paper(source)
    paper_id = arxiv_id(source.basename)
    doc = origin.document(slice_name, "", {"paper": source.basename}, arxiv_id=paper_id,
                          url=f"https://arxiv.org/abs/{paper_id}" if paper_id else None,
                          main_file=paper.main, files=sorted(paper.files) or None)
    if paper.main is None:
        yield quarantined(doc, f"{origin.file}: no main .tex file (none has \\documentclass "
                               f"or \\begin{{document}}; .tex files: {sorted(paper.files)})")
        return
    whole = inline_inputs(paper.main, paper.files)
    text = clean_tex(whole)
    yield removed(doc.with_text(whole), LATEX_NO_SECTION) if text is None else doc.with_text(text)
