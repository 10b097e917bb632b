"""Code dependencies: a module's import closure within the package, as DVC ``deps``.

DVC does not follow imports, so a stage's ``deps`` must name every source file the stage
runs, or a change to one of them reruns nothing. :func:`import_closure` finds those files
statically (``ast``; nothing is imported):

    paths = import_closure("redrobe.stages.ingest", SOURCE)
    # ['src/redrobe/stages/ingest.py', 'src/redrobe/__init__.py', ..., 'src/redrobe/text/rules.py']
    dvc_deps(paths)
    # ['src/redrobe/stages/ingest.py', 'src/redrobe/accounting.py', ..., 'src/redrobe/text']

It follows ``import redrobe.x``, ``from redrobe import x`` and ``from redrobe.x import y``
(``y`` when it is a submodule), relative imports, and the ``__init__.py`` of every package
on the way (Python runs them), wherever they appear in a file (imports inside functions
too). Imports by computed name (``importlib.import_module(f"...")``) are not followed.

:func:`dvc_deps` writes a closure the way ``dvc.yaml`` lists code: top-level modules and
the glue packages' modules (:data:`PER_MODULE`: a stage or table depends on its own
module, not its siblings') one file each, every other subpackage as its folder, and the
package markers (:data:`MARKERS`) left out. :func:`uncovered` is the check that a list of
deps names every file of a closure.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

#: the package whose modules a closure follows
PACKAGE = "redrobe"
#: the directory this ``redrobe`` package is imported from (``<repository>/src``)
SOURCE = Path(__file__).resolve().parents[1]
#: packages whose ``__init__.py`` is a marker (a docstring, a version, constants): no DVC
#: stage lists them
MARKERS = ("redrobe", "redrobe.stages")
#: packages listed module by module (glue: each stage or table runs its own module only);
#: any other subpackage of the package is listed as its folder
PER_MODULE = ("redrobe.stages", "redrobe.tables")


def module_file(name: str, src: Path) -> Path | None:
    """The file of module ``name`` under ``src`` (``x.py`` or ``x/__init__.py``), or None."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imported_modules(path: Path, name: str, src: Path, package: str = PACKAGE) -> list[str]:
    """The modules of ``package`` that file ``path`` (module ``name``) imports, sorted."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if _within(a.name, package))
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: `from . import x` (level 1 is this package)
                parts = here.split(".") if here else []
                if node.level - 1 >= len(parts):
                    continue   # beyond the top-level package: Python raises ImportError
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not _within(base, package):
                continue
            found.add(base)
            for alias in node.names:   # `from redrobe.stages import common`: a submodule
                if alias.name != "*" and module_file(f"{base}.{alias.name}", src) is not None:
                    found.add(f"{base}.{alias.name}")
    return sorted(found)


def import_closure(modules: str | Iterable[str], src: Path, root: Path | None = None, *,
                   package: str = PACKAGE) -> list[str]:
    """Every file of ``package`` that importing ``modules`` runs, as POSIX paths relative to
    ``root`` (default: ``src``'s parent, the repository).

    ``src`` is the directory that holds the package. The files of ``modules`` come first,
    in the order given, then the others sorted. Modules with no file under ``src`` (and
    modules outside ``package``) are skipped.
    """
    names = [modules] if isinstance(modules, str) else list(modules)
    root = src.parent if root is None else root
    seen: dict[Path, None] = {}
    todo = list(reversed(names))
    while todo:
        name = todo.pop()
        if not _within(name, package):
            continue
        path = module_file(name, src)
        if path is None or path in seen:
            continue
        seen[path] = None
        parents = [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        todo.extend(parents + imported_modules(path, name, src, package))
    roots = [p for n in names if (p := module_file(n, src)) is not None and p in seen]
    ordered = list(dict.fromkeys(roots)) + sorted(set(seen) - set(roots))
    return [p.relative_to(root).as_posix() for p in ordered]


def _module_parts(path: str, src: str) -> tuple[str, ...]:
    """``src/redrobe/text/rules.py`` -> ``("redrobe", "text", "rules.py")``."""
    return PurePosixPath(path).relative_to(src).parts


def dvc_deps(paths: Sequence[str], src: str = "src", *, markers: Sequence[str] = MARKERS,
             per_module: Sequence[str] = PER_MODULE) -> list[str]:
    """A closure (:func:`import_closure`) as ``dvc.yaml`` lists code deps, in order, once each:
    files of :data:`PER_MODULE` packages and top-level modules as themselves, files of any
    other subpackage as the subpackage's folder, :data:`MARKERS` left out.

    ``src``: the source directory the paths start with, relative to the repository.
    """
    marker_files = {"/".join([src, *m.split("."), "__init__.py"]) for m in markers}
    out: dict[str, None] = {}
    for path in paths:
        if path in marker_files:
            continue
        parts = _module_parts(path, src)
        if len(parts) > 2 and ".".join(parts[:2]) not in per_module:
            path = "/".join([src, *parts[:2]])
        out[path] = None
    return list(out)


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether DVC deps ``deps`` include file ``path``: itself, or a folder above it."""
    file = PurePosixPath(path)
    return any(file == PurePosixPath(d) or PurePosixPath(d) in file.parents for d in deps)


def uncovered(paths: Iterable[str], deps: Iterable[str], src: str = "src", *,
              markers: Sequence[str] = MARKERS) -> list[str]:
    """The files of ``paths`` (a closure) that ``deps`` do not include, markers aside."""
    deps = list(deps)
    marker_files = {"/".join([src, *m.split("."), "__init__.py"]) for m in markers}
    return [p for p in paths if p not in marker_files and not covered(p, deps)]


__all__ = ["MARKERS", "PACKAGE", "PER_MODULE", "SOURCE", "covered", "dvc_deps",
           "import_closure", "imported_modules", "module_file", "uncovered"]
