"""The quality stage's per-document checks as partitioned tasks: no process holds the corpus.

Great Expectations still evaluates and reports every suite (:mod:`redrobe.quality.suite`),
but on a small *witness* frame that the driver builds from per-shard aggregates instead
of on a frame of every document:

1. **summarize**, one task per shard: reads the shard ``batch_docs`` documents at a
   time into the per-document rows the one-process summary made
   (:func:`~redrobe.quality.suite.document_batches`) and returns, for each row-level
   check, the number of unexpected rows and the first :data:`EXAMPLES` unexpected
   values (GE's ``partial_unexpected_list`` holds that many), null counts, documents
   and characters per source and the shard's schema row. It writes the shard's ids as
   (id hash, row, id) records partitioned by the hash (:mod:`redrobe.partfile`).
2. **unique**, one task per id partition (at most :data:`PARTITION_IDS` ids expected
   each): the ids that occur more than once, the number of rows they cover, and the
   first EXAMPLES of those rows in corpus order (shard, row).
3. the driver merges the results (examples in corpus order) and builds the witness
   (:func:`witness_frame`): each check's examples in corpus order, each on a row whose
   other columns are neutral (a fresh id, no source, an in-range length, no signals),
   then one row per slice present and, for a duplicate example whose twin lies past
   the first EXAMPLES, the twin. GE's verdict and partial list on the witness are
   those it gives on the whole corpus; its counts (rows, missing, unexpected) are
   replaced by the corpus totals (:meth:`StageSummary.totals`) before the result is
   summarized and rendered.

The driver holds per-shard results only (a few KB each: EXAMPLES values per check).
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from redrobe.config import Quality
from redrobe.partfile import join, partition_of, read_partition, record_size, write_partitioned
from redrobe.quality.suite import SIGNALS_COLUMN, CheckKey, Totals, document_batches, shard_schema

#: unexpected values kept per check: GE's partial_unexpected_count (result_format SUMMARY)
EXAMPLES = 20
#: ids expected per uniqueness partition: bounds one unique task's memory
PARTITION_IDS = 1_000_000
#: bytes of an id record before the id itself: hash, row, id length
_FIXED = 8 + 8 + 8
_NULL_ID, _BETWEEN, _IN_SET, _UNIQUE = ("expect_column_values_to_not_be_null",
                                        "expect_column_values_to_be_between",
                                        "expect_column_values_to_be_in_set",
                                        "expect_column_values_to_be_unique")
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


@dataclass(frozen=True)
class Checks:
    """What the per-document checks test (from ``params.quality`` and the slices)."""
    min_chars: int
    max_chars: int
    slices: tuple[str, ...]
    signals: tuple[tuple[str, float, float], ...]   # (name, low, high)
    extra_columns: tuple[str, ...]
    batch_docs: int

    @classmethod
    def of(cls, q: Quality, slices: Sequence[str], batch_docs: int) -> Checks:
        return cls(q.min_chars, q.max_chars, tuple(slices),
                   tuple((s, float(lo), float(hi)) for s, (lo, hi) in q.signal_ranges.items()),
                   tuple(q.extra_columns), batch_docs)


@dataclass
class Failures:
    """Unexpected rows of one check: their number and the first EXAMPLES values."""
    count: int = 0
    examples: list[Any] = field(default_factory=list)

    def add(self, values: pd.Series) -> None:
        self.count += len(values)
        self.examples.extend(values.head(EXAMPLES - len(self.examples)).tolist())

    def merge(self, other: Failures) -> None:
        """Append a later shard's failures (corpus order)."""
        self.count += other.count
        self.examples.extend(other.examples[:EXAMPLES - len(self.examples)])


@dataclass
class ShardSummary:
    """What one summarize task returns for its shard."""
    schema: dict[str, Any]
    rows: int
    has_signals: bool
    failures: dict[str, Failures]        # check name (id_null, chars, source, <signal>)
    missing: Counter[str]                # null values per column
    sources: Counter[Any]                # documents per source value (None included)
    chars: Counter[Any]                  # characters per source value


@dataclass(frozen=True)
class SummarizeTask:
    """Summarize shard number ``shard`` at ``path``; its ids go to ``ids`` in ``parts``."""
    path: str
    shard: int
    checks: Checks
    ids: str
    parts: int


@dataclass(frozen=True)
class UniqueTask:
    """Find duplicate ids in partition ``part`` of the id files of ``shards`` shards."""
    work: str
    shards: int
    part: int


def ids_url(work: str, shard: int) -> str:
    return join(work, "ids", f"{shard:06d}.part")


# ------------------------------------------------------------------ summarize


def _check_batch(frame: pd.DataFrame, c: Checks, out: ShardSummary) -> None:
    """Count and sample the unexpected rows of one batch, as GE's column-map checks do."""
    f = out.failures
    f["id_null"].add(frame["id"][frame["id"].isna()])
    low = max(c.min_chars, 1)
    f["chars"].add(frame["chars"][(frame["chars"] < low) | (frame["chars"] > c.max_chars)])
    source = frame["source"]
    f["source"].add(source[source.notna() & ~source.isin(list(c.slices))])
    for name, lo, hi in c.signals:
        if name in frame:
            values = frame[name]
            f[name].add(values[values.notna() & ((values < lo) | (values > hi))])
    out.missing.update({col: int(frame[col].isna().sum()) for col in frame.columns})
    out.sources.update(source.tolist())
    for value, chars in zip(source.tolist(), frame["chars"].tolist()):
        out.chars[value] += chars


def _encode_id(value: Any) -> bytes:
    """An id as bytes that are equal exactly when the ids are (strings as UTF-8)."""
    return b"s" + value.encode() if isinstance(value, str) else b"p" + pickle.dumps(value)


def _decode_id(raw: bytes) -> Any:
    return raw[1:].decode() if raw[:1] == b"s" else pickle.loads(raw[1:])


def _ids_dtype(width: int) -> np.dtype:
    return np.dtype([("h", "<u8"), ("row", "<i8"), ("n", "<i8"), ("id", f"S{max(width, 1)}")])


def _write_ids(url: str, ids: list[bytes], rows: list[int], parts: int) -> None:
    """(hash, row, length, id) records of the shard's non-null ids, partitioned by hash."""
    records = np.zeros(len(ids), _ids_dtype(max((len(i) for i in ids), default=1)))
    records["h"] = [int.from_bytes(hashlib.blake2b(i, digest_size=8).digest(), "little") for i in ids]
    records["row"] = rows
    records["n"] = [len(i) for i in ids]
    records["id"] = ids
    write_partitioned(url, records, partition_of(records["h"], parts), parts)


def summarize_task(task: SummarizeTask) -> ShardSummary:
    """Step 1 for one shard (see the module docstring)."""
    c = task.checks
    names = [s for s, _, _ in c.signals]
    pf, schema = shard_schema(task.path, c.extra_columns)
    has_signals = SIGNALS_COLUMN in pf.schema_arrow.names and bool(names)
    out = ShardSummary(schema, 0, has_signals,
                       {k: Failures() for k in ("id_null", "chars", "source", *names)},
                       Counter(), Counter(), Counter())
    ids: list[bytes] = []
    rows: list[int] = []
    for frame in document_batches(pf, c.batch_docs, names):
        _check_batch(frame, c, out)
        for row, value in enumerate(frame["id"].tolist(), out.rows):
            if not pd.isna(value):
                ids.append(_encode_id(value))
                rows.append(row)
        out.rows += len(frame)
    if not has_signals:   # no signal column: every signal of every row is missing
        out.missing.update({s: out.rows for s in names})
    _write_ids(task.ids, ids, rows, task.parts)
    return out


# ------------------------------------------------------------------ unique


def unique_task(task: UniqueTask) -> tuple[int, list[tuple[int, int, Any]]]:
    """Step 2 for one partition: (rows whose id repeats, first EXAMPLES (shard, row, id))."""
    hashes: list[np.ndarray] = []
    where: list[Any] = []
    ids: list[Any] = []
    for shard in range(task.shards):
        url = ids_url(task.work, shard)
        records = read_partition(url, _ids_dtype(record_size(url) - _FIXED), task.part)
        hashes.append(records["h"])
        where.extend((shard, int(r)) for r in records["row"])
        ids.extend(raw.ljust(int(n), b"\0") for raw, n in zip(records["id"].tolist(), records["n"]))
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    values, counts = np.unique(h, return_counts=True)
    # only rows sharing a hash can repeat an id: compare their exact bytes
    candidates = np.flatnonzero(np.isin(h, values[counts > 1]))
    seen = Counter(ids[i] for i in candidates)
    dups = sorted(where[i] + (ids[i],) for i in candidates if seen[ids[i]] > 1)
    return len(dups), [(s, r, _decode_id(raw)) for s, r, raw in dups[:EXAMPLES]]


# ------------------------------------------------------------------ merge


@dataclass
class StageSummary:
    """One stage output's merged aggregates: what its suites need, per shard at most."""
    shards: list[dict[str, Any]]
    rows: int
    has_signals: bool
    failures: dict[str, Failures]
    missing: Counter[str]
    sources: Counter[Any]
    chars: Counter[Any]
    per_shard: list[tuple[int, int]] = field(default_factory=list)   # (documents, characters)

    @classmethod
    def merge(cls, parts: Sequence[ShardSummary], unique: Sequence[tuple[int, list]]) -> StageSummary:
        merged = cls([], 0, False, {}, Counter(), Counter(), Counter())
        for p in parts:
            merged.shards.append(p.schema)
            merged.per_shard.append((p.rows, sum(p.chars.values())))
            merged.rows += p.rows
            merged.has_signals |= p.has_signals
            for name, f in p.failures.items():
                merged.failures.setdefault(name, Failures()).merge(f)
            merged.missing.update(p.missing)
            merged.sources.update(p.sources)
            merged.chars.update(p.chars)
        examples = sorted(e for _, found in unique for e in found)[:EXAMPLES]
        merged.failures["id_unique"] = Failures(sum(n for n, _ in unique), [v for _, _, v in examples])
        return merged

    def per_slice(self) -> dict[Any, int]:
        """Documents per source value (missing sources left out, as groupby does)."""
        return {k: n for k, n in self.sources.items() if not _missing(k)}

    def totals(self, c: Checks) -> dict[CheckKey, Totals]:
        """Corpus (rows, rows not missing, unexpected) of every row-level check."""
        def of(column: str, failures: str) -> Totals:
            return self.rows, self.rows - self.missing[column], self.failures[failures].count
        found = {(_NULL_ID, "id"): of("id", "id_null"), (_UNIQUE, "id"): of("id", "id_unique"),
                 (_BETWEEN, "chars"): of("chars", "chars"), (_IN_SET, "source"): of("source", "source")}
        if self.has_signals:
            found.update({(_BETWEEN, s): of(s, s) for s, _, _ in c.signals})
        return found


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def summarize_stage(paths: Sequence[str], checks: Checks, work: str, mapper: Mapper,
                    rows_hint: int = 0) -> StageSummary:
    """Steps 1-2 over the shards ``paths`` (corpus order), scratch files under ``work``."""
    parts = max(1, math.ceil(rows_hint / PARTITION_IDS))
    shards = mapper(summarize_task, [SummarizeTask(str(p), i, checks, ids_url(work, i), parts)
                                     for i, p in enumerate(paths)])
    unique = mapper(unique_task, [UniqueTask(work, len(paths), p) for p in range(parts)])
    return StageSummary.merge(shards, unique)


# ------------------------------------------------------------------ witness


def witness_frame(s: StageSummary, c: Checks) -> pd.DataFrame:
    """The rows GE validates in place of the corpus (see the module docstring)."""
    names = [n for n, _, _ in c.signals] if s.has_signals else []
    dup_ids = s.failures["id_unique"].examples
    taken = {v for v in dup_ids if isinstance(v, str)}
    fresh = (f"witness-{k}" for k in range(10**9) if f"witness-{k}" not in taken)
    rows: list[dict[str, Any]] = []

    def add(**values: Any) -> None:
        row = {"id": next(fresh), "source": None, "chars": max(c.min_chars, 1)}
        rows.append({**row, **{n: math.nan for n in names}, **values})

    for value in s.failures["id_null"].examples:
        add(id=value)
    for value in dup_ids:
        add(id=value)
    for value in s.failures["chars"].examples:
        add(chars=value)
    for value in s.failures["source"].examples:
        add(source=value)
    for name in names:
        for value in s.failures[name].examples:
            add(**{name: value})
    for name in c.slices:
        if s.sources.get(name):
            add(source=name)
    once = Counter(dup_ids)
    for value in dup_ids:   # a twin past the examples, so GE sees the id repeat
        if once[value] == 1:
            add(id=value)
    return _typed(rows, names)


def _typed(rows: list[dict[str, Any]], signals: list[str]) -> pd.DataFrame:
    """The witness with the one-process frame's column types (ids and sources objects)."""
    column = {k: [r[k] for r in rows] for k in ("id", "source", "chars", *signals)}
    frame = pd.DataFrame({"id": pd.Series(column["id"], dtype=object),
                          "source": pd.Series(column["source"], dtype=object),
                          "chars": pd.Series(column["chars"], dtype="int64")})
    for name in signals:
        frame[name] = pd.Series(column[name], dtype="float64")
    return frame
