"""Code trees: language by extension, root license, binary / vendored / non-code files."""

from redrobe.sources.base import BINARY, LICENSE_NOT_PERMISSIVE, NOT_CODE, VENDORED
from redrobe.sources.code import TREE_LANGUAGES, is_license_file, language_of, license_of
from redrobe.sources.codetree import tree_documents, tree_license
from redrobe.sources.fileio import expand

MIT = """MIT License

Copyright (c) 2024 Tide Tools

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction...
"""
GPL3 = """                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007
 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
 Everyone is permitted to copy and distribute verbatim copies
"""


def make_tree(root, license_text=MIT):
    files = {
        "LICENSE": license_text.encode(),
        "README.md": b"# tides\n",
        "tides/__init__.py": b'"""Tide tables."""\n\ndef high_water(t):\n    return t % 12.42\n',
        "tides/fast.c": b"int tide(int t) { return t % 745; }\n",
        "tides/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "vendor/six.py": b"PY3 = True\n",
        ".git/HEAD": b"ref: refs/heads/main\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_license_detection_and_languages():
    assert license_of(MIT) == "MIT" and license_of(GPL3) == "GPL" and license_of("hi") is None
    assert is_license_file("LICENSE") and is_license_file("COPYING.txt")
    assert is_license_file("LICENSE-APACHE") and not is_license_file("license_check.py")
    assert language_of("src/app.rs", TREE_LANGUAGES) == "Rust" and language_of("src/app.rs") is None


def test_tree_documents_fates_and_meta(tmp_path):
    (tree,) = expand(str(make_tree(tmp_path / "tides")))
    assert tree_license(tree) == ("MIT", "LICENSE")
    docs = {d.meta["path"]: d for d in tree_documents(tree, "github")}
    assert sorted(docs) == ["LICENSE", "README.md", "tides/__init__.py", "tides/fast.c",
                            "tides/logo.png", "vendor/six.py"]  # .git is not read
    fates = {path: d.extra.get("reason") for path, d in docs.items()}
    assert fates == {"LICENSE": NOT_CODE, "README.md": NOT_CODE, "tides/__init__.py": None,
                     "tides/fast.c": None, "tides/logo.png": BINARY, "vendor/six.py": VENDORED}
    py = docs["tides/__init__.py"]
    assert py.text.startswith('"""Tide tables."""') and py.source == "github"
    assert (py.meta["language"], py.meta["license"], py.meta["license_file"]) == (
        "Python", "MIT", "LICENSE")
    assert py.meta["repo_name"] == "tides" and py.meta["size"] == len(py.text.encode())
    assert docs["tides/fast.c"].meta["language"] == "C" and docs["tides/logo.png"].text == ""
    assert len({d.id for d in docs.values()}) == len(docs)


def test_tree_that_is_not_permissive_keeps_nothing(tmp_path):
    (tree,) = expand(str(make_tree(tmp_path / "gpl", GPL3)))
    docs = {d.meta["path"]: d for d in tree_documents(tree, "github")}
    assert docs["tides/__init__.py"].extra["reason"] == LICENSE_NOT_PERMISSIVE
    assert docs["tides/__init__.py"].meta["license"] == "GPL"
    (tmp_path / "gpl" / "LICENSE").unlink()
    docs = {d.meta["path"]: d for d in tree_documents(expand(str(tmp_path / "gpl"))[0], "github")}
    assert docs["tides/fast.c"].extra["reason"] == LICENSE_NOT_PERMISSIVE
    assert "license" not in docs["tides/fast.c"].meta
