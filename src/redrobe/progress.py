"""Progress feedback for long stages: a live bar on a terminal, plain log lines elsewhere.

The stage glue builds one reporter per phase and decides where it writes (``stream``)
and how (``live``: redraw one line in place, for a terminal; otherwise log lines that
read well in ``dvc repro`` output captured by Prefect or CI):

    progress = Progress("clean", total=len(shards), unit="shard", items="docs",
                        items_total=n_docs, stream=sys.stderr, live=sys.stderr.isatty())
    with progress:
        for shard in shards:
            ...
            progress.update(units=1, items=docs_in_shard)

Plain mode writes a line at most every ``interval`` seconds and one when closed:

    clean: shard 3/5, 1,200/2,000 docs, 12.3 docs/s, ETA 0:01:05
    clean: done, 5/5 shards, 2,000 docs in 0:02:43 (12.3 docs/s)

Training reports steps with sticky status fields (the last value stays shown):

    progress.update(units=1, loss=5.12)   # pretrain: step 40/200, 1.2 steps/s, loss 5.12, ETA 0:02:13

Rates are averages since the reporter was created; the ETA divides the remaining items
(or units, when the item total is unknown) by that rate. The clock is injectable, so
the output is deterministic under test. :func:`map_tracked` runs a shard map on a
:mod:`redrobe.parallel` executor and reports shards as they finish.
"""

from __future__ import annotations

import datetime
import time
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, TextIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BAR_WIDTH = 20


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` rounded to the second (``0:00:04``)."""
    return str(datetime.timedelta(seconds=max(0, round(seconds))))


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Progress:
    """Counts units of work (shards, slices, steps) and items (documents, tokens).

    ``total``/``items_total`` are the expected counts when known (they give the
    ``n/total`` display, the bar and the ETA). ``unit`` is singular ("shard"); ``items``
    is the plural item name ("docs") or None when only units are counted.
    """

    def __init__(self, name: str, total: int | None = None, *, unit: str = "shard",
                 items: str | None = "docs", items_total: int | None = None,
                 stream: TextIO | None = None, live: bool = False, interval: float = 5.0,
                 refresh: float = 0.2, clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.items_name, self.items_total = items, items_total
        self.stream, self.live = stream, live
        self.interval, self.refresh, self.clock = interval, refresh, clock
        self.units = 0
        self.items = 0
        self.status: dict[str, Any] = {}
        self.started = clock()
        self._last_write = self.started
        self._width = 0        # length of the line drawn in live mode, to blank it out
        self._closed = False

    # -- counting -------------------------------------------------------------------
    def update(self, units: int = 0, items: int = 0, **status: Any) -> None:
        """Add finished units and items; ``status`` fields (loss=...) replace earlier ones."""
        self.units += units
        self.items += items
        self.status.update(status)
        now = self.clock()
        if now - self._last_write >= (self.refresh if self.live else self.interval):
            self._write(self.line(now))
            self._last_write = now

    def track(self, iterable: Iterable[T], items: Callable[[T], int] | None = None) -> Iterator[T]:
        """Yield from ``iterable``, counting one unit (and ``items(x)``) once ``x`` is done."""
        for element in iterable:
            yield element
            self.update(units=1, items=items(element) if items else 0)

    def close(self, ok: bool = True) -> None:
        """Write the summary line (``done``, or ``stopped`` after a failure); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._write(self.summary(self.clock(), ok), end=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(ok=exc_type is None)

    # -- rendering ------------------------------------------------------------------
    def rate(self, now: float) -> float | None:
        """Items (or units, when no items are counted) per second since the start."""
        elapsed = now - self.started
        if elapsed <= 0:
            return None
        return (self.items if self.items_name else self.units) / elapsed

    def eta(self, now: float) -> float | None:
        """Seconds left, from the average rate so far; None when it cannot be known."""
        elapsed = now - self.started
        if self.items_name and self.items_total is not None and self.items > 0:
            return elapsed * (self.items_total - self.items) / self.items
        if self.total is not None and self.units > 0:
            return elapsed * (self.total - self.units) / self.units
        return None

    def fraction(self) -> float | None:
        if self.items_name and self.items_total:
            return min(1.0, self.items / self.items_total)
        if self.total:
            return min(1.0, self.units / self.total)
        return None

    def _counts(self) -> list[str]:
        if self.total is not None:
            parts = [f"{self.unit} {self.units:,}/{self.total:,}"]
        else:
            parts = [f"{self.units:,} {self.unit}s"]
        if self.items_name:
            total = f"/{self.items_total:,}" if self.items_total is not None else ""
            parts.append(f"{self.items:,}{total} {self.items_name}")
        return parts

    def _rate_text(self, now: float) -> list[str]:
        rate = self.rate(now)
        if rate is None:
            return []
        return [f"{rate:,.1f} {self.items_name or self.unit + 's'}/s"]

    def line(self, now: float) -> str:
        """The progress line: counts, rate, status fields and ETA (plus a bar when live)."""
        parts = self._counts() + self._rate_text(now)
        parts += [f"{k} {_format_value(v)}" for k, v in self.status.items()]
        eta = self.eta(now)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        text = f"{self.name}: " + ", ".join(parts)
        fraction = self.fraction()
        if self.live and fraction is not None:
            filled = int(fraction * BAR_WIDTH)
            text = f"{self.name} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] " + ", ".join(parts)
        return text

    def summary(self, now: float, ok: bool = True) -> str:
        done = "done" if ok else "stopped"
        units = (f"{self.units:,}/{self.total:,} {self.unit}s" if self.total is not None
                 else f"{self.units:,} {self.unit}s")
        items = f", {self.items:,} {self.items_name}" if self.items_name else ""
        rate = self.rate(now)
        rate_text = f" ({rate:,.1f} {self.items_name or self.unit + 's'}/s)" if rate else ""
        status = "".join(f", {k} {_format_value(v)}" for k, v in self.status.items())
        return (f"{self.name}: {done}, {units}{items}{status} in "
                f"{format_duration(now - self.started)}{rate_text}")

    def _write(self, text: str, end: bool = False) -> None:
        if self.stream is None:
            return
        if self.live:
            # Redraw in place; pad with spaces to blank out a longer previous line.
            pad = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{pad}" + ("\n" if end else ""))
            self._width = 0 if end else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def training_steps(progress: Progress, *also: Callable[[Any], None]) -> Callable[[Any], None]:
    """An ``on_step`` callback for :func:`redrobe.train.train` that reports each step.

    One unit per step, the step's tokens (records carry the cumulative count), the
    train loss and the latest validation loss; then each of ``also`` gets the record.
    """
    def on_step(record: Any) -> None:
        status = {"loss": record.loss}
        if record.val_loss is not None:
            status["val_loss"] = record.val_loss
        progress.update(units=1, items=record.tokens - progress.items, **status)
        for callback in also:
            callback(record)

    return on_step


def countable_total(count: Callable[[T], int], elements: Iterable[T]) -> int | None:
    """``sum(count(e))``, the expected items; None when an element cannot be counted.

    An unreadable input (``OSError``/``ValueError``, e.g. a corrupt Parquet footer)
    only loses the total: the stage reads it next and reports it with its own error.
    """
    try:
        return sum(count(e) for e in elements)
    except (OSError, ValueError):
        return None


def documents_seen(ledger: Any) -> int:
    """Documents a :class:`redrobe.accounting.Ledger` saw, over all slices (items to count)."""
    return sum(counts.docs_in for counts in ledger.slices.values())


class ShardMap(Protocol):
    """What :func:`map_tracked` needs of an executor (``redrobe.parallel.Executor``)."""

    def as_completed(self, fn: Callable[[Any], Any],
                     tasks: Sequence[Any]) -> Iterable[tuple[int, Any]]: ...


def map_tracked(executor: ShardMap, fn: Callable[[T], R], tasks: Sequence[T],
                progress: Progress, items: Callable[[R], int] | None = None) -> list[R]:
    """``executor.map(fn, tasks)`` (:mod:`redrobe.parallel`), reporting tasks as they finish.

    Every finished task is one unit plus ``items(result)``, counted as it arrives
    (completion order); the results come back in task order, as from ``executor.map``.
    """
    results: list[Any] = [None] * len(tasks)
    for index, result in executor.as_completed(fn, tasks):
        results[index] = result
        progress.update(units=1, items=items(result) if items else 0)
    return results
