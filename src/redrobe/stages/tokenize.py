"""Stage `tokenize`: train the byte-level BPE tokenizer on the training split.

    redrobe tokenize --params params.yaml --input data/interim/dedup \
        --gate data/processed/quality --output data/models/tokenizer \
        --metrics data/metrics/tokenize.json

Refuses to run unless the quality gate passed (``<gate>/validation.json`` with
``"success": true``). Streams the training split (``is_validation`` false; at most
``tokenize.max_train_docs`` documents, a uniform sample when capped, see
curriculum/subsample.py) into the BPE trainer, saves HF files into ``--output`` (an
atomic directory) and measures compression (UTF-8 bytes per token) on each slice's
validation split. Accounting per slice: in = documents read, out = documents the
tokenizer trained on, removed = held-out validation / over the cap.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.curriculum.split import is_validation, split_point, split_thresholds
from redrobe.curriculum.subsample import Key, cap_cutoff, sample_key, within_cap
from redrobe.curriculum.tokens import encode_documents
from redrobe.documents import atomic_dir, count_documents, file_digest, list_shards, read_documents
from redrobe.errors import GateError, InputError
from redrobe.stages.common import execute, log_lineage, metrics_payload, parser
from redrobe.stages.common import progress as reporter
from redrobe.tokenizer import document_encoder, save_tokenizer, tokenizer_file, train_tokenizer

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

STAGE = "tokenize"
GATE_FILE = "validation.json"
#: removal reasons (documents read but not trained on)
HELDOUT_VALIDATION = "heldout_validation"
OVER_MAX_TRAIN_DOCS = "over_max_train_docs"


def build_parser() -> argparse.ArgumentParser:
    p = parser(STAGE, __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="deduplicated shards (<input>/<slice>/part-*.parquet)")
    p.add_argument("--gate", required=True, help="quality stage output dir (holds validation.json)")
    p.add_argument("--output", required=True, help="tokenizer directory (HF files)")
    return p


def check_gate(gate_dir: str | Path) -> None:
    """Raise GateError unless ``<gate_dir>/validation.json`` says ``"success": true``."""
    path = Path(gate_dir) / GATE_FILE
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"{path}: not found (run the quality stage first)") from None
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: unreadable: {exc}") from None
    if not isinstance(report, dict) or report.get("success") is not True:
        success = report.get("success") if isinstance(report, dict) else None
        raise GateError(f"{path}: success is {success!r}; the data did not pass the quality gate")


def _training_keys(shards: Sequence[Path], params: Params,
                   thresholds: dict[str, float]) -> Iterator[Key]:
    sh = params.shared
    for shard in shards:
        for doc in read_documents(shard, sh.batch_docs):
            if not is_validation(doc.id, thresholds[shard.parent.name], sh.seed):
                yield sample_key(split_point(doc.id, sh.seed), doc.id)


def _training_texts(shards: Iterable[Path], params: Params, thresholds: dict[str, float],
                    cutoff: Key | None, ledger: Ledger) -> Iterator[str]:
    """Texts of the (capped) training split; records every document in ``ledger``."""
    sh = params.shared
    for shard in shards:
        slice_name = shard.parent.name
        for doc in read_documents(shard, sh.batch_docs):
            text = doc.text or ""
            ledger.seen(slice_name, len(text))
            if is_validation(doc.id, thresholds[slice_name], sh.seed):
                ledger.removed(slice_name, HELDOUT_VALIDATION)
            elif not within_cap(sample_key(split_point(doc.id, sh.seed), doc.id), cutoff):
                ledger.removed(slice_name, OVER_MAX_TRAIN_DOCS)
            else:
                ledger.kept(slice_name, len(text))
                yield text


def _validation_compression(tokenizer_json: Path, shards: Iterable[Path], params: Params,
                            thresholds: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per slice: validation docs, UTF-8 bytes, tokens and bytes per token."""
    sh = params.shared
    encoder = document_encoder(tokenizer_json)
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: {"docs": 0, "bytes": 0, "tokens": 0})
    for shard in shards:
        s = stats[shard.parent.name]
        docs = (d for d in read_documents(shard, sh.batch_docs)
                if is_validation(d.id, thresholds[shard.parent.name], sh.seed))
        for doc, ids in encode_documents(encoder, docs, sh.batch_docs):
            s["docs"] += 1
            s["bytes"] += len((doc.text or "").encode("utf-8"))
            s["tokens"] += len(ids)
    for s in stats.values():
        s["bytes_per_token"] = round(s["bytes"] / s["tokens"], 6) if s["tokens"] else None
    return dict(sorted(stats.items()))


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    check_gate(args.gate)
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards (<slice>/part-*.parquet) found")
    cfg, sh = params.tokenize, params.shared
    thresholds = split_thresholds(shards, sh.val_fraction, sh.seed, sh.min_val_docs)
    cutoff = None
    docs = sum(count_documents(s) for s in shards)  # cheap: footer only
    if docs > cfg.max_train_docs:
        cutoff = cap_cutoff(_training_keys(shards, params, thresholds), cfg.max_train_docs)
    ledger = Ledger()
    output = Path(args.output)
    with atomic_dir(output) as tmp:
        with reporter(f"{STAGE} train", len(shards), items_total=docs) as progress:
            texts = _training_texts(progress.track(shards, items=count_documents), params,
                                    thresholds, cutoff, ledger)
            tok = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
        save_tokenizer(tok, tmp)
        with reporter(f"{STAGE} validation", len(shards), items_total=docs) as progress:
            validation = _validation_compression(
                tokenizer_file(tmp), progress.track(shards, items=count_documents), params,
                thresholds)
    digest = file_digest(tokenizer_file(output))
    files = sorted(output.glob("*.json"))  # tokenizer.json, tokenizer_config.json, ...
    log_lineage(tracker, STAGE, [(s, f) for s in shards for f in files])
    tracker.set_tags({"redrobe.tokenizer_digest": digest})
    tracker.log_artifact(output, "tokenizer")
    return metrics_payload(
        STAGE, ledger, vocab_size=len(tok), vocab_size_target=cfg.vocab_size,
        train_docs=sum(s.docs_out for s in ledger.slices.values()),
        capped=cutoff is not None, tokenizer_digest=digest,
        bytes_per_token={k: v["bytes_per_token"] for k, v in validation.items()},
        validation=validation)


def main(argv: Sequence[str] | None = None) -> int:
    return execute(STAGE, argv, build_parser, run)


if __name__ == "__main__":
    raise SystemExit(main())
