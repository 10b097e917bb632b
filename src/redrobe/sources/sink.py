"""Per-slice ingest output: rolling raw / removed / quarantine shards and the ledger.

    dirs = OutputDirs(raw=Path("out/raw"), removed=Path("out/rm"), quarantine=Path("out/q"))
    sink = SliceSink(dirs, "books", shard_docs=1000, batch_size=256, max_chars=2_000_000)
    for doc in adapter_documents:
        sink.add(doc, origin="path/of/the/input")
    report = sink.close()           # shards written, ledger, kept chars and bytes

Each tree gets ``<root>/<slice>/part-NNNNN.parquet`` with at most ``shard_docs``
documents per shard; removed shards add a ``reason`` column, quarantine shards an
``error`` column. Every tree holds at least ``part-00000`` (empty when nothing went
there), so the layout is the same whatever the data. Each shard remembers which
inputs fed it: those are the lineage edges the stage logs.

Before a document is routed, C0 control characters other than tab, LF and CR are
removed from its text (``text.normalize.strip_control_chars``) and counted in the
report (``control_chars``); a quarantined record keeps its text as read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from redrobe.accounting import Ledger, SliceCounts
from redrobe.documents import Document, ShardWriter, Status, shard_path
from redrobe.sources.base import route
from redrobe.storage import location, relative
from redrobe.text.normalize import strip_control_chars


@dataclass(frozen=True)
class OutputDirs:
    """The three output trees of the ingest stage."""

    raw: Path
    removed: Path
    quarantine: Path


@dataclass(frozen=True)
class ShardRecord:
    """One written shard: path relative to its tree root, documents, inputs that fed it."""

    path: str
    docs: int
    inputs: tuple[str, ...]


@dataclass
class SliceReport:
    """What one slice produced (picklable, returned by worker processes)."""

    slice: str
    ledger: Ledger
    raw: list[ShardRecord]
    removed: list[ShardRecord]
    quarantine: list[ShardRecord]
    kept_bytes: int = 0
    input_digests: dict[str, str] = field(default_factory=dict)
    control_chars: int = 0        # C0 control characters removed from the texts


class RollingShards:
    """Write one slice's documents to consecutive shards of at most ``shard_docs`` each."""

    def __init__(self, root: Path, slice_name: str, shard_docs: int, batch_size: int,
                 extra_columns: tuple[str, ...] = ()) -> None:
        self.root, self.slice = location(root), slice_name
        self.shard_docs, self.batch_size = shard_docs, batch_size
        self.extra_columns = extra_columns
        self.shards: list[ShardRecord] = []
        self._writer: ShardWriter | None = None
        self._inputs: set[str] = set()

    def write(self, doc: Document, origin: str) -> None:
        if self._writer is None or self._writer.count >= self.shard_docs:
            self._roll()
        assert self._writer is not None
        self._writer.write(doc)
        self._inputs.add(origin)

    def _roll(self) -> None:
        self._finish()
        path = shard_path(self.root, self.slice, len(self.shards))
        self._writer = ShardWriter(path, self.batch_size, self.extra_columns)

    def _finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        rel = relative(self._writer.path, self.root).as_posix()
        self.shards.append(ShardRecord(rel, self._writer.count, tuple(sorted(self._inputs))))
        self._writer, self._inputs = None, set()

    def close(self) -> list[ShardRecord]:
        """Finish the open shard; write an empty ``part-00000`` if nothing came."""
        if self._writer is None and not self.shards:
            self._roll()
        self._finish()
        return self.shards


class SliceSink:
    """Route one slice's documents to kept / removed / quarantined shards and count them."""

    def __init__(self, dirs: OutputDirs, slice_name: str, shard_docs: int, batch_size: int,
                 max_chars: int) -> None:
        self.slice, self.max_chars = slice_name, max_chars
        self.ledger = Ledger()
        # a slice with no documents still shows (with zeros) in the metrics
        self.ledger.slices.setdefault(slice_name, SliceCounts())
        self.kept = 0
        self.kept_bytes = 0
        self.control_chars = 0
        self.input_digests: dict[str, str] = {}
        self._raw = RollingShards(dirs.raw, slice_name, shard_docs, batch_size)
        self._removed = RollingShards(dirs.removed, slice_name, shard_docs, batch_size, ("reason",))
        self._quarantine = RollingShards(dirs.quarantine, slice_name, shard_docs, batch_size,
                                         ("error",))

    def add(self, doc: Document, origin: str) -> Status:
        """Count and write one document; return its fate (a :class:`Status`)."""
        self.ledger.seen(self.slice, len(doc.text))
        if "error" not in doc.extra:
            text, removed = strip_control_chars(doc.text)
            self.control_chars += removed
            doc = doc.with_text(text) if removed else doc
        fate, doc = route(doc, self.max_chars)
        if fate == Status.KEPT:
            self.ledger.kept(self.slice, len(doc.text))
            self.kept += 1
            self.kept_bytes += len(doc.text.encode("utf-8"))
            self._raw.write(doc, origin)
        elif fate == Status.REMOVED:
            self.ledger.removed(self.slice, doc.extra["reason"])
            self._removed.write(doc, origin)
        else:
            self.ledger.quarantined(self.slice)
            self._quarantine.write(doc, origin)
        return fate

    def close(self) -> SliceReport:
        return SliceReport(self.slice, self.ledger, self._raw.close(), self._removed.close(),
                           self._quarantine.close(), self.kept_bytes, dict(self.input_digests),
                           self.control_chars)
