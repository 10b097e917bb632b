"""redrobe.codedeps: static import closures on a tiny fake package, and DVC deps from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from redrobe.codedeps import SOURCE, covered, dvc_deps, import_closure, imported_modules, uncovered

#: the fake package: pkg.a -> pkg.b -> pkg.sub.c -> pkg.a (a cycle), plus every import form
FILES = {
    "pkg/__init__.py": '"""marker"""\n',
    "pkg/a.py": "import os\nfrom . import b\n\ndef later():\n    from pkg import g\n",
    "pkg/b.py": "from .sub import c\nfrom pkg.sub import CONST\nimport pkgother\n",
    "pkg/sub/__init__.py": "from pkg.sub.d import X\nCONST = 1\n",
    "pkg/sub/c.py": "import pkg.a\nfrom .. import e\nfrom ..f import name\n",
    "pkg/sub/d.py": "X = 1\n",
    "pkg/e.py": "raise RuntimeError('imported')\n",   # a closure never imports anything
    "pkg/f.py": "name = 1\n",
    "pkg/g.py": "",
    "pkg/unused.py": "import pkg.a\n",
    "pkg/deep/__init__.py": "",
    "pkg/deep/leaf.py": "from ... import beyond_the_top\nfrom . import missing_name\n",
    "pkgother/__init__.py": "",
}


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for name, text in FILES.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_relative_absolute_submodule_and_function_level_imports(fake):
    assert imported_modules(fake / "pkg/a.py", "pkg.a", fake, "pkg") == ["pkg", "pkg.b", "pkg.g"]
    # `from pkg.sub import CONST`: a name, not a submodule; `pkgother` is another package
    assert imported_modules(fake / "pkg/b.py", "pkg.b", fake, "pkg") == ["pkg.sub", "pkg.sub.c"]
    # `from .. import e` and `from ..f import name` resolve from pkg.sub
    assert imported_modules(fake / "pkg/sub/c.py", "pkg.sub.c", fake, "pkg") == \
        ["pkg", "pkg.a", "pkg.e", "pkg.f"]
    # in a package's __init__, `.` is the package itself; beyond the top is skipped
    assert imported_modules(fake / "pkg/deep/leaf.py", "pkg.deep.leaf", fake, "pkg") == ["pkg.deep"]


def test_closure_follows_a_cycle_and_package_inits_and_nothing_else(fake):
    closure = import_closure("pkg.a", fake, package="pkg")
    assert closure == ["src/pkg/a.py",   # the module asked for first, then the rest sorted
                       "src/pkg/__init__.py", "src/pkg/b.py", "src/pkg/e.py", "src/pkg/f.py",
                       "src/pkg/g.py", "src/pkg/sub/__init__.py", "src/pkg/sub/c.py",
                       "src/pkg/sub/d.py"]
    # the cycle closes on itself: starting anywhere in it gives the same files
    assert set(import_closure("pkg.sub.c", fake, package="pkg")) == set(closure)
    assert import_closure("pkg.sub.c", fake, package="pkg")[0] == "src/pkg/sub/c.py"


def test_closure_of_several_modules_keeps_their_order_and_skips_missing_ones(fake):
    closure = import_closure(["pkg.f", "pkg.missing", "pkg.sub.d", "os", "pkgother"], fake,
                             fake, package="pkg")
    # pkg.sub.d runs pkg/sub/__init__.py (its package), which imports pkg.sub.d
    assert closure == ["pkg/f.py", "pkg/sub/d.py", "pkg/__init__.py", "pkg/sub/__init__.py"]
    assert import_closure("pkg.missing", fake, package="pkg") == []


def test_dvc_deps_lists_code_as_dvc_yaml_does():
    paths = ["src/redrobe/stages/ingest.py", "src/redrobe/__init__.py",
             "src/redrobe/stages/__init__.py", "src/redrobe/stages/common.py",
             "src/redrobe/text/__init__.py", "src/redrobe/errors.py", "src/redrobe/text/rules.py",
             "src/redrobe/tables/__init__.py", "src/redrobe/tables/lm.py",
             "src/redrobe/curriculum/split.py", "src/redrobe/sources/deep/er.py"]
    assert dvc_deps(paths) == [
        "src/redrobe/stages/ingest.py", "src/redrobe/stages/common.py",   # glue: one by one
        "src/redrobe/text", "src/redrobe/errors.py",                      # a library package
        "src/redrobe/tables/__init__.py", "src/redrobe/tables/lm.py",
        "src/redrobe/curriculum", "src/redrobe/sources"]                  # markers left out
    assert dvc_deps(["lib/pkg/__init__.py", "lib/pkg/x/y.py", "lib/pkg/z.py"], "lib",
                    markers=("pkg",), per_module=()) == ["lib/pkg/x", "lib/pkg/z.py"]


def test_covered_and_uncovered():
    deps = ["src/redrobe/text", "src/redrobe/errors.py", "data/raw"]
    assert covered("src/redrobe/text/rules.py", deps) and covered("src/redrobe/errors.py", deps)
    assert not covered("src/redrobe/textual.py", deps)   # a folder, not a string prefix
    assert not covered("src/redrobe/errors.py", ["src/redrobe/errors"])
    closure = ["src/redrobe/stages/x.py", "src/redrobe/__init__.py", "src/redrobe/stages/__init__.py",
               "src/redrobe/text/rules.py", "src/redrobe/documents.py"]
    assert uncovered(closure, deps) == ["src/redrobe/stages/x.py", "src/redrobe/documents.py"]
    assert uncovered(closure, deps, markers=()) == [
        "src/redrobe/stages/x.py", "src/redrobe/__init__.py", "src/redrobe/stages/__init__.py",
        "src/redrobe/documents.py"]


def test_the_real_package_round_trips_through_dvc_deps():
    closure = import_closure("redrobe.tables.lm", SOURCE)
    assert closure[0] == "src/redrobe/tables/lm.py"
    assert {"src/redrobe/train/precision.py", "src/redrobe/train/loop.py",
            "src/redrobe/train/__init__.py", "src/redrobe/model/llama.py"} <= set(closure)
    deps = dvc_deps(closure)
    assert not uncovered(closure, deps)
    assert "src/redrobe/train" in deps and "src/redrobe/train/loop.py" not in deps
    assert import_closure("redrobe.tables.lm", SOURCE) == closure   # deterministic
