"""arXiv LaTeX sources -> text, the way RedPajama-1T's arxiv slice cleans them.

    paper = read_paper(expand("src/2101.00001.tar.gz")[0])   # .tex, directory, .tar(.gz), .gz
    text = clean_tex(paper.main_text, paper.files)          # preamble/comments/bib gone
    docs = paper_documents(source, "arxiv")                 # one document per paper

A paper is a single ``.tex`` file, a directory, a ``.tar`` / ``.tar.gz`` / ``.tgz``
of its source tree, or arXiv's gzipped single file (``<id>.gz`` that is no tar).
Multi-file papers: the main file is the ``.tex`` file with ``\\documentclass`` (ties:
with ``\\begin{document}``, then the shallowest path, then name order), and its
``\\input{}`` / ``\\include{}`` of other files of the paper are inlined (depth 8).

Budgets: the paper's ``.tex`` files together hold at most ``Limits.doc_bytes`` (a
larger paper is removed as ``too_long`` with its first characters and meta
``size_bytes``); an archive is streamed, other members only counted against the
input's budget; inlining and macro expansion stop once the text grows past
``Limits.doc_bytes`` characters (``\\input`` fan-out, macros that multiply), and the
paper is removed as ``too_long`` with meta ``expanded_chars_at_least``. Symbolic links
in a paper directory are not read.

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

import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Iterator

from redrobe.documents import Document
from redrobe.sources.base import (
    DEFAULT_LIMITS,
    LATEX_NO_SECTION,
    Limits,
    Origin,
    quarantined,
    removed,
    too_long,
)
from redrobe.sources.fileio import Budget, Pushback, Source, metered, read_capped

_SECTION = re.compile(
    r"\\(part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[\[{]")
_BIBLIOGRAPHY = re.compile(r"\\begin\{(thebibliography|references)\}|\\bibliography(style)?\{[^}]*\}",
                           re.IGNORECASE)
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")
_NEWCOMMAND = re.compile(r"\\(?:re)?newcommand\*?\s*\{?\s*(\\[A-Za-z]+)\s*\}?\s*\{")
_DEF = re.compile(r"\\def\s*(\\[A-Za-z]+)\s*\{")
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character, or a brace
_INPUT = re.compile(r"\\(?:input|include)\s*\{([^}]+)\}")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?\d{7}(?:v\d+)?)$")
_MAX_ROUNDS = 8
_TEX_SUFFIX = ".tex"


@dataclass(frozen=True)
class Paper:
    """The .tex files of one paper (name -> text), which one is the main file, and
    their size in bytes (``complete``: every .tex file fitted the budget)."""

    files: dict[str, str]
    main: str | None
    size: int = 0
    complete: bool = True


class ExpansionTooLarge(ValueError):
    """Inlining or macro expansion grew the text past its budget."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the expanded text exceeds {size} characters")
        self.size = size


@dataclass
class _TexFiles:
    """Collects a paper's .tex files within a byte budget (the rest only counted)."""

    left: int
    files: dict[str, str] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, fh: IO[bytes]) -> None:
        capped = read_capped(fh, max(self.left, 0))
        self.size += capped.size
        self.left -= capped.size
        if capped.head:  # the first bytes of a file that did not fit are kept too
            self.files[name] = _text(capped.head)

    def paper(self) -> Paper:
        files = dict(sorted(self.files.items()))
        complete = self.left >= 0
        return Paper(files, main_file(files) if complete else None, self.size, complete)


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


class _Braces:
    """Where every brace group of a text ends, found in one pass: a paper with many
    definitions costs one scan, not one scan per definition (quadratic, a hang)."""

    def __init__(self, tex: str) -> None:
        self.tex = tex
        self.ends: dict[int, int] = {}  # "{" position -> after its "}" (-1: never closed)
        opened: list[int] = []
        for token in _BRACE_TOKEN.finditer(tex):
            if token.group() == "{":
                opened.append(token.start())
            elif token.group() == "}" and opened:
                self.ends[opened.pop()] = token.end()
        self.ends.update(dict.fromkeys(opened, -1))

    def body(self, start: int) -> tuple[str, int] | None:
        """:func:`_braced` of the text at ``start``."""
        end = self.ends.get(start - 1)
        if end is None:  # that "{" is escaped in a scan from the start: scan from it
            return _braced(self.tex, start)
        return None if end < 0 else (self.tex[start:end - 1], end)


def collect_macros(tex: str) -> dict[str, str]:
    """``\\name -> body`` of the argument-free \\newcommand / \\renewcommand / \\def macros."""
    macros: dict[str, str] = {}
    braces = _Braces(tex)
    for pattern in (_NEWCOMMAND, _DEF):
        for match in pattern.finditer(tex):
            found = braces.body(match.end())
            if found is not None:  # "[1]" argument specs never match: they precede the body
                macros[match.group(1)] = found[0]
    return macros


def expand_macros(tex: str, macros: dict[str, str],
                  max_chars: int = DEFAULT_LIMITS.doc_bytes) -> str:
    """Replace each macro name (not followed by a letter) by its body, until nothing
    changes; :class:`ExpansionTooLarge` once the text grows past ``max_chars``."""
    if not macros:
        return tex
    names = sorted(macros, key=len, reverse=True)  # \foobar before \foo
    pattern = re.compile("(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z])")
    for _ in range(_MAX_ROUNDS):
        expanded = _substitute(pattern, macros, tex, max_chars)
        if expanded == tex:
            break
        tex = expanded
    return tex


def _substitute(pattern: re.Pattern[str], macros: dict[str, str], tex: str,
                max_chars: int) -> str:
    """``pattern.sub`` with macro bodies, stopped as soon as the result is too long
    (one round may multiply the text by the longest body)."""
    parts, size, last = [], len(tex), 0
    for match in pattern.finditer(tex):
        body = macros[match.group(1)]
        size += len(body) - (match.end() - match.start())
        if size > max_chars:
            raise ExpansionTooLarge(size)
        parts += [tex[last:match.start()], body]
        last = match.end()
    parts.append(tex[last:])
    return "".join(parts)


def _drop_definitions(tex: str) -> str:
    """Remove macro definitions left in the body (their effect is now inlined); a
    removal can join the text around it into a new definition, hence the rounds."""
    for pattern in (_NEWCOMMAND, _DEF):
        for _ in range(_MAX_ROUNDS):
            dropped = _drop_once(pattern, tex)
            if dropped == tex:
                break
            tex = dropped
    return tex


def _drop_once(pattern: re.Pattern[str], tex: str) -> str:
    """One pass: every definition removed, up to the first that never closes."""
    braces, parts, last = _Braces(tex), [], 0
    for match in pattern.finditer(tex):
        if match.start() < last:
            continue  # inside a definition just removed
        found = braces.body(match.end())
        if found is None:
            break
        parts.append(tex[last:match.start()])
        last = found[1]
    parts.append(tex[last:])
    return "".join(parts)


def clean_tex(tex: str, max_chars: int = DEFAULT_LIMITS.doc_bytes) -> str | None:
    """The paper's text as RedPajama keeps it; None when it has no section-like command
    (:class:`ExpansionTooLarge` when macros grow it past ``max_chars``)."""
    tex = strip_comments(tex)
    macros = collect_macros(tex)
    first = _SECTION.search(tex)
    if first is None:
        return None
    body = tex[first.start():]
    bib = _BIBLIOGRAPHY.search(body)
    if bib is not None:
        body = body[:bib.start()]
    body = expand_macros(_drop_definitions(body), macros, max_chars)
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


def inline_inputs(name: str, files: dict[str, str],
                  max_chars: int = DEFAULT_LIMITS.doc_bytes) -> str:
    """The text of ``name`` with \\input / \\include of other files of the paper inlined;
    :class:`ExpansionTooLarge` once the inlined text passes ``max_chars`` (fan-out)."""
    produced = 0

    def inline(current: str, depth: int) -> str:
        nonlocal produced
        text = strip_comments(files[current])
        produced += len(text)  # every character of the result is counted once here
        if produced > max_chars:
            raise ExpansionTooLarge(produced)

        def replace(match: re.Match[str]) -> str:
            target = _resolve(current, match.group(1).strip(), files)
            if target is None or depth >= _MAX_ROUNDS:
                return match.group(0)
            return inline(target, depth + 1)
        return _INPUT.sub(replace, text)
    return inline(name, 0)


def _resolve(current: str, ref: str, files: dict[str, str]) -> str | None:
    """The file an \\input names: relative to the paper root or to the including file."""
    for base in ("", str(PurePosixPath(current).parent)):
        candidate = str(PurePosixPath(base, ref)) if base not in ("", ".") else ref
        for name in (candidate, candidate + _TEX_SUFFIX):
            if name in files:
                return name
    return None


def read_paper(source: Source, limits: Limits = DEFAULT_LIMITS,
               budget: Budget | None = None) -> Paper:
    """The .tex files of a paper source, streamed within ``limits.doc_bytes``; raises
    tarfile/OS/gzip errors on a broken archive."""
    name = source.basename.lower()
    collected = _TexFiles(limits.doc_bytes)
    if source.is_dir:
        for rel, member in source.walk():
            if rel.lower().endswith(_TEX_SUFFIX) and not member.is_link:
                with member.open_raw() as fh:
                    collected.add(rel, metered(fh, budget))
    elif name.endswith(_TEX_SUFFIX):
        with source.open_raw() as fh:
            collected.add(source.basename, metered(fh, budget))
    else:
        with source.open(budget) as fh:  # decompressed by name: .tar.gz, .tgz, .gz
            _archive_files(fh, source.basename, collected)
    return collected.paper()


def _archive_files(fh: IO[bytes], name: str, collected: _TexFiles) -> None:
    """The .tex members of a (decompressed) tar stream, or the one file of arXiv's .gz."""
    stream = Pushback(fh)
    head = stream.read_exactly(tarfile.BLOCKSIZE)
    stream.unread(head)
    lower = name.lower()
    if lower.endswith(".gz") and not lower.endswith((".tar.gz", ".tgz")) and not _is_tar(head):
        collected.add(name[:-3] + _TEX_SUFFIX, io.BufferedReader(stream))  # arXiv: one .tex
        return
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # streamed: members in file order
        for member in tar:
            if member.isfile() and member.name.lower().endswith(_TEX_SUFFIX):
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file always has a reader
                collected.add(member.name.removeprefix("./"), extracted)


def _is_tar(block: bytes) -> bool:
    """True when ``block`` is a valid tar header (its checksum matches)."""
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


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


def paper_documents(source: Source, origin: Origin, slice_name: str,
                    limits: Limits = DEFAULT_LIMITS,
                    budget: Budget | None = None) -> Iterator[Document]:
    """One document for the paper (removed when it has no section or is too long,
    quarantined when it has no main file)."""
    paper = read_paper(source, limits, budget)
    paper_id = arxiv_id(source.basename)
    doc = origin.document(slice_name, "", {"paper": source.basename}, arxiv_id=paper_id,
                          url=f"https://arxiv.org/abs/{paper_id}" if paper_id else None,
                          main_file=paper.main, files=sorted(paper.files) or None,
                          source_id=paper_id)
    if not paper.complete:
        yield too_long(doc, _first_bytes(paper), paper.size, limits.max_chars)
        return
    if paper.main is None:
        yield quarantined(doc, f"{origin.file}: no main .tex file (none has \\documentclass "
                               f"or \\begin{{document}}; .tex files: {sorted(paper.files)})")
        return
    try:
        whole = inline_inputs(paper.main, paper.files, limits.doc_bytes)
        text = clean_tex(whole, limits.doc_bytes)
    except ExpansionTooLarge as exc:
        yield too_long(doc, _first_bytes(paper), exc.size, limits.max_chars,
                       "expanded_chars_at_least")
        return
    yield removed(doc.with_text(whole), LATEX_NO_SECTION) if text is None else doc.with_text(text)


def _first_bytes(paper: Paper) -> bytes:
    """What a paper removed as too long keeps: its .tex files as read, joined (only
    built for such a paper, not for every one)."""
    return "\n".join(paper.files.values()).encode("utf-8")
