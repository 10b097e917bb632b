"""What a paper table is made of: its spec, its variants, the rendered table and claims.

A table module (``redrobe.tables.<name>``) defines one :class:`TableSpec`:

    SPEC = TableSpec(name="lora-rank", title=..., paper=..., differences=[...],
                     settings=LoraRankSettings, needs=("corpus", "tokenizer"),
                     variants=variants, run_variant=run_variant, build=build)

``variants(ctx)`` lists the runs the table needs (each a :class:`Variant` whose ``params``
DVC tracks, so only variants whose inputs changed run again); ``run_variant(variant,
ctx)`` runs one and returns a JSON-able result; ``build(results, ctx)`` turns the results
(variant name -> result) into a :class:`Table` with the paper's numbers beside ours and
each claim's verdict. :mod:`redrobe.tables.runner` drives the three, and
:mod:`redrobe.tables.render` writes Markdown and CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from redrobe.config import ConfigError, Params, build_section
from redrobe.curriculum.split import is_validation, thresholds_for
from redrobe.documents import Document, list_shards, read_documents
from redrobe.tokenizer import document_encoder

#: shared inputs a table may need (the runner prepares them once per scale)
CORPUS, TOKENIZER = "corpus", "tokenizer"
#: under a table's work directory: one directory per variant for files later variants read
ARTIFACTS = "artifacts"


def pct(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``, rounded to 2 decimals; None when ``whole`` is 0."""
    return round(100 * part / whole, 2) if whole else None


@dataclass(frozen=True)
class Variant:
    """One run a table needs: ``name`` is a short slug; ``params`` is JSON-able and is all
    the run reads besides the shared inputs (DVC tracks it as the variant's params)."""

    name: str
    params: dict[str, Any]
    after: tuple[str, ...] = ()   # variants whose artifacts this one reads (run first)


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of the paper, checked on our numbers (None: could not be checked)."""

    text: str
    holds: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "holds", False: "does not hold", None: "not checked"}[self.holds]


@dataclass(frozen=True)
class Table:
    """A rendered table: ``columns`` name the keys of each row (in order)."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    claims: list[Claim] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # sampling, what differs, scale


@dataclass
class Context:
    """What a table's functions see: resolved params, its settings and the shared inputs."""

    params: Params
    settings: Any              # the table's settings dataclass, built from params.tables.<name>
    scale: str
    work: Path                 # scratch directory of this table at this scale
    corpus: Path | None = None         # raw shards (<corpus>/<slice>/part-*.parquet)
    tokenizer_path: Path | None = None  # tokenizer.json trained on the corpus' training split

    def artifacts(self, variant: str) -> Path:
        """The directory where variant ``variant`` keeps files other variants read."""
        return self.work / ARTIFACTS / variant

    @property
    def seed(self) -> int:
        return self.params.shared.seed

    def documents(self, slice_name: str | None = None) -> Iterator[Document]:
        """Every corpus document (``doc.source`` is its slice), in shard order."""
        if self.corpus is None:
            raise RuntimeError("this table did not declare needs=('corpus',)")
        for shard in list_shards(self.corpus, slice_name):
            yield from read_documents(shard, self.params.shared.batch_docs)

    @cached_property
    def _thresholds(self) -> dict[str, float]:
        ids: dict[str, list[str]] = {}
        for doc in self.documents():
            ids.setdefault(doc.source, []).append(doc.id)
        shared = self.params.shared
        return thresholds_for(ids, shared.val_fraction, shared.seed, shared.min_val_docs)

    def is_validation(self, doc: Document) -> bool:
        """The pipeline's held-out split (by a hash of the id, per slice)."""
        return is_validation(doc.id, self._thresholds.get(doc.source, 0.0), self.seed)

    @cached_property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` trained on the corpus (needs=('tokenizer',))."""
        if self.tokenizer_path is None:
            raise RuntimeError("this table did not declare needs=('tokenizer',)")
        return document_encoder(self.tokenizer_path)


@dataclass(frozen=True)
class TableSpec:
    name: str                  # the CLI name, e.g. "t5-repeats"
    title: str
    paper: str                 # the citation of the table we reproduce
    differences: list[str]     # what differs from the paper's setup (printed with the table)
    settings: type             # dataclass of this table's params (params.tables.<key>)
    variants: Callable[[Context], Sequence[Variant]]
    run_variant: Callable[[Variant, Context], dict[str, Any]]
    build: Callable[[dict[str, dict[str, Any]], Context], Table]
    needs: tuple[str, ...] = (CORPUS, TOKENIZER)

    @property
    def key(self) -> str:
        """The params key: ``t5-repeats`` -> ``params.tables.t5_repeats``."""
        return self.name.replace("-", "_")

    def load_settings(self, params: Params) -> Any:
        """The table's settings from ``params.tables.<key>``; unknown keys name the params key."""
        raw = params.tables.get(self.key, {})
        return build_section(self.settings, raw, f"tables.{self.key}")


__all__ = ["CORPUS", "TOKENIZER", "Claim", "ConfigError", "Context", "Table", "TableSpec",
           "Variant"]
