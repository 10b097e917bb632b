"""Lineage: walk the stages' shard edges from a model's weights back to the raw shards.

Pure logic behind ``redrobe lineage`` (the MLflow and dvc.lock reading is in
:mod:`redrobe.lineage_cli`). Every data stage logs ``lineage/<stage>.json`` with edges
``{input, input_digest, output, output_digest}`` (sha256 digests); a run here is a
plain mapping::

    {"run_id": "...", "stage": "clean", "start_time": 1700000000000,  # ms
     "edges": [{"input": "data/raw/c4/part-00000.parquet", "input_digest": "ab..",
                "output": "data/interim/clean/c4/part-00000.parquet", "output_digest": "cd.."}],
     "params": {"clean.c4.min_sentences": "5"}, "git_commit": "0f3e..",
     "parent_run_id": "...", "datasets": [{"name", "digest", "sha256", "context", "uri"}]}

    report = trace(runs, target_sha256, target_path="data/models/base/model.safetensors")
    attach_dvc(report, dvc_outs)      # optional: dvc.lock outputs holding the raw shards
    print(render(report))             # or json.dumps(report)

How a file is resolved: DVC skips up-to-date stages, so the runs on one model's path
may belong to different pipeline executions. Each input is therefore resolved on its
own, to the newest run whose edges output that file (same path *and* same sha256) and
that started before the run that read it (a later run writing the same bytes cannot
have fed it; this also keeps the walk acyclic). The path matters because identical
bytes occur at several paths (a shard that cleaning and dedup leave untouched is
byte-identical in raw/, clean/ and dedup/), so a digest alone would send the walk to
the wrong stage. Inputs no run produced (the sample archives, user files) end the walk.
The raw shards are the files on the path output by the ``raw_stage`` run(s); their md5
and source names come from that run's MLflow dataset inputs (``raw``/``source``).
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

RAW_STAGE = "ingest"
DIST_PREFIX = "dist/"   # ingest names a sample archive's dataset "dist/<name==version>"


class LineageError(ValueError):
    """The target (or a walk through the records) cannot be resolved."""


@dataclass(frozen=True, order=True)
class FileRef:
    path: str
    sha256: str


@dataclass(frozen=True)
class Run:
    """One stage run with its recorded edges (output file -> input files)."""

    run_id: str
    stage: str
    start_time: int
    inputs_of: Mapping[FileRef, tuple[FileRef, ...]]
    record: Mapping[str, Any] = field(compare=False)

    @classmethod
    def from_mapping(cls, run: Mapping[str, Any]) -> Run:
        inputs_of: dict[FileRef, set[FileRef]] = defaultdict(set)
        for i, edge in enumerate(run.get("edges", [])):
            try:
                out = FileRef(str(edge["output"]), str(edge["output_digest"]))
                inputs_of[out].add(FileRef(str(edge["input"]), str(edge["input_digest"])))
            except (KeyError, TypeError) as exc:
                raise LineageError(f"run {run.get('run_id')} ({run.get('stage')}): edge {i} "
                                   f"lacks {exc}: {edge!r}") from exc
        return cls(str(run["run_id"]), str(run["stage"]), int(run.get("start_time") or 0),
                   {o: tuple(sorted(s)) for o, s in inputs_of.items()}, run)


def producers(runs: Iterable[Run]) -> dict[FileRef, list[Run]]:
    """For each (path, sha256) any run output: the runs that output it, oldest first."""
    made_by: dict[FileRef, list[Run]] = defaultdict(list)
    for run in runs:
        for out in run.inputs_of:
            made_by[out].append(run)
    for found in made_by.values():
        found.sort(key=lambda r: (r.start_time, r.run_id))
    return dict(made_by)


def producer(made_by: Mapping[FileRef, list[Run]], file: FileRef, before: Run) -> Run | None:
    """The newest run that output ``file`` and started before ``before`` (its consumer):
    a later run that happened to write the same bytes cannot have fed it."""
    key = (before.start_time, before.run_id)
    earlier = [r for r in made_by.get(file, ()) if (r.start_time, r.run_id) < key]
    return earlier[-1] if earlier else None


def find_target(made_by: Mapping[FileRef, list[Run]], sha256: str, path: str | None = None
                ) -> tuple[FileRef, Run]:
    """The recorded output with ``sha256`` and its newest producer: at ``path`` when
    recorded there, else anywhere (a model directory may have been copied or moved)."""
    if path is not None and FileRef(path, sha256) in made_by:
        return FileRef(path, sha256), made_by[FileRef(path, sha256)][-1]
    found = [(f, runs[-1]) for f, runs in made_by.items() if f.sha256 == sha256]
    if not found:
        where = f"{path} " if path else ""
        raise LineageError(f"no recorded run produced {where}(sha256 {sha256}): "
                           "it was not made by a tracked pipeline stage")
    return max(found, key=lambda fr: (fr[1].start_time, fr[1].run_id, fr[0].path))


@dataclass
class Walk:
    """The files on the path: what each run contributes, and who fed each run's inputs."""

    outputs: dict[str, set[FileRef]] = field(default_factory=lambda: defaultdict(set))
    fed_by: dict[tuple[str, FileRef], str | None] = field(default_factory=dict)

    def feeds(self) -> dict[str, set[str]]:
        """run id -> the run ids that produced its inputs on the path."""
        found: dict[str, set[str]] = defaultdict(set)
        for (consumer, _), source in self.fed_by.items():
            if source is not None:
                found[consumer].add(source)
        return found


def walk(made_by: Mapping[FileRef, list[Run]], target: FileRef, made: Run) -> Walk:
    """Follow the edges from ``target`` (made by ``made``) back to files no run produced."""
    result = Walk()
    todo, seen = [(target, made)], {(target, made.run_id)}
    while todo:
        file, run = todo.pop()
        result.outputs[run.run_id].add(file)
        for parent in run.inputs_of[file]:
            source = producer(made_by, parent, before=run)
            result.fed_by[(run.run_id, parent)] = source.run_id if source else None
            if source is not None and (parent, source.run_id) not in seen:
                seen.add((parent, source.run_id))
                todo.append((parent, source))
    return result


def depths(target_run: str, feeds: Mapping[str, set[str]]) -> dict[str, int]:
    """Longest distance of each run from the model's run (so pretrain < bucket < tokenize)."""
    depth: dict[str, int] = {}

    def visit(run_id: str, d: int) -> None:
        # feeds is acyclic: a producer always started before its consumer
        if depth.get(run_id, -1) >= d:
            return
        depth[run_id] = d
        for parent in sorted(feeds.get(run_id, ())):
            visit(parent, d + 1)

    visit(target_run, 0)
    return depth


def trace(runs: Iterable[Mapping[str, Any]], target_sha256: str, target_path: str | None = None,
          raw_stage: str = RAW_STAGE) -> dict[str, Any]:
    """The chain from the file ``target_sha256`` back to the raw shards, as a JSON-able dict.

    ``stages``: one entry per run on the path, the model's run first, each with its
    params, git commit and the inputs/outputs it contributes (each input names the run
    that produced it, or None). ``raw_shards``: the raw shards on the path with their
    sha256, md5 and the source files (distribution ``name==version``) they came from.
    """
    parsed = [Run.from_mapping(r) for r in runs]
    made_by = producers(parsed)
    target, made = find_target(made_by, target_sha256, target_path)
    path = walk(made_by, target, made)
    by_id = {r.run_id: r for r in parsed}
    depth = depths(made.run_id, path.feeds())
    order = sorted(path.outputs, key=lambda rid: (depth[rid], by_id[rid].stage,
                                                  by_id[rid].start_time, rid))
    stages = [_stage_entry(by_id[rid], path) for rid in order]
    raw = [_raw_entry(by_id[rid], f, path) for rid in order if by_id[rid].stage == raw_stage
           for f in sorted(path.outputs[rid])]
    return {"model": {"path": target.path, "sha256": target.sha256, "run_id": made.run_id,
                      "stage": made.stage},
            "stages": stages, "raw_shards": sorted(raw, key=lambda r: (r["path"], r["run_id"]))}


def _stage_entry(run: Run, path: Walk) -> dict[str, Any]:
    outs = path.outputs[run.run_id]
    ins = sorted({p for o in outs for p in run.inputs_of[o]})
    rec = run.record
    return {
        "stage": run.stage, "run_id": run.run_id, "parent_run_id": rec.get("parent_run_id") or None,
        "started": _iso(run.start_time), "git_commit": rec.get("git_commit") or None,
        "params": dict(sorted((rec.get("params") or {}).items())),
        "inputs": [{"path": p.path, "sha256": p.sha256,
                    "from_run": path.fed_by[(run.run_id, p)]} for p in ins],
        "outputs": [{"path": o.path, "sha256": o.sha256} for o in sorted(outs)],
    }


def _raw_entry(run: Run, shard: FileRef, path: Walk) -> dict[str, Any]:
    datasets = run.record.get("datasets") or []
    raw = _dataset(datasets, "raw", shard.sha256, _relpath_stems(shard.path))
    sources = []
    for src in run.inputs_of[shard]:
        ds = _dataset(datasets, "source", src.sha256)
        name = (ds or {}).get("name", "")
        sources.append({"path": src.path, "sha256": src.sha256,
                        "distribution": name[len(DIST_PREFIX):] if name.startswith(DIST_PREFIX) else None,
                        "uri": (ds or {}).get("uri"),
                        "md5": (ds or {}).get("digest"),
                        "from_run": path.fed_by[(run.run_id, src)]})
    return {"path": shard.path, "sha256": shard.sha256, "md5": (raw or {}).get("digest"),
            "run_id": run.run_id, "sources": sources, "dvc": None}


def _dataset(datasets: Sequence[Mapping[str, Any]], context: str, sha256: str,
             names: Sequence[str] = ()) -> Mapping[str, Any] | None:
    """The dataset input of ``context`` with this sha256 (one of ``names`` breaking ties)."""
    found = [d for d in datasets if d.get("context") == context and d.get("sha256") == sha256]
    named = [d for d in found if d.get("name") in names]
    return named[0] if named else found[0] if found else None


def _relpath_stems(path: str) -> tuple[str, str]:
    """The names ingest may have given a raw shard: ``data/raw/c4/part-00000.parquet`` ->
    ``c4/part-00000``, or for a language partition ``wikipedia/de/part-00000``."""
    parts = path.replace("\\", "/").removesuffix(".parquet").split("/")
    return "/".join(parts[-2:]), "/".join(parts[-3:])


def _iso(ms: int) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- DVC -------------------------------------------------------------------------------

def attach_dvc(report: dict[str, Any], outs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Give each raw shard the dvc.lock output (stage, path, md5) holding it.

    ``outs``: one mapping per dvc.lock output: ``{"stage", "path", "md5", "files"}``,
    ``files`` being the directory manifest ``{relpath: md5}`` (None when the manifest is
    not in the DVC cache; a file output has ``files = {"": md5}``). A shard gets the
    entry only when the manifest lists it with the md5 MLflow recorded, so a lock
    written after the shard changed is never attributed to it.
    """
    for shard in report["raw_shards"]:
        shard["dvc"] = _dvc_entry(shard["path"], shard.get("md5"), outs)
    return report


def _dvc_entry(path: str, md5: str | None, outs: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    if not md5:
        return None
    norm = path.replace("\\", "/").strip("/")
    for out in sorted(outs, key=lambda o: -len(str(o["path"]))):  # the innermost output first
        root = str(out["path"]).replace("\\", "/").strip("/")
        if norm == root:
            rel = ""
        elif norm.startswith(root + "/"):
            rel = norm[len(root) + 1:]
        else:
            continue
        files = out.get("files")
        if files is not None and files.get(rel) == md5:
            return {"stage": str(out["stage"]), "out": root, "md5": str(out["md5"])}
        return None
    return None


# --- text ------------------------------------------------------------------------------

def render(report: Mapping[str, Any], width: int = 100) -> str:
    """The report as text: the model, each stage run (model first), then the raw shards."""
    model = report["model"]
    lines = [f"lineage of {model['path']}", f"  sha256 {model['sha256']}"]
    if model.get("logged_model_id"):
        lines.append(f"  logged model {model['logged_model_id']}")
    if "in_checkout" in model:
        head = (report.get("checkout") or {}).get("git_head")
        lines.append(f"  in this checkout: {'yes' if model['in_checkout'] else 'no'}"
                     + (f" (git HEAD {head})" if head else ""))
    lines.append("")
    lines.append(f"stages ({len(report['stages'])} runs, the model's first):")
    for st in report["stages"]:
        lines += _render_stage(st, width)
    lines.append("")
    lines.append(f"raw shards ({len(report['raw_shards'])}):")
    for shard in report["raw_shards"]:
        lines += _render_shard(shard)
    return "\n".join(lines) + "\n"


def _render_stage(st: Mapping[str, Any], width: int) -> list[str]:
    lines = [f"  {st['stage']}  run {st['run_id']}"
             + (f"  parent {st['parent_run_id']}" if st.get("parent_run_id") else "")
             + (f"  {st['started']}" if st.get("started") else ""),
             f"    git commit {st.get('git_commit') or 'unknown'}"]
    params = " ".join(f"{k}={v}" for k, v in st["params"].items()) or "(none recorded)"
    lines += textwrap.wrap(params, width, initial_indent="    params  ", subsequent_indent=" " * 12,
                           break_on_hyphens=False)
    for i, f in enumerate(st["inputs"]):
        origin = f"<- run {f['from_run']}" if f["from_run"] else "(no recorded run made it)"
        lines.append(f"    {'in ' if i == 0 else '   '}     {f['path']}  {f['sha256']}  {origin}")
    for i, f in enumerate(st["outputs"]):
        lines.append(f"    {'out' if i == 0 else '   '}     {f['path']}  {f['sha256']}")
    return lines


def _render_shard(shard: Mapping[str, Any]) -> list[str]:
    md5 = shard.get("md5") or "unknown"
    lines = [f"  {shard['path']}", f"    sha256 {shard['sha256']}  md5 {md5}  run {shard['run_id']}"]
    for src in shard["sources"]:
        name = src.get("distribution") or "file"
        lines.append(f"    from {name}  {src.get('uri') or src['path']}  sha256 {src['sha256']}")
    dvc = shard.get("dvc")
    if dvc:
        lines.append(f"    dvc  {dvc['out']} {dvc['md5']} (dvc.lock stage {dvc['stage']})")
    return lines
