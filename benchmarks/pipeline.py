"""Pipeline wall time, no-op `dvc repro` time, and peak memory of the data stages.

    .venv/bin/python benchmarks/pipeline.py [--profile PROFILE.yaml] [--flow]

Copies the repository to a temporary directory (the sample downloads are shared through
.cache/dists), then measures, in one run:

1. the wall time of the whole pipeline (`dvc repro`, or the Prefect flow with --flow)
   and each stage's own wall time (from its metrics file);
2. the wall time of a second, no-op `dvc repro` (nothing changed: nothing runs);
3. peak RSS of `redrobe clean` and `redrobe dedup` on the corpus and on the corpus
   repeated 4 times (ids made unique per copy): the ratio 4x/1x shows whether memory
   stays flat as the corpus grows (dedup's index grows with documents, by design).

Prints a table and writes JSON to benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from e2e.test_pipeline import _copy_repo, _env, _set_params  # noqa: E402  (shared setup)

from redrobe.documents import ShardWriter, list_shards, read_documents, shard_path  # noqa: E402


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def peak_rss_mib(cmd: list[str], cwd: Path) -> float:
    """Peak RSS of one child process (run alone, so RUSAGE_CHILDREN is its own peak)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = _env(cwd) | {"REDROBE_TRACKING": "off"}
    out = subprocess.run([sys.executable, "-c", code, *cmd], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def replicate(src: Path, dest: Path, copies: int, batch: int = 256) -> None:
    """Write `copies` copies of every shard, ids suffixed so they stay unique."""
    for shard in list_shards(src):
        for c in range(copies):
            index = int(shard.stem.split("-")[1]) * copies + c
            with ShardWriter(shard_path(dest, shard.parent.name, index), batch) as w:
                for doc in read_documents(shard, batch):
                    w.write(doc.__class__(f"{doc.id}#{c}", doc.text, doc.source, doc.meta))


def memory_profile(root: Path) -> dict[str, dict[str, float]]:
    redrobe = str(Path(sys.executable).parent / "redrobe")
    result = {}
    for copies in (1, 4):
        raw = root / f"bench/raw-x{copies}"
        replicate(root / "data/raw", raw, copies)
        clean = root / f"bench/clean-x{copies}"
        rss_clean = peak_rss_mib([redrobe, "clean", "--input", str(raw), "--output", str(clean),
                                  "--removed", str(root / f"bench/rm-c{copies}"),
                                  "--quarantine", str(root / f"bench/q-c{copies}"),
                                  "--metrics", str(root / f"bench/clean-x{copies}.json")], root)
        rss_dedup = peak_rss_mib([redrobe, "dedup", "--input", str(clean),
                                  "--output", str(root / f"bench/dedup-x{copies}"),
                                  "--removed", str(root / f"bench/rm-d{copies}"),
                                  "--metrics", str(root / f"bench/dedup-x{copies}.json")], root)
        raw_mib = sum(p.stat().st_size for p in list_shards(raw)) / 2**20
        result[f"x{copies}"] = {"raw_shards_mib": raw_mib, "clean_peak_rss_mib": rss_clean,
                                "dedup_peak_rss_mib": rss_dedup}
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", help="params profile merged over params.yaml")
    p.add_argument("--flow", action="store_true", help="time the Prefect flow instead of dvc repro")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        _copy_repo(root)
        if args.profile:
            _set_params(root, yaml.safe_load(Path(args.profile).read_text()))
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"]):
            subprocess.run(cmd, cwd=root, check=True, capture_output=True)
        # .cache/dists is shared with the source checkout: after the first run the
        # sample archives are not downloaded again, as after `make run` on a user's machine.
        full_cmd = ([sys.executable, "-m", "flows.pipeline"] if args.flow
                    else [sys.executable, "-m", "dvc", "repro"])
        full, _ = timed(full_cmd, root)
        noop, out = timed([sys.executable, "-m", "dvc", "repro"], root)
        stages = {}
        for stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"]:
            metrics = root / "data/metrics" / ("eval.json" if stage == "evaluate" else f"{stage}.json")
            stages[stage] = json.loads(metrics.read_text()).get("wall_seconds")
        memory = memory_profile(root)
    report = {"pipeline_seconds": round(full, 1), "launcher": "prefect flow" if args.flow else "dvc repro",
              "noop_repro_seconds": round(noop, 2), "stage_seconds": stages, "memory": memory,
              "memory_ratio_4x_over_1x": {
                  k: round(memory["x4"][k] / memory["x1"][k], 2)
                  for k in ("raw_shards_mib", "clean_peak_rss_mib", "dedup_peak_rss_mib")},
              "cpus": os.cpu_count(), "profile": args.profile or "params.yaml"}
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
