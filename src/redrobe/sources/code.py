"""Source files for the github slice: language, vendored paths, binary detection.

    language_of("pkg/mod.py")               -> "Python"
    language_of("src/app.rs", TREE_LANGUAGES) -> "Rust"
    license_of(license_file_text)           -> "MIT" | "Apache-2.0" | "BSD-3-Clause" | ... | None
    is_vendored("pkg/_vendor/six.py")       -> True
    decode_source(b"int main(void) {}\\n")  -> "int main(void) {}\\n"   (None: binary)

RedPajama-1T's github slice keeps files by extension and license; third-party code
copied into a project (vendored) would count someone else's code under the
project's license and duplicate it across projects, so it is skipped.
"""

from __future__ import annotations

from pathlib import PurePosixPath

#: file extension -> language (the names GitHub Linguist uses; .h defaults to C there)
LANGUAGES = {".py": "Python", ".c": "C", ".h": "C"}

#: the languages of a user's code tree: the programming languages of RedPajama-1T's github
#: extension list (markup, data and documentation formats are not code documents here)
TREE_LANGUAGES = {
    **LANGUAGES, ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".c++": "C++", ".hh": "C++",
    ".hpp": "C++", ".hxx": "C++", ".cs": "C#", ".go": "Go", ".java": "Java", ".js": "JavaScript",
    ".mjs": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript", ".rs": "Rust",
    ".rb": "Ruby", ".php": "PHP", ".pl": "Perl", ".pm": "Perl", ".scala": "Scala",
    ".hs": "Haskell", ".jl": "Julia", ".lua": "Lua", ".r": "R", ".sh": "Shell",
    ".bash": "Shell", ".zsh": "Shell", ".sql": "SQL", ".swift": "Swift", ".kt": "Kotlin",
    ".f90": "Fortran", ".f": "Fortran", ".m": "Objective-C", ".asm": "Assembly",
    ".ps1": "PowerShell", ".vb": "Visual Basic", ".dart": "Dart",
}

#: file names (upper case, extension dropped) that state a tree's license at its root
LICENSE_FILES = ("LICENSE", "LICENCE", "COPYING")

#: (SPDX id, phrases that must all occur, lower case) in order: the first match wins
_LICENSE_SIGNS = (
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MIT", ("permission is hereby granted, free of charge",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms",
                      "neither the name")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software",)),
    ("LGPL", ("gnu lesser general public license",)),
    ("AGPL", ("gnu affero general public license",)),
    ("GPL", ("gnu general public license",)),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
)

#: directory names that hold third-party code copied into a project
VENDORED_DIRS = frozenset({"vendor", "vendored", "_vendor", "third_party", "thirdparty",
                           "third-party", "3rdparty", "deps", "external", "extern"})


def language_of(path: str, languages: dict[str, str] = LANGUAGES) -> str | None:
    """The language of a source file from its extension, None if not a kept language."""
    return languages.get(PurePosixPath(path).suffix.lower())


def is_license_file(path: str) -> bool:
    """LICENSE, LICENSE.txt, COPYING.md, ... (at any level; callers pick the root one)."""
    stem = PurePosixPath(path).name.upper().split(".", 1)[0]
    return stem in LICENSE_FILES or stem.startswith(("LICENSE-", "LICENCE-"))


def license_of(text: str) -> str | None:
    """The SPDX id of a license text by its characteristic phrases, None if unknown."""
    # the head only: a GPL text mentions the Lesser GPL near its end
    head = " ".join(text.lower().split())[:2000]
    return next((spdx for spdx, signs in _LICENSE_SIGNS if all(s in head for s in signs)), None)


def is_vendored(path: str) -> bool:
    """True when any directory of ``path`` is a vendoring directory."""
    return any(part.lower() in VENDORED_DIRS for part in PurePosixPath(path).parts[:-1])


def decode_source(data: bytes) -> str | None:
    """The file as text, or None when it is binary (a NUL byte or not UTF-8)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
