"""Paper tables that ``redrobe reproduce TABLE`` runs (one module per table).

Each module ``redrobe.tables.<key>`` defines ``SPEC`` (:class:`redrobe.tables.spec.TableSpec`);
:mod:`redrobe.tables.runner` runs its variants and renders it.
"""

from __future__ import annotations

import importlib

from redrobe.tables.spec import TableSpec

#: CLI name -> module under redrobe.tables
TABLES = {
    "slimpajama": "slimpajama",
    "rule-removal": "rule_removal",
    "t5-repeats": "t5_repeats",
    "lora-rank": "lora_rank",
    "filter-ablation": "filter_ablation",
    "tokenizer-fertility": "tokenizer_fertility",
}


def get_spec(name: str) -> TableSpec:
    """The spec of table ``name``; KeyError naming the known tables otherwise."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
    return importlib.import_module(f"redrobe.tables.{TABLES[name]}").SPEC
