"""Benchmark: the dedup stage up a ladder of corpus sizes: flat memory, flat docs/s per core, exact quality.

    python benchmarks/scale.py                       # 10^4, 10^5, 10^6 docs -> benchmarks/results/scale.json
    python benchmarks/scale.py --rungs 2000 6000 --work /tmp/scale --out /tmp/scale.json
    python benchmarks/scale.py --raw data/raw --workers 2 --seed 0 --work .cache/scale

What it measures and why. Dedup's global step is a set of partitioned tasks
(``redrobe.dedup.plan``): no process should hold the corpus, so the memory of every task
and of the driver must stay flat as the corpus grows, and the CPU spent per document
must stay flat too (no step that grows faster than the corpus). Each rung is a
synthetic corpus of real sentences with planted near-duplicate families
(``benchmarks/scale_corpus.py``, cached under ``--work`` per docs, seed, generator and sentence
pool; the results name the pool's source), so the same run also checks what dedup found
against the planted truth.

How. Each rung runs the stage in a fresh child process exactly as dvc does (``python -m
redrobe dedup --params ...``), with the repository's params.yaml except
``dedup.semantic.enabled: false`` (the semantic pass encodes ~6 docs/s on CPU and is
measured by benchmarks/semantic.py), ``shared.workers: --workers`` and
``shared.executor: local``; ``REDROBE_TRACKING=off``, ``HF_HUB_OFFLINE=1`` and
``REDROBE_TASK_PROFILE`` set, so every task of every map writes one JSON line (wall,
CPU, peak RSS with the high-water mark reset before the task, fds, maps, result size;
``redrobe.parallel.Profiled``). The parent samples the driver every 0.1 s (VmHWM, open
fds, memory maps; the maxima are kept) and reads its own CPU time when it exits, before
it is reaped; CPU of tasks that ran inside the driver is counted once, as task CPU.
A single-task map runs in the driver, whose high-water mark it resets: the driver's
peak is then the largest value the 0.1 s samples saw.

Per task function: tasks, max peak RSS, the most one task added to its worker's RSS,
the max peak less the shared libraries' pages mapped when the task ended (a worker forked
from the driver starts without the driver's mapped code and faults it back in during its
first task, so a map that runs one task per worker, as the components maps do on the
smallest rung, peaks a few MB lower than its warm tasks would; information, not a
target), fds, maps, max and total result bytes, total CPU and docs/s per core (rung docs /
that CPU); overall docs/s per core = docs / (driver CPU + all task CPU). The load average
is recorded when the run starts and when it ends (other processes on the machine compete
with the stage for its cores). Quality: the cluster of a document is its
``duplicate_of`` (removed) or itself (kept); recall = share of planted pairs with
Jaccard >= 0.85 whose documents share a cluster (also 0.8..0.85 and below 0.7, for
information); precision = share of removals that are right: the removed document is in
the planted family of its ``duplicate_of``, or really is a duplicate (same normalized text,
or exact Jaccard >= the dedup threshold) of some member of its cluster (clusters are
connected components, so a document can be removed through a chain of such links), and
precision by family counts only the first kind. Recall comes with what LSH banding alone
gives the same pairs (the mean of 1 - (1 - J^rows)^bands) and, for each missed pair, how
many band keys its two documents share (none: banding never made them candidates, an LSH
miss; the planted Jaccard is measured on the stage's own shingles). On the smallest rung
the one-process plan (``sketch_shard`` + ``plan_removals``) runs in-process and its removals must equal the
stage's. Targets (stored with value, limit, ok; a failed target is a finding, the exit
code stays 0): every function's peak RSS at the largest rung <= 1.1x the smallest; the
driver's <= 1.1x + 1 KB per shard of the largest; the stage's docs/s per core at the
largest >= 0.9x the smallest (each function's ratio is recorded too, as information);
recall >= 0.99; precision 1.0; identity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "scale.json"
sys.path.insert(0, str(BENCH))

import scale_corpus  # noqa: E402  (a sibling script, found through the path above)

RUNGS = (10_000, 100_000, 1_000_000)
SAMPLE_EVERY_S = 0.1
RECALL_AT, LOOSE_AT, FAR_BELOW = 0.85, 0.8, 0.7
MEMORY_SLACK, SPEED_SLACK, DRIVER_KB_PER_SHARD = 1.1, 0.9, 1.0
RECALL_TARGET = 0.99
CLUSTER_COMMAND = """\
# NOT RUN HERE: 10^7-10^8 documents on a Ray cluster. params-cluster.yaml = params.yaml with
# shared.executor: ray, shared.ray_address: auto, shared.workers: <cluster cores> and
# dedup.semantic.enabled: false. Every node reads and writes the bucket directly: the shards,
# the outputs (each committed by its _manifest.json) and the plan's partitioned scratch.
redrobe dedup --params params-cluster.yaml --input s3://BUCKET/corpus/clean \\
    --output s3://BUCKET/corpus/dedup --removed s3://BUCKET/corpus/removed/dedup \\
    --metrics data/metrics/dedup.json --work-dir s3://BUCKET/redrobe/dedup-work"""


# -- corpus ---------------------------------------------------------------------------
def sentence_pool(args: argparse.Namespace, work: Path) -> tuple[list[str], str]:
    """Sentences from ``--pool-text`` files, ``--raw`` shards, data/raw, or an ingest (cached),
    and where they came from: the corpora depend on it, and data/raw, when a pipeline run
    has left one, comes before the cached ingest (``--raw`` pins it)."""
    if args.pool_text:
        texts = (p.read_text(encoding="utf-8") for p in args.pool_text)
        return scale_corpus.sentence_pool(texts), " ".join(map(str, args.pool_text))
    from redrobe.documents import list_shards

    candidates = [args.raw, ROOT / "data" / "raw", work / "ingested" / "raw"]
    raw = next((p for p in candidates if p is not None and p.exists() and list_shards(p)), None)
    raw = raw or scale_corpus.ingested_raw(None, work)
    return scale_corpus.pool_from_shards(raw), str(raw)


def corpus(work: Path, docs: int, args: argparse.Namespace, pool: list[str]) -> tuple[Path, dict[str, Any]]:
    """The rung's corpus under ``work``, generated once per (docs, seed, shard docs, pool,
    generator source)."""
    path = work / f"corpus-{docs}-seed{args.seed}"
    key = {"docs": docs, "seed": args.seed, "shard_docs": args.shard_docs,
           "pool_sha256": hashlib.sha256("\n".join(pool).encode()).hexdigest(),
           "generator_sha256": hashlib.sha256(Path(scale_corpus.__file__).read_bytes()).hexdigest()}
    key_file = path / "scale-key.json"
    if key_file.exists() and json.loads(key_file.read_text()) == key:
        return path, json.loads((path / "corpus.json").read_text())
    shutil.rmtree(path, ignore_errors=True)
    print(f"generating {docs} documents into {path}", flush=True)
    summary = scale_corpus.generate(path, docs, args.seed, pool, args.shard_docs)
    key_file.write_text(json.dumps(key) + "\n")  # last: a corpus cut short is never reused
    return path, summary


def corpus_row(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    from redrobe.documents import list_shards

    shards = list_shards(path)
    return {"docs": summary["docs"], "shards": len(shards),
            "mb": round(sum(p.stat().st_size for p in shards) / 2**20, 1),
            "planted_docs": summary["planted_docs"], "planted_pairs": summary["planted_pairs"],
            "families": summary["families"], "pool_sentences": summary["pool_sentences"]}


# -- one stage run ----------------------------------------------------------------------
def write_params(path: Path, workers: int, partition_keys: int) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["dedup"]["semantic"]["enabled"] = False
    params["dedup"]["partition_keys"] = partition_keys
    params["shared"].update(workers=workers, executor="local")
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def stage_cmd(params: Path, corpus_dir: Path, run: Path) -> list[str]:
    return [sys.executable, "-m", "redrobe", "dedup", "--params", str(params), "--input", str(corpus_dir),
            "--output", str(run / "kept"), "--removed", str(run / "removed"),
            "--metrics", str(run / "dedup.json")]


def stage_env(profile: Path) -> dict[str, str]:
    from redrobe.parallel import PROFILE_ENV

    return {**os.environ, "REDROBE_TRACKING": "off", "HF_HUB_OFFLINE": "1", PROFILE_ENV: str(profile),
            "PYTHONUNBUFFERED": "1"}


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(VmHWM in MB, open fds, memory maps) of a live process."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        hwm = next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
    with open(f"/proc/{pid}/maps", "rb") as fh:
        maps = sum(1 for _ in fh)
    return hwm / 1024, len(os.listdir(f"/proc/{pid}/fd")), maps


def exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (its /proc entry stays readable)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def measure(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run the stage, sampling the driver; its CPU is read from the zombie before reaping."""
    peak = [0.0, 0, 0]
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        while not exited(child.pid):
            try:
                peak = [max(a, b) for a, b in zip(peak, proc_sample(child.pid))]
            except (OSError, StopIteration):  # exiting between the check and the read
                pass
            time.sleep(SAMPLE_EVERY_S)
        wall = time.perf_counter() - started
        cpu = psutil.Process(child.pid).cpu_times()
        code = child.wait()
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
        raise SystemExit(f"dedup failed ({code}): {' '.join(cmd)}\n{tail}")
    return {"pid": child.pid, "wall_s": round(wall, 2), "cpu_s": cpu.user + cpu.system,
            "reaped_children_cpu_s": round(cpu.children_user + cpu.children_system, 2),
            "peak_rss_mb": round(peak[0], 1), "fds": peak[1], "maps": peak[2]}


# -- task profile -----------------------------------------------------------------------
def read_profile(folder: Path) -> list[dict[str, Any]]:
    """Every task record, with the pid of the process that ran it."""
    records = []
    for path in sorted(folder.glob("*.jsonl")):
        pid = int(path.stem)
        records += [{**json.loads(line), "pid": pid} for line in path.read_text().splitlines() if line]
    return records


def per_function(records: list[dict[str, Any]], docs: int) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["fn"]].append(record)
    return {fn: function_row(rs, docs) for fn, rs in sorted(groups.items())}


def function_row(records: list[dict[str, Any]], docs: int) -> dict[str, Any]:
    cpu = sum(r["cpu_s"] for r in records)
    return {"tasks": len(records),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in records),
            # what the task itself added to the worker it ran in (a forked worker starts
            # with the driver's pages, which the peak counts too)
            "task_growth_mb": round(max(r["peak_rss_mb"] - r.get("start_rss_mb", 0.0) for r in records), 1),
            # the peak less the shared libraries' pages mapped when the task ended: a worker's
            # first task faults those back in, later ones start with them (parallel.Profiled)
            "peak_private_mb": round(max(r["peak_rss_mb"] - r.get("file_rss_mb", 0.0) for r in records), 1),
            "fds": max(r["fds"] for r in records), "maps": max(r["maps"] for r in records),
            "result_bytes_max": max(r["result_bytes"] for r in records),
            "result_bytes_total": sum(r["result_bytes"] for r in records),
            "cpu_s": round(cpu, 3), "wall_s": round(sum(r["wall_s"] for r in records), 3),
            "docs_per_s_per_core": per_core(docs, cpu)}


def per_core(docs: int, cpu_s: float) -> float | None:
    return round(docs / cpu_s, 1) if cpu_s > 0 else None


# -- quality ----------------------------------------------------------------------------
def removed_map(removed: Path) -> dict[str, tuple[str, str]]:
    """id -> (reason, duplicate_of) over the stage's removed shards."""
    from redrobe.documents import list_shards

    out: dict[str, tuple[str, str]] = {}
    for shard in list_shards(removed):
        table = pq.read_table(shard, columns=["id", "reason", "duplicate_of"]).to_pydict()
        out.update(zip(table["id"], zip(table["reason"], table["duplicate_of"])))
    return out


def quality(corpus_dir: Path, removed: dict[str, tuple[str, str]], threshold: float,
            minhash: Any = None) -> dict[str, Any]:
    """Recall and precision against the planted truth; with ``minhash`` (the stage's
    MinHash params) also what the banding alone gives and why each pair was missed."""
    truth = pq.read_table(corpus_dir / "truth.parquet", columns=["family", "id_a", "id_b", "jaccard"])
    cols = truth.to_pydict()
    family = dict(zip(cols["id_a"], cols["family"])) | dict(zip(cols["id_b"], cols["family"]))

    def cluster(doc: str) -> str:
        return removed[doc][1] if doc in removed else doc

    together: dict[str, list[bool]] = {"high": [], "loose": [], "far": []}
    missed = []
    for a, b, j in zip(cols["id_a"], cols["id_b"], cols["jaccard"]):
        band = "high" if j >= RECALL_AT else "loose" if j >= LOOSE_AT else "far" if j < FAR_BELOW else ""
        if band:
            together[band].append(cluster(a) == cluster(b))
        if band == "high" and not together[band][-1]:
            missed.append((a, b, j))
    outside = {d: kept for d, (_, kept) in removed.items() if family.get(d, -1) != family.get(kept, -2)}
    members: dict[str, list[str]] = {}
    for doc, (_, kept) in removed.items():
        members.setdefault(kept, [kept]).append(doc)
    clusters = {d: members[kept] for d, kept in outside.items()}
    texts = corpus_texts(corpus_dir, {m for ms in clusters.values() for m in ms} | set(clusters)
                         | {d for a, b, _ in missed for d in (a, b)})
    chance = chance_duplicates(texts, clusters, threshold)
    wrong = sorted(set(outside) - chance)
    out = {"pairs_j_ge_085": len(together["high"]), "recall_j_ge_085": share(together["high"]),
           "pairs_j_080_085": len(together["loose"]), "recall_j_080_085": share(together["loose"]),
           "pairs_j_lt_070": len(together["far"]), "linked_j_lt_070": share(together["far"]),
           "removed": len(removed), "outside_planted_family": len(outside),
           "chance_duplicates": len(chance), "wrong_removals": len(wrong), "wrong_examples": wrong[:5],
           "precision_by_family": ratio(len(removed) - len(outside), len(removed)),
           "precision": ratio(len(removed) - len(wrong), len(removed))}
    if minhash is not None:
        high = [j for j in cols["jaccard"] if j >= RECALL_AT]
        out.update(missed_pairs(texts, missed, minhash, high))
    return out


def missed_pairs(texts: dict[str, str], missed: list[tuple[str, str, float]], minhash: Any,
                 high: list[float]) -> dict[str, Any]:
    """The missed J >= 0.85 pairs against what LSH banding gives.

    ``banding_recall_j_ge_085``: the mean over the planted J >= 0.85 pairs of the chance
    that ``bands`` x ``rows`` banding puts the two documents in one bucket, 1 - (1 -
    J^rows)^bands (the default 16 x 8 gives a J = 0.85 pair 0.994, RedPajama-V2's 14 x 9
    0.975); a pair it misses can still be joined through other members of its family, so the
    measured recall may be higher. For each missed pair: its Jaccard (measured on the
    stage's own shingles, word 13-grams of the normalized text) and how many band keys the
    two documents share, from their signatures: none means banding never made them
    candidates (an LSH miss, not a verification or clustering error)."""
    from redrobe.dedup.minhash import MinHasher

    hasher = MinHasher.from_params(minhash)
    shared = []
    for a, b, _ in missed:
        sigs, _ = hasher.signatures([texts[a], texts[b]])
        keys = hasher.band_keys(sigs)
        shared.append(int((keys[0] == keys[1]).sum()))
    chance = [1 - (1 - j ** minhash.rows) ** minhash.bands for j in high]
    return {"banding": f"{minhash.bands} x {minhash.rows}",
            "banding_recall_j_ge_085": round(sum(chance) / len(chance), 6) if chance else None,
            "missed_j_ge_085": len(missed), "missed_sharing_no_band": shared.count(0),
            "missed_examples": [{"a": a, "b": b, "jaccard": round(j, 4), "bands_shared": n}
                                for (a, b, j), n in list(zip(missed, shared))[:10]]}


def corpus_texts(corpus_dir: Path, wanted: set[str]) -> dict[str, str]:
    """id -> text of the ``wanted`` documents (one pass over the shards; none when empty)."""
    from redrobe.documents import list_shards

    texts: dict[str, str] = {}
    if not wanted:
        return texts
    for shard in list_shards(corpus_dir):
        table = pq.read_table(shard, columns=["id", "text"]).to_pydict()
        texts.update((i, t) for i, t in zip(table["id"], table["text"]) if i in wanted)
    return texts


def chance_duplicates(texts: dict[str, str], clusters: dict[str, list[str]], threshold: float) -> set[str]:
    """The removed documents outside any planted family (id -> every document of its
    cluster, the kept one first; ``texts`` holds theirs) that really are duplicates of some
    member of their cluster: same normalized text, or an exact 13-gram Jaccard >=
    ``threshold``. A small sentence pool makes a few by chance (short documents sharing one
    long sentence), and clusters are connected components (RedPajama-V2's), so a document
    may be removed through a chain of such links rather than a link to the kept document
    itself: that removal is right too."""
    from redrobe.dedup.minhash import MinHasher, exact_jaccard, normalized_bytes

    hasher = MinHasher(ngram=scale_corpus.NGRAM)

    def duplicates(a: str, b: str) -> bool:
        same = normalized_bytes(a).split() == normalized_bytes(b).split()
        return same or exact_jaccard(hasher.shingle_set(a), hasher.shingle_set(b)) >= threshold

    return {d for d, members in clusters.items()
            if any(m != d and {d, m} <= texts.keys() and duplicates(texts[d], texts[m]) for m in members)}


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 6) if flags else None


def one_process(corpus_dir: Path, params_file: Path) -> dict[str, tuple[str, str]]:
    """The one-process reference plan's removals, id -> (reason, duplicate_of)."""
    from redrobe.config import load_params
    from redrobe.dedup.shards import plan_removals, sketch_shard
    from redrobe.documents import list_shards

    params = load_params(params_file)
    sketches = [sketch_shard(str(p), params.dedup, params.shared.batch_docs) for p in list_shards(corpus_dir)]
    plan = plan_removals(sketches, params.dedup)
    return {doc: (reason, kept) for shard in plan.removals for doc, reason, kept in shard.values()}


# -- one rung ---------------------------------------------------------------------------
def rung(args: argparse.Namespace, work: Path, pool: list[str], docs: int, identity: bool) -> dict[str, Any]:
    from redrobe.config import load_params

    corpus_dir, summary = corpus(work, docs, args, pool)
    run = work / f"run-{docs}-seed{args.seed}-w{args.workers}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    params = write_params(run / "params.yaml", args.workers, args.partition_keys)
    print(f"dedup over {docs} documents ({args.workers} workers)", flush=True)
    driver = measure(stage_cmd(params, corpus_dir, run), stage_env(run / "profile"), run / "stage.log")
    records = read_profile(run / "profile")
    in_driver = sum(r["cpu_s"] for r in records if r["pid"] == driver["pid"])
    driver["own_cpu_s"] = round(driver.pop("cpu_s") - in_driver, 3)
    task_cpu = sum(r["cpu_s"] for r in records)
    removed = removed_map(run / "removed")
    metrics = json.loads((run / "dedup.json").read_text())
    shutil.rmtree(run / "kept")  # as large as the corpus; the removed shards stay for inspection
    out = {"docs": docs, "corpus": corpus_row(corpus_dir, summary), "driver": driver,
           "task_cpu_s": round(task_cpu, 3),
           "docs_per_s_per_core": per_core(docs, driver["own_cpu_s"] + task_cpu),
           "functions": per_function(records, docs),
           "quality": quality(corpus_dir, removed, load_params(params).dedup.minhash.threshold,
                              load_params(params).dedup.minhash),
           "stage_metrics": {k: metrics.get(k) for k in ("clusters", "partitions", "wall_seconds")}}
    if identity:
        out["identical_to_one_process"] = one_process(corpus_dir, params) == removed
    return out


# -- targets ----------------------------------------------------------------------------
def target(value: Any, limit: Any, op: str) -> dict[str, Any]:
    ok = value is not None and limit is not None and {
        "<=": lambda: value <= limit, ">=": lambda: value >= limit, "==": lambda: value == limit}[op]()
    return {"value": value, "limit": limit, "op": op, "ok": bool(ok)}


def scaled(x: float | None, factor: float, extra: float = 0.0) -> float | None:
    return None if x is None else round(x * factor + extra, 1)


def targets(rungs: list[dict[str, Any]], identical: bool) -> dict[str, dict[str, Any]]:
    small, big = rungs[0], rungs[-1]
    fns = sorted(set(small["functions"]) | set(big["functions"]))

    def flat(key: str, fn: str, factor: float, op: str) -> dict[str, Any]:
        lo, hi = small["functions"].get(fn, {}), big["functions"].get(fn, {})
        return target(hi.get(key), scaled(lo.get(key), factor), op)

    out = {f"peak_rss_mb {fn}": flat("peak_rss_mb", fn, MEMORY_SLACK, "<=") for fn in fns}
    per_shard_mb = DRIVER_KB_PER_SHARD * big["corpus"]["shards"] / 1024
    driver_limit = scaled(small["driver"]["peak_rss_mb"], MEMORY_SLACK, per_shard_mb)
    out["peak_rss_mb driver"] = target(big["driver"]["peak_rss_mb"], driver_limit, "<=")
    out["docs_per_s_per_core overall"] = target(
        big["docs_per_s_per_core"], scaled(small["docs_per_s_per_core"], SPEED_SLACK), ">=")
    out["recall J>=0.85 (every rung)"] = target(worst(rungs, "recall_j_ge_085"), RECALL_TARGET, ">=")
    out["precision (every rung)"] = target(worst(rungs, "precision"), 1.0, "==")
    out["identical_to_one_process (smallest rung)"] = target(identical, True, "==")
    return out


def function_rates(rungs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Docs/s per core of each task function, largest rung over smallest (information, not a
    target: the stage's rate is; a shuffle's reads grow with producers x partitions, so the
    shortest steps slow down per document long before the stage does)."""
    small, big = rungs[0], rungs[-1]
    out = {}
    for fn in sorted(set(small["functions"]) & set(big["functions"])):
        lo, hi = small["functions"][fn], big["functions"][fn]
        out[fn] = {"smallest": lo["docs_per_s_per_core"], "largest": hi["docs_per_s_per_core"],
                   "ratio": round(hi["docs_per_s_per_core"] / lo["docs_per_s_per_core"], 3),
                   "cpu_s_largest": hi["cpu_s"]}
    return out


def worst(rungs: list[dict[str, Any]], key: str) -> float | None:
    """The smallest value of a quality number over the rungs (None if a rung has none)."""
    values = [r["quality"][key] for r in rungs]
    return None if None in values else min(values)


# -- the run ----------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = platform.processor()
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    return {"cpus": os.cpu_count(), "cpu": model}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for r in result["rungs"]:
        worst = max(r["functions"].items(), key=lambda kv: kv[1]["peak_rss_mb"])
        q = r["quality"]
        lines.append(f"{r['docs']:>9} docs {r['corpus']['shards']:>5} shards {r['driver']['wall_s']:>8} s "
                     f"{r['docs_per_s_per_core']} docs/s/core; driver {r['driver']['peak_rss_mb']} MB, "
                     f"worst task {worst[1]['peak_rss_mb']} MB ({worst[0]}); recall {q['recall_j_ge_085']}, "
                     f"precision {q['precision']}")
    for name, t in result["targets"].items():
        lines.append(f"{'ok  ' if t['ok'] else 'FAIL'} {name}: {t['value']} {t['op']} {t['limit']}")
    return lines


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rungs", type=int, nargs="+", default=list(RUNGS), help="documents per rung")
    p.add_argument("--workers", type=int, default=2, help="shared.workers of the stage")
    p.add_argument("--work", type=Path, default=ROOT / ".cache" / "scale",
                   help="corpora (cached per docs and seed) and stage outputs")
    p.add_argument("--raw", type=Path, help="sample shards for the sentence pool (default data/raw, "
                   "else an ingest cached under --work)")
    p.add_argument("--pool-text", type=Path, nargs="+", help="text files for the sentence pool instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-docs", type=int, default=1000, help="documents per corpus shard")
    p.add_argument("--partition-keys", type=int, default=0,
                   help="dedup.partition_keys of every rung (default: the smallest rung's keys over "
                        "2 x workers, so its partitions are as full as the larger rungs')")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def default_partition_keys(smallest: int, workers: int) -> int:
    """The smallest rung's keys over two partitions per worker: a task's memory is set by
    ``partition_keys``, so rungs compare fairly only when the smallest one fills its
    partitions too, and runs each kind of task at least twice per worker (a worker's
    first task runs before its allocators have warmed up)."""
    from redrobe.config import load_params
    from redrobe.dedup.plan import keys_per_doc
    return max(1, smallest * keys_per_doc(load_params(ROOT / "params.yaml").dedup) // (2 * workers))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    args.rungs = sorted(set(args.rungs))
    args.partition_keys = args.partition_keys or default_partition_keys(args.rungs[0], args.workers)
    args.work = args.work.resolve()  # the stage runs from the repository root
    args.work.mkdir(parents=True, exist_ok=True)
    load = [round(x, 2) for x in os.getloadavg()]
    pool, pool_source = sentence_pool(args, args.work)
    rungs = [rung(args, args.work, pool, docs, identity=i == 0) for i, docs in enumerate(args.rungs)]
    identical = rungs[0]["identical_to_one_process"]
    given = list(argv) if argv is not None else sys.argv[1:]
    result = {"command": " ".join(["python", "benchmarks/scale.py", *given]),
              "machine": machine(), "commit": commit(), "load_average_at_start": load,
              "workers": args.workers, "seed": args.seed, "shard_docs": args.shard_docs,
              "partition_keys": args.partition_keys,
              "pool": {"source": pool_source, "sentences": len(pool),
                       "sha256": hashlib.sha256("\n".join(pool).encode()).hexdigest()},
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
              "rungs": rungs, "identical_to_one_process": identical,
              "targets": targets(rungs, identical), "function_rates": function_rates(rungs),
              "cluster_command": CLUSTER_COMMAND}
    result["all_ok"] = all(t["ok"] for t in result["targets"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(summary_lines(result)))
    print(f"-> {args.out}")
    if args.out.resolve().parent == RESULTS.parent:  # a JSON written elsewhere leaves the page alone
        from render_docs import render
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
