"""Benchmark: clean on 1 vs 2 workers (local pool and Ray) and peak memory at 1x and 4x corpus.

    python benchmarks/scaling.py                    # -> benchmarks/results/scaling.json
    python benchmarks/scaling.py --raw data/raw --chars-per-slice 600000

Corpus: the real sample corpus (``--raw``, default data/raw; when absent, ``redrobe
ingest`` builds it into the work dir first, about a minute). The 1x corpus takes, per
slice, whole documents in shard order up to ``--chars-per-slice`` characters, written as
``--shards-per-slice`` shards of about equal size (so two workers have balanced work;
the raw sample has one shard per slice, the books shard five times the others). The
4x corpus repeats every shard's documents four times in the same shard (ids suffixed
``~r1``..``~r3``): same shards, each four times longer, so a stage that held a shard
in memory would show it.

Every run is a fresh child process (``--child``) running the stage's ``main`` exactly
as ``dvc repro`` does, with ``REDROBE_TRACKING=off``. The parent samples the child's
process tree with psutil every 50 ms and keeps, over the run:

- ``driver_mb``: peak RSS of the stage process itself;
- ``worker_mb``: peak RSS of the largest single task worker (local pool children, or
  Ray ``ray::`` worker processes); with one local worker the tasks run in the driver;
- ``tree_mb``: peak of the RSS summed over the whole tree, Ray's own daemons (GCS,
  raylet, agents) included. RSS counts shared pages once per process, so this sum
  overstates; it is the conservative number.

``cpu_s`` is the user+system CPU time of the tree (Ray daemons included), so a
speedup below 2 on a busy machine can be told apart from extra work.

Flat memory means ``driver_mb`` and ``worker_mb`` at 4x stay within noise of 1x. Times:
``stage_s`` is the stage's ``main`` (for Ray, after the child has started Ray and
``workers`` workers that imported the stage: ``ray_start_s``, reported apart since a
cluster and its workers start once, not per stage; local pool workers fork from the
driver and inherit its imports); speedup = stage_s(1 worker) / stage_s(2 workers)
for each executor and size.
Dedup (local, one worker) runs on the 1x and 4x clean output for its peak RSS; its
MinHash/LSH index grows with documents by design: it holds a content digest and band keys
per document, never the text (docs/references.md, "Deduplication at scale", describes how
the reference systems partition it further).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scaling.json"
SIZES = (1, 4)
SAMPLE_EVERY_S = 0.05


# -- corpus ---------------------------------------------------------------------------
def ensure_raw(raw: Path, work: Path) -> Path:
    """The real sample corpus: ``raw`` when it has shards, else ingested into ``work``."""
    from redrobe.documents import list_shards

    if raw.exists() and list_shards(raw):
        return raw
    out = work / "ingested"
    cmd = ["redrobe", "ingest", "--params", str(ROOT / "params.yaml"), "--cache-dir",
           str(ROOT / ".cache" / "dists"), "--output", str(out / "raw"), "--removed",
           str(out / "removed"), "--quarantine", str(out / "quarantine"), "--metrics",
           str(out / "ingest.json")]
    print(f"no shards under {raw}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True, env=_child_env())
    return out / "raw"


def build_corpus(raw: Path, out: Path, chars_per_slice: int, shards_per_slice: int,
                 copies: int, batch_docs: int) -> int:
    """Write the ``copies``x corpus under ``out``; return its document count."""
    from redrobe.documents import BASE_COLUMNS, ShardWriter, list_shards, read_documents, shard_path

    by_slice: dict[str, list[Path]] = {}
    for shard in list_shards(raw):
        by_slice.setdefault(shard.parent.name, []).append(shard)
    total = 0
    for slice_name, shards in sorted(by_slice.items()):
        docs, chars = [], 0
        for shard in shards:
            for doc in read_documents(shard, batch_docs):
                if chars >= chars_per_slice:
                    break
                docs.append(doc)
                chars += len(doc.text or "")
        extra = tuple(c for c in pq.read_schema(shards[0]).names if c not in BASE_COLUMNS)
        # equal-size shards by characters, documents kept in order
        bounds = [chars * (i + 1) / shards_per_slice for i in range(shards_per_slice)]
        groups: list[list[Any]] = [[] for _ in bounds]
        seen = 0
        for doc in docs:
            index = next(i for i, b in enumerate(bounds) if seen < b or i == len(bounds) - 1)
            groups[index].append(doc)
            seen += len(doc.text or "")
        for index, group in enumerate(g for g in groups if g):
            with ShardWriter(shard_path(out, slice_name, index), batch_docs, extra) as writer:
                for copy in range(copies):
                    for doc in group:
                        doc_id = doc.id if copy == 0 else f"{doc.id}~r{copy}"
                        writer.write(dataclasses.replace(doc, id=doc_id))
            total += writer.count
    return total


# -- one measured run -------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    return {**os.environ, "REDROBE_TRACKING": "off", "PYTHONUNBUFFERED": "1"}


def _roles(proc: psutil.Process, driver_cmdline: list[str]) -> str:
    """'worker' for a task process (Ray ``ray::...`` or a forked pool child), else 'daemon'."""
    try:
        if proc.name().startswith("ray::"):
            return "worker"
        return "worker" if proc.cmdline() == driver_cmdline else "daemon"
    except psutil.Error:
        return "daemon"


def measure(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``, sampling its process tree's RSS; its last stdout line is JSON timings."""
    child = subprocess.Popen(cmd, env=_child_env(), stdout=subprocess.PIPE, text=True)
    driver = psutil.Process(child.pid)
    driver_cmdline = driver.cmdline()
    peak = {"driver_mb": 0.0, "worker_mb": 0.0, "tree_mb": 0.0}
    cpu: dict[int, float] = {}  # pid -> last seen user+system seconds
    while child.poll() is None:
        try:
            procs = [driver] + driver.children(recursive=True)
            rss = {p.pid: p.memory_info().rss / 2**20 for p in procs}
            cpu.update({p.pid: sum(p.cpu_times()[:2]) for p in procs})
        except psutil.Error:  # a process ended between listing and reading
            continue
        peak["driver_mb"] = max(peak["driver_mb"], rss[driver.pid])
        workers = [rss[p.pid] for p in procs[1:] if _roles(p, driver_cmdline) == "worker"]
        peak["worker_mb"] = max([peak["worker_mb"], *workers])
        peak["tree_mb"] = max(peak["tree_mb"], sum(rss.values()))
        time.sleep(SAMPLE_EVERY_S)
    out = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"benchmark run failed ({child.returncode}): {' '.join(cmd)}")
    timings = json.loads(out.strip().splitlines()[-1])
    return {**timings, "cpu_s": round(sum(cpu.values()), 1),
            **{k: round(v, 1) for k, v in peak.items()}}


def warm_worker(module: str) -> int:
    """Import the stage in a Ray worker, as a long-lived cluster's workers already have.

    Each call holds its worker a moment, so Ray starts one worker per warm-up task.
    """
    import importlib

    importlib.import_module(module)
    time.sleep(0.5)
    return os.getpid()


def run_child(args: argparse.Namespace) -> None:
    """``--child``: (start Ray,) run one stage's main, print its timings as one JSON line."""
    import importlib

    from redrobe import parallel
    from redrobe.config import load_params

    shared = load_params(args.params).shared
    module = f"redrobe.stages.{args.child}"
    started = time.perf_counter()
    if shared.executor == "ray":  # start Ray and its workers before the clock starts
        parallel.executor_for(shared).map(warm_worker, [module] * shared.workers)
    ray_start = time.perf_counter() - started
    stage = importlib.import_module(module)
    started = time.perf_counter()
    code = stage.main(["--params", args.params, *args.stage_args])
    stage_s = time.perf_counter() - started
    parallel.shutdown()
    if code != 0:
        raise SystemExit(code)
    print(json.dumps({"stage_s": round(stage_s, 2), "ray_start_s": round(ray_start, 2)}))


def write_params(path: Path, executor: str, workers: int, batch_docs: int) -> Path:
    from redrobe.config import Params, as_dict

    params = as_dict(Params())
    params["shared"].update(executor=executor, workers=workers, batch_docs=batch_docs)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def stage_cmd(stage: str, params: Path, out: Path, corpus: Path) -> list[str]:
    dirs = ["--output", str(out / "kept"), "--removed", str(out / "removed")]
    if stage == "clean":
        dirs += ["--quarantine", str(out / "quarantine")]
    return [sys.executable, __file__, "--child", stage, "--params", str(params), "--",
            "--input", str(corpus), *dirs, "--metrics", str(out / "metrics.json")]


# -- the benchmark ----------------------------------------------------------------------
def benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]  # a shared machine slows every run alike
    raw = ensure_raw(args.raw, work)
    corpora = {size: work / f"corpus-{size}x" for size in SIZES}
    docs = {size: build_corpus(raw, path, args.chars_per_slice, args.shards_per_slice, size,
                               args.batch_docs) for size, path in corpora.items()}
    runs: list[dict[str, Any]] = []
    for executor in args.executors:
        for workers in (1, 2):
            params = write_params(work / f"{executor}-{workers}.yaml", executor, workers,
                                  args.batch_docs)
            for size in SIZES:
                out = work / f"clean-{executor}-{workers}-{size}x"
                result = measure(stage_cmd("clean", params, out, corpora[size]))
                runs.append({"stage": "clean", "executor": executor, "workers": workers,
                             "size": size, "docs": docs[size], **result})
                print(json.dumps(runs[-1]), flush=True)
    params = write_params(work / "dedup.yaml", "local", 1, args.batch_docs)
    for size in SIZES:
        clean_out = work / f"clean-{args.executors[0]}-1-{size}x" / "kept"
        result = measure(stage_cmd("dedup", params, work / f"dedup-{size}x", clean_out))
        runs.append({"stage": "dedup", "executor": "local", "workers": 1, "size": size,
                     "docs": docs[size], **result})
        print(json.dumps(runs[-1]), flush=True)
    return {"corpus": {"raw": str(raw), "chars_per_slice": args.chars_per_slice,
                       "shards_per_slice": args.shards_per_slice, "docs": docs,
                       "batch_docs": args.batch_docs},
            "cpus": os.cpu_count(), "load_average_at_start": load,
            "runs": runs, "ratios": ratios(runs)}


def ratios(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Speedups (1 vs 2 workers) and memory growth (4x over 1x), measured in this run."""
    def run(stage: str, executor: str, workers: int, size: int) -> dict[str, Any]:
        return next(r for r in runs if (r["stage"], r["executor"], r["workers"], r["size"])
                    == (stage, executor, workers, size))

    out: dict[str, float] = {}
    for executor in sorted({r["executor"] for r in runs if r["stage"] == "clean"}):
        for size in SIZES:
            one, two = run("clean", executor, 1, size), run("clean", executor, 2, size)
            out[f"clean_{executor}_{size}x_speedup_2_workers"] = round(one["stage_s"] / two["stage_s"], 2)
        for workers in (1, 2):
            small, big = run("clean", executor, workers, 1), run("clean", executor, workers, 4)
            for key in ("driver_mb", "worker_mb", "tree_mb"):
                if small[key]:
                    out[f"clean_{executor}_{workers}w_{key}_4x_over_1x"] = round(big[key] / small[key], 2)
    small, big = run("dedup", "local", 1, 1), run("dedup", "local", 1, 4)
    out["dedup_driver_mb_4x_over_1x"] = round(big["driver_mb"] / small["driver_mb"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", type=Path, default=ROOT / "data" / "raw",
                   help="sample corpus shards (default data/raw; ingested when absent)")
    p.add_argument("--chars-per-slice", type=int, default=300_000)
    p.add_argument("--shards-per-slice", type=int, default=2)
    p.add_argument("--batch-docs", type=int, default=8,
                   help="shared.batch_docs: small, so 1x shards already span several batches")
    p.add_argument("--executors", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    p.add_argument("--work", type=Path, help="keep the corpora and outputs here (default: a tmp dir)")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--params", help=argparse.SUPPRESS)
    p.add_argument("stage_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="redrobe-scaling-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = benchmark(args, work)
    result["benchmark_s"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=2))
    print(f"-> {args.output} in {result['benchmark_s']}s")
    from render_docs import render  # regenerate docs/performance.md from the results
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
