"""Stage `bucket`: difficulty-ordered curriculum buckets of token ids, plus validation.

    redrobe bucket --params params.yaml --input data/interim/dedup \
        --tokenizer data/models/tokenizer --output data/processed/buckets \
        --metrics data/metrics/bucket.json

1. Tokenize every shard (``redrobe.parallel`` executor, ``shared.workers``) into a
   spill file inside the atomic output dir; count the training split's tokens.
2. Score each document with ``bucket.score`` (unigram_surprisal, length,
   rare_word_rate, compression_ratio or reference_ppl: curriculum/difficulty.py)
   fitted on the training split, cut the training scores into ``bucket.num_buckets`` quantile buckets
   (curriculum/buckets.py) and write ``bucket-NN.bin`` in (score, id) order, each
   partition's validation documents (``is_validation``) to ``val-<slice>.bin`` in id
   order (a language partition ``<slice>/<language>``: ``val-<slice>.<language>.bin``),
   ``docs.parquet`` and ``index.json`` (contract: curriculum/layout.py).
   Every step is a map of per-shard or per-partition tasks whose files stay in the
   spill dir (curriculum/partitioned.py): no process holds the corpus' documents.
3. Documents that tokenize to nothing are removed (reason ``empty_after_tokenize``)
   into ``removed.parquet``. Accounting per partition: in = out (train + val) + removed.

``--tokenizer`` and ``--output`` may be fsspec URLs: the tokenizer is read from a
verified local copy (``--fetch-cache``), and a URL output is built in a local staging
directory (the spill and token files are memory-mapped) and published to it, its
manifest written last (:func:`redrobe.documents.atomic_dirs`, ``build_locally``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from redrobe.accounting import Ledger
from redrobe.config import Params
from redrobe.curriculum.build import TokenSpec
from redrobe.curriculum.difficulty import SCORES, ScoreOptions
from redrobe.curriculum.layout import INDEX_FILE
from redrobe.curriculum.partitioned import Work, build_partitioned, tokenize_task
from redrobe.curriculum.select import Mapper
from redrobe.curriculum.split import split_thresholds
from redrobe.curriculum.tokens import ShardTask
from redrobe.documents import atomic_dir, count_documents, list_shards, partition_of
from redrobe.errors import InputError
from redrobe.parallel import Executor, executor_for
from redrobe.progress import countable_total, documents_seen, map_tracked
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
from redrobe.storage import location
from redrobe.tokenizer import document_encoder, special_ids, tokenizer_file

if TYPE_CHECKING:
    from redrobe.tracking import Tracker

STAGE = "bucket"
SPILL_DIR = ".spill"


def build_parser() -> argparse.ArgumentParser:
    p = parser(STAGE, __doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="deduplicated shards (<input>/<slice>/part-*.parquet)")
    p.add_argument("--tokenizer", required=True,
                   help="tokenizer directory, tokenize stage output (a path or URL)")
    p.add_argument("--output", required=True,
                   help="buckets directory: index.json, *.bin, docs.parquet (a path or URL)")
    add_fetch_cache(p)
    return p


def _token_spec(tokenizer_json: Path) -> TokenSpec:
    if not tokenizer_json.is_file():
        raise InputError(f"{tokenizer_json}: not found (run the tokenize stage first)")
    encoder = document_encoder(tokenizer_json)
    ids = special_ids(encoder)
    if ids["eos"] is None or ids["bos"] is None:
        raise InputError(f"{tokenizer_json}: no <s>/</s> special tokens")
    return TokenSpec(vocab_size=encoder.get_vocab_size(), bos_id=ids["bos"], eos_id=ids["eos"])


def _tasks(shards: Sequence[Path], root: str, tokenizer_json: Path, spill_dir: Path,
           spec: TokenSpec, params: Params, executor: Executor) -> list[ShardTask]:
    """One task per shard; ``slice`` is its partition (a slice, or ``<slice>/<language>``)."""
    sh = params.shared
    thresholds = split_thresholds(shards, sh.val_fraction, sh.seed, sh.min_val_docs, executor.map,
                                  root=root)
    partitions = [partition_of(s, root) for s in shards]
    return [ShardTask(shard=str(s), slice=part, index=i, tokenizer=str(tokenizer_json),
                      spill=str(spill_dir / f"{i:05d}.bin"), vocab_size=spec.vocab_size,
                      val_threshold=thresholds[part], seed=sh.seed,
                      batch_docs=sh.batch_docs,
                      compress=SCORES[params.bucket.score].needs_text)
            for i, (s, part) in enumerate(zip(shards, partitions))]


def run(params: Params, args: argparse.Namespace, tracker: Tracker) -> dict[str, Any]:
    shards = list_shards(args.input)
    if not shards:
        raise InputError(f"{args.input}: no shards (<slice>/part-*.parquet) found")
    tokenizer_json = tokenizer_file(fetched(args, "tokenizer").tokenizer)
    spec = _token_spec(tokenizer_json)
    output = location(args.output)
    executor = executor_for(params.shared)
    # token arrays are memory-mapped and concatenated in place: a URL output is built in
    # a local folder and published to it, committed by its manifest last
    with atomic_dir(output, build_locally=True) as tmp:
        tasks = _tasks(shards, args.input, tokenizer_json, tmp / SPILL_DIR, spec, params, executor)
        (tmp / SPILL_DIR).mkdir()
        total_docs = countable_total(count_documents, shards)
        bp = params.bucket
        with reporter(STAGE, len(tasks), items_total=total_docs) as progress:
            built = build_partitioned(
                tmp, tasks, spec, bp.score,
                ScoreOptions(rare_mass=bp.rare_mass, reference_lambda=bp.reference_lambda),
                bp.num_buckets, Work(str(tmp / SPILL_DIR)), _tracked(executor, progress),
                params.shared.batch_docs, input_name=str(args.input))
        shutil.rmtree(tmp / SPILL_DIR)
    log_lineage(tracker, STAGE, _lineage_pairs(shards, tokenizer_json, output, built.files_by_shard),
                committed=[args.input, args.output])
    log_output(tracker, args.output, "buckets", INDEX_FILE)
    return _metrics(built.ledger, built.index)


def _tracked(executor: Executor, progress: Any) -> Mapper:
    """``executor.map`` that reports the tokenize step's shards (the long one) as they finish."""
    def mapper(fn: Any, tasks: Sequence[Any]) -> list[Any]:
        if fn is tokenize_task:
            return map_tracked(executor, fn, tasks, progress, items=lambda r: documents_seen(r.ledger))
        return executor.map(fn, tasks)
    return mapper


def _metrics(ledger: Ledger, index: dict[str, Any]) -> dict[str, Any]:
    slice_tokens: dict[str, dict[str, int]] = {}
    for name in sorted(ledger.slices):
        train = sum(b["tokens_by_slice"].get(name, 0) for b in index["buckets"])
        val = index["val"].get(name, {}).get("tokens", 0)
        slice_tokens[name] = {"train": train, "val": val}
    return metrics_payload(
        STAGE, ledger, vocab_size=index["vocab_size"], dtype=index["dtype"],
        num_buckets=index["num_buckets"], score=index["score"], score_edges=index["score_edges"],
        bucket_tokens={b["name"]: b["tokens"] for b in index["buckets"]},
        bucket_docs={b["name"]: b["docs"] for b in index["buckets"]},
        slice_tokens=slice_tokens,
        tokens={"train": sum(b["tokens"] for b in index["buckets"]),
                "val": sum(v["tokens"] for v in index["val"].values())})


def _lineage_pairs(shards: Sequence[Path], tokenizer_json: Path, output: Path,
                   files: dict[int, set[str]]) -> list[tuple[Path, Path]]:
    """Input shard -> each file its documents went to; tokenizer -> index."""
    pairs = [(shard, output / f) for i, shard in enumerate(shards) for f in sorted(files.get(i, ()))]
    return pairs + [(tokenizer_json, output / INDEX_FILE)]


def main(argv: Sequence[str] | None = None) -> int:
    return execute(STAGE, argv, build_parser, run)


if __name__ == "__main__":
    raise SystemExit(main())
