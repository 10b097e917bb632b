"""Source files for the github slice: language, vendored paths, binary detection.

    language_of("pkg/mod.py")               -> "Python"
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

#: directory names that hold third-party code copied into a project
VENDORED_DIRS = frozenset({"vendor", "vendored", "_vendor", "third_party", "thirdparty",
                           "third-party", "3rdparty", "deps", "external", "extern"})


def language_of(path: str) -> str | None:
    """The language of a source file from its extension, None if not a kept language."""
    return LANGUAGES.get(PurePosixPath(path).suffix.lower())


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
