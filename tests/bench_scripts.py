"""The benchmark scripts (benchmarks/<name>.py) as modules, for the tests that check them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str, module_name: str = "") -> ModuleType:
    """``benchmarks/<name>.py``, registered in ``sys.modules`` under ``module_name``
    (default ``name``; another name where ``name`` is taken, e.g. by an installed package)
    before it runs, as dataclasses and pickling need."""
    module_name = module_name or name
    spec = importlib.util.spec_from_file_location(module_name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
