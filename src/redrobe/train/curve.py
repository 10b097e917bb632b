"""The loss curve CSV that DVC plots (``x: step``, ``y: loss``) and the report reads.

Columns: ``step,loss,lr,tokens,tokens_per_s,val_loss``; ``val_loss`` is empty on
steps without an evaluation. Written atomically:

    write_curve("data/metrics/pretrain_curve.csv", result.records)
"""

from __future__ import annotations

import csv
import os
from typing import Iterable

from redrobe.documents import atomic_file
from redrobe.train.loop import StepRecord

COLUMNS = ("step", "loss", "lr", "tokens", "tokens_per_s", "val_loss")


def curve_row(record: StepRecord) -> list[str]:
    val = "" if record.val_loss is None else f"{record.val_loss:.6f}"
    return [str(record.step), f"{record.loss:.6f}", f"{record.lr:.6g}", str(record.tokens),
            f"{record.tokens_per_s:.1f}", val]


def write_curve(path: str | os.PathLike, records: Iterable[StepRecord]) -> None:
    with atomic_file(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(curve_row(r) for r in records)
