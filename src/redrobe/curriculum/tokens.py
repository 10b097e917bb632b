"""Token streams of documents: per-shard tokenization and token-file writing.

The bucket stage tokenizes each input shard once (:func:`tokenize_shard`, a
picklable unit of work for :func:`redrobe.parallel.map_shards`): the token ids of
every document go, in shard order, to a spill file, and the shard returns only
small per-document records (id, split, offset, length) plus the training split's
unigram counts. Documents are then written in curriculum order by copying slices
of the memory-mapped spill files into ``bucket-NN.bin`` / ``val-<slice>.bin`` with
:class:`TokenFileWriter`, so no stage ever holds the corpus' token arrays in memory.

    result = tokenize_shard(ShardTask(shard=..., slice="books", index=0, ...))
    with TokenFileWriter(path, dtype, eos_id) as out:
        offset = out.append(tokens)          # tokens then eos
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np
from tokenizers import Tokenizer

from redrobe.accounting import Ledger
from redrobe.curriculum.difficulty import compression_ratio
from redrobe.curriculum.layout import SPLIT_TRAIN, SPLIT_VAL, token_dtype
from redrobe.curriculum.split import is_validation
from redrobe.documents import Document, atomic_file, read_documents
from redrobe.tokenizer import document_encoder, encode_texts

#: removal reason: the document has no tokens (empty text), so it cannot be scored
EMPTY_AFTER_TOKENIZE = "empty_after_tokenize"

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_documents(encoder: Tokenizer, docs: Iterable[Document],
                     batch_size: int) -> Iterator[tuple[Document, list[int]]]:
    """(document, token ids) pairs, encoding ``batch_size`` documents at a time."""
    for batch in batched(docs, batch_size):
        yield from zip(batch, encode_texts(encoder, [d.text or "" for d in batch]))


@dataclass(frozen=True)
class ShardTask:
    """What a worker needs to tokenize one shard (paths and numbers, no data)."""
    shard: str
    slice: str              # its partition: a slice, or <slice>/<language>
    index: int              # position of the shard in the stage's sorted shard list
    tokenizer: str          # path of tokenizer.json
    spill: str              # where this shard's token ids are written
    vocab_size: int
    val_threshold: float   # the slice's split threshold (curriculum.split)
    seed: int
    batch_docs: int
    compress: bool = False  # also compute each document's compression ratio (its text)


@dataclass
class DocRecord:
    """One document's place in a spill file (sized by documents, never by tokens)."""
    id: str
    source: str
    slice: str
    split: str
    shard: int
    offset: int             # first token's index in the shard's spill file
    tokens: int
    bytes: int              # UTF-8 bytes of the text (for bits per byte)
    score: float = math.nan
    compression: float = math.nan   # zlib ratio of the text, when the task asked for it


@dataclass
class ShardTokens:
    """What :func:`tokenize_shard` returns: records, removed docs and training counts."""
    task: ShardTask
    counts: np.ndarray
    records: list[DocRecord] = field(default_factory=list)
    removed: list[Document] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)


def tokenize_shard(task: ShardTask) -> ShardTokens:
    """Tokenize one shard into its spill file; count training tokens; account every doc."""
    result = ShardTokens(task=task, counts=np.zeros(task.vocab_size, dtype=np.int64))
    result.records.extend(tokenized(task, result))
    return result


def tokenized(task: ShardTask, result: ShardTokens) -> Iterator[DocRecord]:
    """Write the shard's spill file; yield each kept document's record as it is written,
    and add counts, the ledger and the removed documents to ``result``."""
    encoder = document_encoder(task.tokenizer)
    dtype = token_dtype(task.vocab_size)
    offset = 0
    with atomic_file(task.spill, "wb") as spill:  # a retried task replaces the file whole
        docs = read_documents(task.shard, task.batch_docs)
        for doc, ids in encode_documents(encoder, docs, task.batch_docs):
            text = doc.text or ""
            raw = text.encode("utf-8")
            result.ledger.seen(task.slice, len(text))
            if not ids:
                result.ledger.removed(task.slice, EMPTY_AFTER_TOKENIZE)
                result.removed.append(doc.with_extra(reason=EMPTY_AFTER_TOKENIZE))
                continue
            val = is_validation(doc.id, task.val_threshold, task.seed)
            tokens = np.asarray(ids, dtype=dtype)
            spill.write(tokens.tobytes())
            if not val:
                result.counts += np.bincount(tokens, minlength=task.vocab_size)
            # the partition is the document's source in the buckets' tables: a language
            # partition's validation documents are found under it (curriculum/layout.py)
            yield DocRecord(
                id=doc.id, source=task.slice, slice=task.slice,
                split=SPLIT_VAL if val else SPLIT_TRAIN, shard=task.index, offset=offset,
                tokens=len(ids), bytes=len(raw),
                compression=compression_ratio(raw) if task.compress else math.nan)
            result.ledger.kept(task.slice, len(text))
            offset += len(ids)


class TokenFileWriter:
    """Append documents (tokens, then eos) to a raw little-endian token file."""

    def __init__(self, path: str | os.PathLike, dtype: np.dtype, eos_id: int) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self._eos = np.asarray([eos_id], dtype=self.dtype).tobytes()
        self._fh = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self.tokens = 0   # tokens written, eos included (== file length in tokens)
        self.docs = 0

    def append(self, tokens: np.ndarray) -> int:
        """Write one document and its eos; return the document's token offset."""
        offset = self.tokens
        self._fh.write(np.asarray(tokens, dtype=self.dtype).tobytes())
        self._fh.write(self._eos)
        self.tokens += len(tokens) + 1
        self.docs += 1
        return offset

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> TokenFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
