"""Per-slice ingest output: rolling raw / removed / quarantine shards and the ledger.

    dirs = OutputDirs(raw=Path("out/raw"), removed=Path("out/rm"), quarantine=Path("out/q"))
    sink = SliceSink(dirs, "books", shard_docs=1000, batch_size=256, max_chars=2_000_000)
    for doc in adapter_documents:
        sink.add(doc, origin="path/of/the/input")
    reports = sink.close()          # per partition: shards written, ledger, kept chars and bytes

Each tree gets ``<root>/<slice>/part-NNNNN.parquet`` with at most ``shard_docs``
documents per shard; removed shards add a ``reason`` column, quarantine shards an
``error`` column. Every tree holds at least ``part-00000`` (empty when nothing went
there), so the layout is the same whatever the data. Each shard remembers which
inputs fed it: those are the lineage edges the stage logs.

A slice routed by language (``router``: :class:`redrobe.sources.routing.Router`) is
written as partitions ``<root>/<slice>/<language>/part-NNNNN.parquet`` instead, one
report each: a kept document goes to its language's partition (with the ``language``
and ``language_score`` columns), a document removed for its language to that
language's partition of the removed tree, and one removed or quarantined before it had
a language to ``<slice>/und``. A partition has shards only in the trees documents
went to (an empty placeholder would be an empty language moving through every stage);
a routed slice that read nothing reports zeros under its own name, with no shards.

Before a document is routed, C0 control characters other than tab, LF and CR are
removed from its text (``text.normalize.strip_control_chars``) and counted in the
report (``control_chars``); a quarantined record keeps its text as read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from redrobe.accounting import Ledger, SliceCounts
from redrobe.documents import Document, ShardWriter, Status, partition_name, shard_path
from redrobe.sources.base import route
from redrobe.sources.routing import LANGUAGE_COLUMNS, UNDETERMINED, Router
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
    """What one partition (a slice, or ``<slice>/<language>``) produced (picklable,
    returned by worker processes)."""

    slice: str
    ledger: Ledger
    raw: list[ShardRecord]
    removed: list[ShardRecord]
    quarantine: list[ShardRecord]
    kept_bytes: int = 0
    input_digests: dict[str, str] = field(default_factory=dict)
    control_chars: int = 0        # C0 control characters removed from the texts
    routed: bool = False          # a language partition: no empty placeholder shards


class RollingShards:
    """Write one partition's documents to consecutive shards of at most ``shard_docs`` each."""

    def __init__(self, root: Path, partition: str, shard_docs: int, batch_size: int,
                 extra_columns: tuple[str, ...] = ()) -> None:
        self.root, self.slice = location(root), partition
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

    def close(self, placeholder: bool = True) -> list[ShardRecord]:
        """Finish the open shard; write an empty ``part-00000`` if nothing came (unless
        ``placeholder`` is False: then nothing is written)."""
        if self._writer is None and not self.shards and placeholder:
            self._roll()
        self._finish()
        return self.shards


class PartitionSink:
    """One partition's three trees, ledger and kept bytes (a slice, or ``<slice>/<lang>``)."""

    def __init__(self, dirs: OutputDirs, partition: str, shard_docs: int, batch_size: int,
                 routed: bool = False) -> None:
        self.partition, self.routed = partition, routed
        self.ledger = Ledger()
        # a partition with no documents still shows (with zeros) in the metrics
        self.ledger.slices.setdefault(partition, SliceCounts())
        self.kept_bytes = 0
        self.control_chars = 0
        language = LANGUAGE_COLUMNS if routed else ()
        self._raw = RollingShards(dirs.raw, partition, shard_docs, batch_size, language)
        self._removed = RollingShards(dirs.removed, partition, shard_docs, batch_size,
                                      ("reason", *language))
        self._quarantine = RollingShards(dirs.quarantine, partition, shard_docs, batch_size,
                                         ("error",))

    def write(self, fate: Status, doc: Document, origin: str, chars_in: int) -> None:
        """Count one document (``chars_in``: its length as read) and write it to its tree."""
        self.ledger.seen(self.partition, chars_in)
        if fate == Status.KEPT:
            self.ledger.kept(self.partition, len(doc.text))
            self.kept_bytes += len(doc.text.encode("utf-8"))
            self._raw.write(doc, origin)
        elif fate == Status.REMOVED:
            self.ledger.removed(self.partition, doc.extra["reason"])
            self._removed.write(doc, origin)
        else:
            self.ledger.quarantined(self.partition)
            self._quarantine.write(doc, origin)

    def close(self, input_digests: dict[str, str]) -> SliceReport:
        placeholder = not self.routed
        return SliceReport(self.partition, self.ledger, self._raw.close(placeholder),
                           self._removed.close(placeholder), self._quarantine.close(placeholder),
                           self.kept_bytes, dict(input_digests), self.control_chars, self.routed)


class SliceSink:
    """Route one slice's documents to kept / removed / quarantined shards and count them,
    per language partition when the slice is routed (``router``)."""

    def __init__(self, dirs: OutputDirs, slice_name: str, shard_docs: int, batch_size: int,
                 max_chars: int, router: Router | None = None) -> None:
        self.dirs, self.slice, self.max_chars, self.router = dirs, slice_name, max_chars, router
        self.shard_docs, self.batch_size = shard_docs, batch_size
        self.kept = 0
        self.input_digests: dict[str, str] = {}
        self._partitions: dict[str, PartitionSink] = {}
        if router is None:   # an unrouted slice is one partition, its trees always written
            self._partition(slice_name)

    def _partition(self, name: str) -> PartitionSink:
        if name not in self._partitions:
            self._partitions[name] = PartitionSink(self.dirs, name, self.shard_docs,
                                                   self.batch_size, routed=self.router is not None)
        return self._partitions[name]

    def add(self, doc: Document, origin: str) -> Status:
        """Count and write one document; return its fate (a :class:`Status`)."""
        chars_in, control_chars = len(doc.text), 0
        if "error" not in doc.extra:
            text, control_chars = strip_control_chars(doc.text)
            doc = doc.with_text(text) if control_chars else doc
        fate, doc = route(doc, self.max_chars)
        partition = self.slice
        if self.router is not None:
            language = UNDETERMINED
            if fate == Status.KEPT:
                language, doc = self.router.route(doc)
                fate = Status.REMOVED if "reason" in doc.extra else Status.KEPT
            partition = partition_name(self.slice, language)
        sink = self._partition(partition)
        sink.control_chars += control_chars
        sink.write(fate, doc, origin, chars_in)
        self.kept += fate == Status.KEPT
        return fate

    def close(self) -> list[SliceReport]:
        """One report per partition in name order; a routed slice that read nothing
        reports zeros under its own name (no shards), so it still shows in the metrics."""
        if not self._partitions:
            self._partitions[self.slice] = PartitionSink(self.dirs, self.slice, self.shard_docs,
                                                         self.batch_size, routed=True)
        return [self._partitions[name].close(self.input_digests) for name in sorted(self._partitions)]
