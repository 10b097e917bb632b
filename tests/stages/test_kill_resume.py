"""Every data stage, SIGKILLed mid-run and run again, gives the uninterrupted run's bytes.

A tiny corpus goes through ingest (files mode), clean, dedup, quality, tokenize and
bucket once (the reference). Each stage is then run again into a second tree, as a
subprocess under the crash-point hook (tests/crash_points.py), killed with SIGKILL at
three writes taken from the reference run's own write log (so the same on every
machine): halfway to its commit (from nothing); just after its first output is swapped
in (over the complete outputs of a rerun); and, in the run right after that kill, at
the reference's last write (a crash while recovering from a crash). After each kill,
every output that exists is complete (byte-identical to the reference); the forced
rerun after the first and the third kill (with what the killed runs cached) recovers
what they left and reproduces the reference byte for byte, leaving no staging, aside
or journal files behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
WORDS = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at",
         "from", "it", "river", "stone", "light", "water", "harbour", "winter", "market", "garden",
         "letter", "window", "morning", "evening", "village", "mountain"]
SLICES = ("books", "c4")


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 14))]
    return " ".join(words).capitalize() + "."


def write_inputs(path: Path) -> None:
    """Twelve distinct prose documents per slice, plus one exact duplicate (for dedup)."""
    rng = random.Random(7)
    records = [{"text": "\n".join(sentence(rng) for _ in range(8)), "red_pajama_subset": name}
               for name in SLICES for _ in range(12)]
    records.append(dict(records[0]))
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def write_params(path: Path, inputs: Path, repo_root: Path) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["shared"].update(slices=list(SLICES), workers=1, batch_docs=8, min_val_docs=1)
    params["ingest"].update(mode="files", paths=[str(inputs)], shard_docs=5)
    params["dedup"]["semantic"]["enabled"] = False
    params["quality"]["max_removal_rate"] = {"clean": 1.0, "dedup": 1.0}
    params["tokenize"].update(vocab_size=300, min_frequency=2)
    params["bucket"]["num_buckets"] = 2
    params["lora"]["slice"] = "books"
    path.write_text(yaml.safe_dump(params))


def stage_argv(stage: str, params: Path, ref: Path, out: Path) -> tuple[list[str], list[Path]]:
    """``redrobe <stage>`` reading the reference tree's inputs, writing into ``out``; and the
    outputs to compare (metrics included, the Data Docs site excluded: GE stamps times)."""
    args = {
        "ingest": ["--cache-dir", out / "dists", "--output", out / "raw", "--removed",
                   out / "removed/ingest", "--quarantine", out / "quarantine/ingest"],
        "clean": ["--input", ref / "raw", "--output", out / "clean", "--removed", out / "removed/clean",
                  "--quarantine", out / "quarantine/clean", "--cache-dir", out / "cache/clean"],
        "dedup": ["--input", ref / "clean", "--output", out / "dedup", "--removed",
                  out / "removed/dedup", "--cache-dir", out / "cache/dedup"],
        "quality": ["--raw", ref / "raw", "--clean", ref / "clean", "--input", ref / "dedup",
                    "--clean-metrics", ref / "metrics/clean.json", "--dedup-metrics",
                    ref / "metrics/dedup.json", "--output", out / "quality", "--docs", out / "docs"],
        "tokenize": ["--input", ref / "dedup", "--gate", ref / "quality", "--output", out / "tokenizer"],
        "bucket": ["--input", ref / "dedup", "--tokenizer", ref / "tokenizer", "--output", out / "buckets"],
    }[stage]
    metrics = out / "metrics" / f"{stage}.json"
    outputs = [Path(value) for flag, value in zip(args[::2], args[1::2])
               if flag in ("--output", "--removed", "--quarantine")]
    argv = [stage, "--params", str(params), *map(str, args), "--metrics", str(metrics)]
    return argv, [*outputs, metrics]


def run_stage(argv: list[str], root: Path, kill_at: int, log: Path) -> tuple[int, str]:
    """Run ``redrobe <argv>`` killed at write ``kill_at`` under ``root`` (0: never):
    (exit code, the end of its stderr)."""
    env = {**os.environ, "REDROBE_TRACKING": "off", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(TESTS / "crash_points.py"), str(kill_at), str(log), str(root),
           "redrobe.cli:main", *argv]
    root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
    return done.returncode, done.stderr[-2000:]


def snapshot(path: Path) -> dict[str, bytes] | None:
    """A file's or a tree's bytes; metrics without the fields that differ between runs."""
    if not path.exists():
        return None
    if path.is_file():
        metrics = json.loads(path.read_text())
        for key in ("wall_seconds", "cache", "sketch"):   # time, and cache hits (clean, dedup)
            metrics.pop(key, None)
        return {"": json.dumps(metrics, sort_keys=True).encode()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def kill_points(log: Path, outputs: list[Path]) -> list[int]:
    """Halfway to the first swap, just after it, and the last write (1-based)."""
    writes = json.loads(log.read_text())
    finals = {str(p) for p in outputs}
    first_swap = next(i for i, (event, paths) in enumerate(writes, start=1)
                      if event in ("os.rename", "ctypes.call_function") and paths[1:2]
                      and paths[1] in finals)
    return sorted({max(1, first_swap // 2), first_swap + 1, len(writes)})


def leftovers(outputs: list[Path]) -> list[str]:
    parents = {p.parent for p in outputs if p.parent.exists()}
    return sorted(str(p) for d in parents for p in d.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_each_data_stage_killed_and_rerun_gives_the_reference_bytes(tmp_path, repo_root):
    write_inputs(tmp_path / "inputs" / "docs.jsonl")
    params = tmp_path / "params.yaml"
    write_params(params, tmp_path / "inputs" / "docs.jsonl", repo_root)
    ref, killed = tmp_path / "ref" / "data", tmp_path / "killed" / "data"
    for stage in ("ingest", "clean", "dedup", "quality", "tokenize", "bucket"):
        argv, outputs = stage_argv(stage, params, ref, ref)
        log = tmp_path / f"{stage}-writes.json"
        assert run_stage(argv, ref, 0, log) == (0, ANY), stage
        reference = [snapshot(p) for p in outputs]
        assert all(reference), stage
        points = kill_points(log, outputs)
        argv, outputs = stage_argv(stage, params, ref, killed)
        for n, kill_at in enumerate(points):
            # the reference ran with an empty cache: so does each killed run, so that its
            # writes up to the first swap are the reference's (the rerun reuses what it cached)
            shutil.rmtree(killed / "cache", ignore_errors=True)
            assert run_stage(argv, killed, kill_at, tmp_path / "ignored") == (-signal.SIGKILL, ANY), \
                (stage, kill_at)
            for output, expected in zip(outputs, reference):   # whole or absent, never partial
                assert snapshot(output) in (None, expected), (stage, kill_at, output)
            if n == 1 and len(points) == 3:
                continue   # the next run is killed too: while it recovers from this crash
            assert run_stage(argv, killed, 0, tmp_path / "ignored") == (0, ANY), (stage, kill_at)
            assert [snapshot(p) for p in outputs] == reference, (stage, kill_at)
            assert leftovers(outputs) == [], (stage, kill_at)
