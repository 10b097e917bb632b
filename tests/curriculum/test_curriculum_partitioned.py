"""The partitioned bucket build equals the one-process write_curriculum, file for file."""

import random
import shutil

import numpy as np
import pytest

from redrobe.curriculum.build import TokenSpec, fit_difficulty, score_documents, write_curriculum
from redrobe.curriculum.difficulty import SCORES, ScoreOptions
from redrobe.curriculum.layout import REMOVED_FILE, memmap_tokens
from redrobe.curriculum.partitioned import Work, build_partitioned
from redrobe.curriculum.tokens import ShardTask, tokenize_shard
from redrobe.documents import Document, ShardWriter, shard_path
from redrobe.errors import InputError
from redrobe.tokenizer import document_encoder, special_ids, train_bpe

WORDS = ["the", "of", "and", "to", "in", "qzx", "vjk", "wyp", "river", "stone"]
LAYOUT = {("books", 0): 23, ("books", 1): 0, ("c4", 0): 31, ("github", 0): 12}


def local_map(fn, tasks):
    return [fn(t) for t in tasks]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng, texts = random.Random(5), []
    paths = []
    for (name, index), n in LAYOUT.items():
        path = shard_path(root / "in", name, index)
        with ShardWriter(path, batch_size=5) as w:
            for i in range(n):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
                texts.append(text)
                w.write(Document(id=f"{name}/{index}/é{i:03d}", text=text, source=name,
                                 meta={"i": i}))
            if index == 0:
                w.write(Document(id=f"{name}/empty", text="", source=name, meta={"n": 1.5}))
        paths.append(path)
    train_bpe(iter(texts), vocab_size=280, min_frequency=2).save(str(root / "tokenizer.json"))
    return root, paths


def shard_tasks(root, paths, spill, score):
    return [ShardTask(shard=str(p), slice=p.parent.name, index=i, tokenizer=str(root / "tokenizer.json"),
                      spill=str(spill / f"{i:05d}.bin"), vocab_size=280,
                      val_threshold={"books": 0.2, "c4": 0.1, "github": 0.3}[p.parent.name], seed=3,
                      batch_docs=4, compress=SCORES[score].needs_text)
            for i, p in enumerate(paths)]


def spec(root):
    ids = special_ids(document_encoder(root / "tokenizer.json"))
    return TokenSpec(vocab_size=280, bos_id=ids["bos"], eos_id=ids["eos"])


def one_process(root, paths, out, score, num_buckets):
    """The stage before it was partitioned: every record in one process."""
    spill = out / ".spill"
    spill.mkdir(parents=True)
    results = [tokenize_shard(t) for t in shard_tasks(root, paths, spill, score)]
    records = [r for res in results for r in res.records]
    counts = sum(res.counts for res in results)
    spills = [memmap_tokens(t.spill, np.dtype("<u2")) for t in (res.task for res in results)]
    scorer = fit_difficulty(score, records, spills, counts, ScoreOptions())
    scores = score_documents(records, spills, scorer)
    index = write_curriculum(out, records, scores, spills, spec(root), num_buckets,
                             ["books", "c4", "github"], score=score)
    with ShardWriter(out / REMOVED_FILE, 4, ("reason",)) as removed:
        for res in results:
            removed.write_all(res.removed)
    del spills
    shutil.rmtree(spill)
    return index


@pytest.mark.parametrize("score,num_buckets,partition_docs", [
    ("unigram_surprisal", 4, 5), ("length", 3, 4), ("reference_ppl", 2, 1000),
    ("compression_ratio", 1, 7)])
def test_partitioned_build_equals_the_one_process_build(corpus, tmp_path, score, num_buckets,
                                                        partition_docs):
    root, paths = corpus
    expected = one_process(root, paths, tmp_path / "old", score, num_buckets)
    out = tmp_path / "new"
    work = out / ".spill"
    built = build_partitioned(out, shard_tasks(root, paths, work, score), spec(root), score,
                              ScoreOptions(), num_buckets, Work(str(work)), local_map, 4,
                              partition_docs=partition_docs)
    shutil.rmtree(work)
    assert built.index == expected
    names = sorted(p.name for p in (tmp_path / "old").iterdir())
    assert names == sorted(p.name for p in out.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
    assert built.ledger.as_dict()["total"]["removed"] == 3
    assert 1 not in built.files_by_shard   # the empty shard fed no file
    # one sort partition per range between bounds, and per slice's validation split
    assert built.partitions == len(built.bounds) + 1 + 3
    if partition_docs < 10:   # then ranges split the buckets
        assert built.partitions > num_buckets + 3
    assert REMOVED_FILE in built.files_by_shard[0]


def test_nothing_to_bucket_is_one_clear_error(corpus, tmp_path):
    root, paths = corpus
    work = tmp_path / "w"
    tasks = [t for t in shard_tasks(root, paths, work, "length") if t.index == 1]
    with pytest.raises(InputError, match="corpus: no training documents"):
        build_partitioned(tmp_path, tasks, spec(root), "length", ScoreOptions(), 2, Work(str(work)),
                          local_map, 4, input_name="corpus")
