"""Per-shard tokenization into spill files, and the token-file writer."""

import numpy as np
import pytest

from redrobe.curriculum.layout import SPLIT_TRAIN, SPLIT_VAL, memmap_tokens
from redrobe.curriculum.split import is_validation
from redrobe.curriculum.tokens import (
    EMPTY_AFTER_TOKENIZE,
    ShardTask,
    TokenFileWriter,
    batched,
    tokenize_shard,
)
from redrobe.documents import Document, ShardWriter
from redrobe.tokenizer import document_encoder, encode_texts, train_bpe

SEED, FRACTION = 1234, 0.3
TEXTS = [f"record {i}: some words repeat, some words don't ({i * i})" for i in range(40)]


@pytest.fixture
def shard(tmp_path):
    tok = train_bpe(iter(TEXTS), vocab_size=300, min_frequency=2)
    tok.save(str(tmp_path / "tokenizer.json"))
    with ShardWriter(tmp_path / "part-00000.parquet", batch_size=7) as w:
        for i, text in enumerate(TEXTS[:20]):
            w.write(Document(id=f"d{i:02d}", text=text, source="books"))
        w.write(Document(id="empty", text="", source="books"))
    return tmp_path


def task(root, batch_docs=4):
    return ShardTask(shard=str(root / "part-00000.parquet"), slice="books", index=3,
                     tokenizer=str(root / "tokenizer.json"), spill=str(root / "spill.bin"),
                     vocab_size=300, val_threshold=FRACTION, seed=SEED, batch_docs=batch_docs)


def test_batched():
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batched([], 3)) == []


def test_every_document_lands_in_the_spill_or_is_removed(shard):
    result = tokenize_shard(task(shard))
    spill = memmap_tokens(shard / "spill.bin", np.dtype("<u2"))
    encoder = document_encoder(shard / "tokenizer.json")
    assert [r.id for r in result.records] == [f"d{i:02d}" for i in range(20)]
    offset = 0
    for rec, text in zip(result.records, TEXTS):
        assert (rec.offset, rec.shard, rec.slice) == (offset, 3, "books")
        tokens = spill[rec.offset:rec.offset + rec.tokens]
        assert encoder.decode(tokens.tolist()) == text
        assert rec.bytes == len(text.encode())
        assert rec.split == (SPLIT_VAL if is_validation(rec.id, FRACTION, SEED) else SPLIT_TRAIN)
        offset += rec.tokens
    assert len(spill) == offset
    assert [d.id for d in result.removed] == ["empty"]
    assert result.removed[0].extra["reason"] == EMPTY_AFTER_TOKENIZE
    counts = result.ledger.as_dict()["slices"]["books"]
    assert (counts["in"], counts["out"], counts["removed_by_reason"]) == (21, 20, {EMPTY_AFTER_TOKENIZE: 1})


def test_unigram_counts_cover_the_training_split_only(shard):
    result = tokenize_shard(task(shard))
    encoder = document_encoder(shard / "tokenizer.json")
    train = [t for i, t in enumerate(TEXTS[:20]) if not is_validation(f"d{i:02d}", FRACTION, SEED)]
    assert 0 < len(train) < 20  # the fixture really has both splits
    expected = np.bincount(np.concatenate(encode_texts(encoder, train)), minlength=300)
    assert result.counts.tolist() == expected.tolist()


def test_batch_size_does_not_change_the_result(shard):
    a = tokenize_shard(task(shard, batch_docs=1))
    spill_a = (shard / "spill.bin").read_bytes()
    b = tokenize_shard(task(shard, batch_docs=64))
    assert a.records == b.records and spill_a == (shard / "spill.bin").read_bytes()


def test_token_file_writer_appends_eos_after_each_document(tmp_path):
    path = tmp_path / "t.bin"
    with TokenFileWriter(path, np.dtype("<u2"), eos_id=1) as w:
        assert w.append(np.array([5, 6, 7])) == 0
        assert w.append(np.array([], dtype=np.int64)) == 4
        assert w.append(np.array([9])) == 5
    assert (w.tokens, w.docs) == (7, 3)
    assert np.fromfile(path, dtype="<u2").tolist() == [5, 6, 7, 1, 1, 9, 1]
