"""Code files for the github slice: language, vendoring, binaries, licenses, interleaving."""

import pytest

from redrobe.errors import InputError
from redrobe.sources import sample
from redrobe.sources.base import BINARY, EMPTY_TEXT, KEPT, REMOVED, route
from redrobe.sources.code import decode_source, is_vendored, language_of

PY = b'"""Greeting helpers."""\n\n\ndef greet(name: str) -> str:\n    return f"hello {name}"\n'
C = b'#include "greet.h"\n\nint add(int a, int b)\n{\n    return a + b;\n}\n'


def test_language_from_extension():
    assert language_of("pkg/mod.py") == "Python"
    assert language_of("src/ext.c") == "C" and language_of("src/ext.H") == "C"
    assert language_of("README.md") is None and language_of("setup.cfg") is None


def test_vendored_directories():
    assert is_vendored("src/pip/_vendor/six.py")
    assert is_vendored("deps/double-conversion/bignum.h")
    assert is_vendored("lib/third_party/zlib/inflate.c")
    assert not is_vendored("src/vendor.py") and not is_vendored("lib/ultrajson.h")


def test_decode_source_rejects_binary():
    assert decode_source(PY) == PY.decode()
    assert decode_source(b"\x7fELF\x02\x01\x01\x00\x00") is None  # NUL byte
    assert decode_source("caf\u00e9".encode("latin-1")) is None  # not UTF-8


def _sdist(make_archive, name: str, license_line: str, files: dict[str, bytes]):
    top = f"{name}-1.0"
    members = {f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
                                  f"{license_line}\n".encode()}
    members.update({f"{top}/{path}": data for path, data in files.items()})
    return make_archive(name, "1.0", members)


def test_github_builder_keeps_code_with_license_and_language(make_archive):
    alpha = _sdist(make_archive, "alpha", "License-Expression: MIT", {
        "src/alpha/__init__.py": b"",
        "src/alpha/greet.py": PY,
        "src/alpha/_vendor/six.py": PY,        # vendored: not a document
        "src/alpha/data.c": b"\xff\xfe binary \x00\x01",
        "README.md": b"# alpha\n",             # not code
    })
    beta = _sdist(make_archive, "beta", "Classifier: License :: OSI Approved :: BSD License",
                  {"lib/add.c": C, "lib/add.h": b"int add(int a, int b);\n"})
    docs = list(sample.github({"alpha": alpha, "beta": beta}))
    # one file from each package in turn, each package in archive order
    assert [d.meta["path"] for d in docs] == ["src/alpha/__init__.py", "lib/add.c",
                                              "src/alpha/greet.py", "lib/add.h", "src/alpha/data.c"]
    fates = [route(d, 10_000) for d in docs]
    assert [f for f, _ in fates] == [REMOVED, KEPT, KEPT, KEPT, REMOVED]
    assert fates[0][1].extra["reason"] == EMPTY_TEXT and fates[4][1].extra["reason"] == BINARY
    greet = docs[2]
    assert greet.text == PY.decode() and greet.source == "github"
    assert greet.meta["language"] == "Python" and greet.meta["license"] == "MIT"
    assert greet.meta["repo_name"] == "alpha==1.0" and greet.meta["size"] == len(PY)
    assert greet.meta["provenance"]["member"] == "alpha-1.0/src/alpha/greet.py"
    assert docs[1].meta["license"] == "BSD" and docs[1].meta["language"] == "C"


def test_github_builder_refuses_a_copyleft_package(make_archive):
    gpl = _sdist(make_archive, "gamma", "License: GPL-3.0-or-later", {"gamma.py": PY})
    with pytest.raises(InputError, match="gamma==1.0"):
        list(sample.github({"gamma": gpl}))
