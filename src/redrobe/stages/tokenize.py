"""Stage `tokenize`: train the byte-level BPE tokenizer on the training split.

    redrobe tokenize --params params.yaml --input data/interim/dedup \
        --gate data/processed/quality --output data/models/tokenizer \
        --metrics data/metrics/tokenize.json

Refuses to run unless the quality gate passed (``<gate>/validation.json`` with
``"success": true``). Streams the training split (``is_validation`` false; at most
``tokenize.max_train_docs`` documents, a uniform sample when capped, see
curriculum/subsample.py) into the BPE trainer, saves HF files into ``--output`` (an
atomic directory) and measures compression (UTF-8 bytes per token) on each partition's
validation split (a slice, or ``<slice>/<language>`` of a slice routed by language),
and on the same documents ``fertility``: tokens per word and per character for each
language of the ``language`` column (redrobe.fertility).

``--gate`` and ``--output`` may be fsspec URLs: the gate is read from a verified local
copy (``--fetch-cache``, :func:`redrobe.storage.fetch_tree`), and a URL output is built
in a local staging directory and published to it, its manifest written last.

Every pass over the corpus is a map of per-shard tasks (``redrobe.parallel``,
``shared.workers``): the split thresholds (curriculum/split.py), the cap's cutoff
(curriculum/subsample.py), the sample (each task writes its shard's sampled texts to
a work file, which the driver then streams to the trainer in shard order) and the
validation compression. Accounting per partition: in = documents read, out = documents the
tokenizer trained on, removed = held-out validation / over the cap.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.curriculum.split import is_validation, split_point, split_thresholds
from redrobe.curriculum.subsample import Key, partitioned_cutoff, sample_key, within_cap
from redrobe.curriculum.tokens import encode_documents
from redrobe.documents import (
    Document,
    ShardWriter,
    atomic_dir,
    count_documents,
    list_shards,
    partition_of,
    read_documents,
)
from redrobe.errors import GateError, InputError
from redrobe.fertility import Fertility, document_language
from redrobe.parallel import executor_for
from redrobe.progress import map_tracked
from redrobe.stages.common import (
    add_fetch_cache,
    execute,
    fetched,
    log_lineage,
    log_output,
    metrics_payload,
    parser,
)
from redrobe.stages.common import progress as reporter
from redrobe.storage import join, location, manifest_digests
from redrobe.tokenizer import (
    TOKENIZER_FILE,
    document_encoder,
    save_tokenizer,
    tokenizer_file,
    train_tokenizer,
)

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

STAGE = "tokenize"
GATE_FILE = "validation.json"
#: removal reasons (documents read but not trained on)
HELDOUT_VALIDATION = "heldout_validation"
OVER_MAX_TRAIN_DOCS = "over_max_train_docs"
#: inside the atomic output dir while it is built: sorted points, sampled texts
WORK_DIR = ".work"


def build_parser() -> argparse.ArgumentParser:
    p = parser(STAGE, __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="deduplicated shards (<input>/<slice>/part-*.parquet)")
    p.add_argument("--gate", required=True,
                   help="quality stage output dir holding validation.json (a path or URL)")
    p.add_argument("--output", required=True, help="tokenizer directory, HF files (a path or URL)")
    add_fetch_cache(p)
    return p


def check_gate(gate_dir: str | Path, shown: str = "") -> None:
    """Raise GateError unless ``<gate_dir>/validation.json`` says ``"success": true``;
    messages name ``<shown>/validation.json`` when given (the URL a local copy came from)."""
    local = Path(gate_dir) / GATE_FILE
    path = join(shown, GATE_FILE) if shown else local
    try:
        report = json.loads(local.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"{path}: not found (run the quality stage first)") from None
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: unreadable: {exc}") from None
    if not isinstance(report, dict) or report.get("success") is not True:
        success = report.get("success") if isinstance(report, dict) else None
        raise GateError(f"{path}: success is {success!r}; the data did not pass the quality gate")


@dataclass(frozen=True)
class ShardSplit:
    """One shard of the training or validation pass (paths and numbers, no data)."""

    shard: str
    threshold: float          # its partition's split threshold
    seed: int
    batch_docs: int
    cutoff: Key | None = None
    texts: str = ""           # training pass: where its sampled texts go
    tokenizer: str = ""       # validation pass: the trained tokenizer.json
    partition: str = ""       # its slice or <slice>/<language> ("": its folder's name)

    @property
    def name(self) -> str:
        return self.shard

    @property
    def slice(self) -> str:
        return self.partition or Path(self.shard).parent.name


def sample_texts(task: ShardSplit) -> Ledger:
    """Write the shard's (capped) training texts to ``task.texts``; account every doc."""
    ledger, name = Ledger(), task.slice
    with ShardWriter(task.texts, task.batch_docs) as out:
        for doc in read_documents(task.shard, task.batch_docs):
            text = doc.text or ""
            ledger.seen(name, len(text))
            if is_validation(doc.id, task.threshold, task.seed):
                ledger.removed(name, HELDOUT_VALIDATION)
            elif not within_cap(sample_key(split_point(doc.id, task.seed), doc.id), task.cutoff):
                ledger.removed(name, OVER_MAX_TRAIN_DOCS)
            else:
                ledger.kept(name, len(text))
                out.write(Document(id=doc.id, text=text, source=doc.source))
    return ledger


def _sampled_texts(tasks: Sequence[ShardSplit]) -> Iterator[str]:
    """The sampled texts in shard order, one batch of one file in memory at a time."""
    for task in tasks:
        for doc in read_documents(task.texts, task.batch_docs):
            yield doc.text or ""


def validation_stats(task: ShardSplit) -> dict[str, Any]:
    """The shard's validation docs, UTF-8 bytes and tokens; words and characters per
    language under ``fertility`` (redrobe.fertility)."""
    encoder = document_encoder(task.tokenizer)
    stats: dict[str, Any] = {"docs": 0, "bytes": 0, "tokens": 0, "fertility": Fertility()}
    docs = (d for d in read_documents(task.shard, task.batch_docs)
            if is_validation(d.id, task.threshold, task.seed))
    for doc, ids in encode_documents(encoder, docs, task.batch_docs):
        stats["docs"] += 1
        stats["bytes"] += len((doc.text or "").encode("utf-8"))
        stats["tokens"] += len(ids)
        stats["fertility"].add(document_language(doc), doc.text or "", len(ids))
    return stats


def _compression(tasks: Sequence[ShardSplit],
                 found: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per slice: validation docs, UTF-8 bytes, tokens and bytes per token."""
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {"docs": 0, "bytes": 0, "tokens": 0})
    for task, shard in zip(tasks, found):
        for key in ("docs", "bytes", "tokens"):
            stats[task.slice][key] += shard[key]
    for s in stats.values():
        s["bytes_per_token"] = round(s["bytes"] / s["tokens"], 6) if s["tokens"] else None
    return dict(sorted(stats.items()))


def _docs_seen(ledger: Ledger) -> int:
    return sum(c.docs_in for c in ledger.slices.values())


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    check_gate(fetched(args, "gate").gate, shown=args.gate)
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards (<slice>/part-*.parquet) found")
    cfg, sh = params.tokenize, params.shared
    executor = executor_for(sh)
    partitions = [partition_of(s, args.input) for s in shards]
    thresholds = split_thresholds(shards, sh.val_fraction, sh.seed, sh.min_val_docs, executor.map,
                                  root=args.input)
    docs = sum(count_documents(s) for s in shards)  # cheap: footer only
    output = location(args.output)
    # the BPE trainer saves to a local folder: a URL output is built locally, then published
    with atomic_dir(output, build_locally=True) as tmp:
        work = tmp / WORK_DIR
        cutoff = None
        if docs > cfg.max_train_docs:
            cutoff = partitioned_cutoff(shards, thresholds, sh.seed, cfg.max_train_docs,
                                        work / "points", executor.map, partitions)
        tasks = [ShardSplit(str(s), thresholds[part], sh.seed, sh.batch_docs, cutoff,
                            texts=str(work / "texts" / f"{i:06d}.parquet"), partition=part)
                 for i, (s, part) in enumerate(zip(shards, partitions))]
        with reporter(f"{STAGE} sample", len(tasks), items_total=docs) as progress:
            ledgers = map_tracked(executor, sample_texts, tasks, progress, items=_docs_seen)
        ledger = Ledger()
        for one in ledgers:   # task order: the same whatever the worker count
            ledger.merge(one)
        tok = train_tokenizer(_sampled_texts(tasks), cfg.vocab_size, cfg.min_frequency)
        save_tokenizer(tok, tmp)
        shutil.rmtree(work)
        val_tasks = [dataclasses.replace(t, texts="", tokenizer=str(tokenizer_file(tmp)))
                     for t in tasks]
        with reporter(f"{STAGE} validation", len(tasks)) as progress:
            found = map_tracked(executor, validation_stats, val_tasks, progress)
            validation = _compression(val_tasks, found)
    digest = manifest_digests(output)[str(output / TOKENIZER_FILE)]   # not read back from a bucket
    files = sorted(output.glob("*.json"))  # tokenizer.json, tokenizer_config.json, ...
    log_lineage(tracker, STAGE, [(s, f) for s in shards for f in files],
                committed=[args.input, args.output])
    tracker.set_tags({"redrobe.tokenizer_digest": digest})
    log_output(tracker, args.output, "tokenizer")
    return metrics_payload(
        STAGE, ledger, vocab_size=len(tok), vocab_size_target=cfg.vocab_size,
        train_docs=sum(s.docs_out for s in ledger.slices.values()),
        capped=cutoff is not None, tokenizer_digest=digest,
        bytes_per_token={k: v["bytes_per_token"] for k, v in validation.items()},
        validation=validation,
        fertility=Fertility.merged(s["fertility"] for s in found).as_dict())


def main(argv: Sequence[str] | None = None) -> int:
    return execute(STAGE, argv, build_parser, run)


if __name__ == "__main__":
    raise SystemExit(main())
