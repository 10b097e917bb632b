"""Training checkpoints: save atomically, keep the last K, resume from the newest valid one.

A checkpoint is one ``torch.save`` file per step, ``<dir>/step-00000050-<fp>.pt``,
where ``<fp>`` is the first 12 hex digits of the run's fingerprint (a hash of every
param that shapes the loss curve), so runs with other params never resume from, or
prune, each other's files. It holds only tensors and plain containers, so it loads
with ``torch.load(path, weights_only=True)``:

    {"format": 1, "fingerprint": "<sha256>", "step": 50,   # schedule and data position
     "stepper": {...},        # Stepper.state_dict(): model, optimizer, loss scaler
     "rng": {...},            # torch CPU (+ CUDA), numpy and python ``random`` states
     "records": [{...}, ...], # the StepRecords so far, as plain dicts
     "initial_val": {...}, "train_seconds": 12.3}

The step is the whole data and schedule position: batches are a pure function of the
step (:mod:`redrobe.train.data`) and the lr of :func:`redrobe.train.schedule.lr_at`.

    ckpt = Checkpointer("data/checkpoints/pretrain", fingerprint(params_dict), every=50, keep=3)
    state, note = ckpt.latest()        # newest valid checkpoint of this fingerprint, or None + why
    ckpt.save(step, state)             # atomic write, then prune to the last ``keep``
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from redrobe.documents import atomic_file

FORMAT = 1
NAME = re.compile(r"^step-(\d{8})-([0-9a-f]{12})\.pt$")


def fingerprint(payload: Mapping[str, Any]) -> str:
    """sha256 of ``payload`` as canonical JSON (sorted keys): what a resume must match."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain values (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # numpy's stub types get_state() (legacy=True by default) as the dict form
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)),  # type: ignore[attr-defined]
                  "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(step: int, fp: str) -> str:
    return f"step-{step:08d}-{fp[:12]}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str, Path]]:
    """(step, short fingerprint, path) of every checkpoint file, newest step first."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = [(int(m[1]), m[2], p) for p in root.iterdir() if (m := NAME.match(p.name))]
    return sorted(found, key=lambda t: (-t[0], t[1]))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's state; ``weights_only=True``, so a file cannot run code on load."""
    return torch.load(path, map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class Checkpointer:
    """Where and how often to checkpoint one run (identified by its fingerprint).

    Multi-process runs whose stepper state differs per rank (ZeRO partitions the
    optimizer) give each rank its own directory, e.g. ``<dir>/rank-1``.
    """

    directory: str | os.PathLike
    fingerprint: str
    every: int = 0   # save every N steps and after the last one; 0: never
    keep: int = 3    # how many of this run's newest checkpoints to keep

    def due(self, step: int, last_step: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last_step)

    def save(self, step: int, state: Mapping[str, Any]) -> Path:
        """Write ``state`` atomically (a kill mid-write leaves no valid-looking file), then prune."""
        path = Path(self.directory) / checkpoint_name(step, self.fingerprint)
        payload = {"format": FORMAT, "fingerprint": self.fingerprint, "step": step, **state}
        with atomic_file(path, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())  # durable before the rename makes it visible
        self.prune()
        return path

    def prune(self) -> None:
        """Drop this run's checkpoints beyond the newest ``keep``, and stale temp files."""
        mine = [p for _, fp, p in list_checkpoints(self.directory) if fp == self.fingerprint[:12]]
        for path in mine[max(self.keep, 1):]:
            path.unlink(missing_ok=True)
        # Left by a killed writer (atomic_file names them .<name>.tmp-<pid>).
        for tmp in Path(self.directory).glob(".step-*.pt.tmp-*"):
            if not tmp.name.endswith(f".tmp-{os.getpid()}"):
                tmp.unlink(missing_ok=True)

    def latest(self) -> tuple[dict[str, Any] | None, str]:
        """The newest checkpoint of this fingerprint that loads, or None; and why."""
        everything = list_checkpoints(self.directory)
        if not everything:
            return None, f"no checkpoint in {self.directory}"
        mine = [(s, p) for s, fp, p in everything if fp == self.fingerprint[:12]]
        if not mine:
            return None, (f"{len(everything)} checkpoint(s) in {self.directory}, none for this "
                          f"params fingerprint {self.fingerprint[:12]} (params changed)")
        skipped = []
        for step, path in mine:
            try:
                state = load_checkpoint(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, with its error
                skipped.append(f"{path.name} ({type(exc).__name__})")
                continue
            if state.get("format") == FORMAT and state.get("fingerprint") == self.fingerprint \
                    and state.get("step") == step:
                note = f"resumed from {path} (step {step})"
                return state, note + (f"; skipped unreadable {', '.join(skipped)}" if skipped else "")
            skipped.append(f"{path.name} (fingerprint or format differs)")
        return None, f"no valid checkpoint in {self.directory}: skipped {', '.join(skipped)}"
