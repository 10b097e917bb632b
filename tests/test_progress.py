"""The progress reporter: plain lines on a clock, live redraws, summaries, map in waves."""

import io
import json
from types import SimpleNamespace

import pytest
import yaml

from redrobe.accounting import Ledger
from redrobe.config import Params, as_dict
from redrobe.documents import Document, ShardWriter, count_documents, shard_path
from redrobe.parallel import LocalExecutor
from redrobe.progress import (
    Progress,
    countable_total,
    documents_seen,
    format_duration,
    map_tracked,
    training_steps,
)
from redrobe.stages import clean


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plain(clock, **kwargs):
    stream = io.StringIO()
    return Progress(stream=stream, clock=clock, **kwargs), stream


def test_plain_lines_every_interval_with_rate_and_eta():
    clock = Clock()
    progress, out = _plain(clock, name="clean", total=5, items_total=2000, interval=5.0)
    clock.now += 2.0
    progress.update(units=1, items=400)          # 2 s < interval: nothing yet
    assert out.getvalue() == ""
    clock.now += 8.0
    progress.update(units=2, items=800)          # 10 s: 1,200 docs at 120 docs/s
    assert out.getvalue() == "clean: shard 3/5, 1,200/2,000 docs, 120.0 docs/s, ETA 0:00:07\n"
    clock.now += 1.0
    progress.update(units=1, items=400)          # 1 s after the last line: quiet
    assert out.getvalue().count("\n") == 1


def test_eta_from_units_when_item_total_unknown():
    clock = Clock()
    progress, out = _plain(clock, name="ingest", total=4, unit="slice", interval=0.0)
    clock.now += 10.0
    progress.update(units=1, items=50)
    assert out.getvalue() == "ingest: slice 1/4, 50 docs, 5.0 docs/s, ETA 0:00:30\n"


def test_steps_with_sticky_status_and_no_items():
    clock = Clock()
    progress, out = _plain(clock, name="pretrain", total=200, unit="step", items=None,
                           interval=5.0)
    for step in range(1, 41):
        clock.now += 0.25
        status = {"val_loss": 6.5} if step == 10 else {}
        progress.update(units=1, loss=8.0 - step * 0.05, **status)
    lines = out.getvalue().splitlines()
    assert lines == [
        "pretrain: step 20/200, 4.0 steps/s, loss 7, val_loss 6.5, ETA 0:00:45",
        "pretrain: step 40/200, 4.0 steps/s, loss 6, val_loss 6.5, ETA 0:00:40",
    ]


def test_unknown_totals_and_summary():
    clock = Clock()
    progress, out = _plain(clock, name="ingest", interval=1.0)
    with progress:
        clock.now += 3.0
        progress.update(items=1234)
        clock.now += 1.0
    assert out.getvalue().splitlines() == [
        "ingest: 0 shards, 1,234 docs, 411.3 docs/s",
        "ingest: done, 0 shards, 1,234 docs in 0:00:04 (308.5 docs/s)",
    ]


def test_summary_says_stopped_after_an_error_and_close_is_idempotent():
    clock = Clock()
    progress, out = _plain(clock, name="dedup", total=3)
    with pytest.raises(RuntimeError), progress:
        clock.now += 2.0
        progress.update(units=1, items=10)
        raise RuntimeError("boom")
    progress.close()
    assert out.getvalue() == "dedup: stopped, 1/3 shards, 10 docs in 0:00:02 (5.0 docs/s)\n"


def test_live_mode_redraws_one_line_with_a_bar():
    clock = Clock()
    out = io.StringIO()
    progress = Progress("bucket", total=4, items=None, stream=out, live=True, refresh=0.5,
                        clock=clock)
    clock.now += 1.0
    progress.update(units=2)
    clock.now += 0.1
    progress.update(units=1)                     # within refresh: not drawn
    clock.now += 1.0
    progress.update(units=1)
    progress.close()
    text = out.getvalue()
    assert "\n" not in text[:-1] and text.endswith("\n")
    frames = text.split("\r")[1:]
    assert frames[0] == "bucket [##########----------] shard 2/4, 2.0 shards/s, ETA 0:00:01"
    assert frames[1].startswith("bucket [####################] shard 4/4, ")
    assert frames[2].startswith("bucket: done, 4/4 shards in 0:00:02")
    assert len(frames[2].rstrip("\n")) >= len(frames[1])  # padded over the longer bar line


def test_track_counts_each_element_once_it_is_done():
    clock = Clock()
    progress, _ = _plain(clock, name="quality", total=3)
    seen = []
    for n in progress.track([5, 7, 9], items=lambda n: n):
        seen.append((n, progress.units, progress.items))
    assert seen == [(5, 0, 0), (7, 1, 5), (9, 2, 12)]
    assert (progress.units, progress.items) == (3, 21)


def test_no_stream_is_silent():
    progress = Progress("x", total=1, interval=0.0, clock=Clock())
    progress.update(units=1)
    progress.close()
    assert progress.units == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_map_tracked_keeps_task_order_and_counts_every_result(workers):
    clock = Clock()
    progress, _ = _plain(clock, name="map", total=5)
    results = map_tracked(LocalExecutor(workers), abs, [-1, -2, -3, -4, -5], progress,
                          items=lambda r: r)
    assert results == [1, 2, 3, 4, 5]
    assert (progress.units, progress.items) == (5, 15)


def test_map_tracked_reports_each_task_as_it_finishes():
    class Reversed(LocalExecutor):
        """Finishes tasks last-first, to show results are put back in task order."""

        def as_completed(self, fn, tasks):
            return ((i, fn(tasks[i])) for i in reversed(range(len(tasks))))

    progress, _ = _plain(Clock(), name="map", total=3)
    seen = []
    results = map_tracked(Reversed(1), abs, [-3, 4, -5], progress,
                          items=lambda r: seen.append(r) or r)
    assert results == [3, 4, 5]
    assert seen == [5, 4, 3] and (progress.units, progress.items) == (3, 12)


def test_format_duration():
    assert format_duration(4.4) == "0:00:04"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(-1) == "0:00:00"


def test_training_steps_reports_tokens_loss_and_sticky_val_loss():
    clock = Clock()
    progress, out = _plain(clock, name="lora", total=3, unit="step", items="tokens", interval=0.0)
    logged = []
    on_step = training_steps(progress, logged.append)
    records = [SimpleNamespace(step=1, tokens=128, loss=6.0, val_loss=None),
               SimpleNamespace(step=2, tokens=256, loss=5.5, val_loss=5.75),
               SimpleNamespace(step=3, tokens=384, loss=5.25, val_loss=None)]
    for record in records:
        clock.now += 1.0
        on_step(record)
    assert logged == records
    assert out.getvalue().splitlines()[-1] == (
        "lora: step 3/3, 384 tokens, 128.0 tokens/s, loss 5.25, val_loss 5.75, ETA 0:00:00")


def test_documents_seen_and_countable_total(tmp_path):
    ledger = Ledger()
    for name in ("a", "a", "b"):
        ledger.seen(name)
    assert documents_seen(ledger) == 3
    good = shard_path(tmp_path, "c4", 0)
    with ShardWriter(good, 8) as writer:
        writer.write_all([Document(f"d{i}", "text", "c4") for i in range(3)])
    assert countable_total(count_documents, [good, good]) == 6
    bad = shard_path(tmp_path, "c4", 1)
    bad.write_bytes(b"not parquet")
    assert countable_total(count_documents, [good, bad]) is None
    assert countable_total(count_documents, [tmp_path / "missing.parquet"]) is None


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stage_reports_its_shards_and_documents(tmp_path, monkeypatch, capsys, workers):
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    for index in range(3):
        with ShardWriter(shard_path(tmp_path / "raw", "books", index), 8) as writer:
            writer.write_all([Document(f"b{index}-{i}", "A line of verse.", "books")
                              for i in range(index + 1)])
    params = as_dict(Params())
    params["shared"]["workers"] = workers
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code = clean.main(["--params", str(tmp_path / "params.yaml"), "--input", str(tmp_path / "raw"),
                       "--output", str(tmp_path / "clean"), "--removed", str(tmp_path / "removed"),
                       "--quarantine", str(tmp_path / "quarantine"),
                       "--metrics", str(tmp_path / "clean.json")])
    assert code == 0
    assert json.loads((tmp_path / "clean.json").read_text())["accounting"]["total"]["in"] == 6
    err = capsys.readouterr().err  # not a terminal under pytest: plain lines
    assert "\r" not in err
    assert "clean: done, 3/3 shards, 6 docs in " in err
