"""What a pretraining rank reads of a buckets directory stays bounded: token files through a
few open descriptors, docs.parquet row groups through a byte-budgeted LRU, and the
lookups give what the whole table read into memory gives."""

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import redrobe.curriculum.build as build
import redrobe.curriculum.order as order
from redrobe.curriculum.buckets import assign_buckets, bucket_name
from redrobe.curriculum.build import TokenSpec, write_curriculum
from redrobe.curriculum.cache import LRU, TokenFiles
from redrobe.curriculum.layout import DOCS_FILE, SPLIT_TRAIN, SPLIT_VAL, open_tokens, val_file
from redrobe.curriculum.order import DocTable, write_data_order
from redrobe.curriculum.tokens import DocRecord
from redrobe.errors import InputError
from redrobe.stages.pretrain import open_buckets
from redrobe.train.data import make_batches

SPEC = TokenSpec(vocab_size=500, bos_id=0, eos_id=1)
SLICES = ("books", "c4", "github")


@pytest.fixture(scope="module")
def buckets(tmp_path_factory):
    """300 documents (1 in 5 held out) in 3 buckets; docs.parquet in row groups of 7 rows,
    so most groups hold one bucket and some straddle two (or the train/val border)."""
    root = tmp_path_factory.mktemp("buckets")
    rng = np.random.default_rng(3)
    spill, records, scores = [], [], []
    for i in range(300):
        n, name = int(rng.integers(1, 15)), SLICES[i % 3]
        records.append(DocRecord(id=f"d{i:03d}", source=name, slice=name,
                                 split=SPLIT_VAL if i % 5 == 0 else SPLIT_TRAIN, shard=0,
                                 offset=len(spill), tokens=n, bytes=n))
        spill += rng.integers(2, SPEC.vocab_size, n).tolist()
        scores.append(float(rng.random()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "DOCS_ROW_GROUP", 7)
        index = write_curriculum(root, records, np.array(scores), [np.array(spill, dtype="<u2")],
                                 SPEC, 3, SLICES)
    meta = pq.ParquetFile(root / DOCS_FILE).metadata
    bucket = [meta.row_group(g).column(3).statistics for g in range(meta.num_row_groups)]
    assert meta.num_row_groups > 40 and any(b.min != b.max for b in bucket)
    return root, index


@pytest.fixture(scope="module")
def without_statistics(buckets, tmp_path_factory):
    """The same directory, docs.parquet rewritten without footer statistics (other
    writers may omit them): every group's buckets are then read from its columns."""
    root, index = buckets
    copy = tmp_path_factory.mktemp("nostats")
    for path in root.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    pq.write_table(pq.read_table(root / DOCS_FILE), copy / DOCS_FILE, row_group_size=7,
                   write_statistics=False)
    return copy, index


def whole_table_docs(root, bucket):
    """A bucket's (id, offset, end) from docs.parquet read whole (the oracle's input)."""
    docs = pq.read_table(root / DOCS_FILE)
    rows = docs.filter(pc.and_(pc.equal(docs["split"], SPLIT_TRAIN), pc.equal(docs["bucket"], bucket)))
    offsets, tokens, ids = (rows[c].to_pylist() for c in ("offset", "tokens", "id"))
    return [(i, o, o + t + 1) for o, t, i in zip(offsets, tokens, ids)]


def whole_table_val(root, index, max_tokens):
    docs = pq.read_table(root / DOCS_FILE)
    val = docs.filter(pc.equal(docs["split"], SPLIT_VAL))
    buckets = assign_buckets(val["score"].to_numpy(), index["score_edges"]).tolist()
    rows = sorted(zip(val["source"].to_pylist(), val["offset"].to_pylist(),
                      val["tokens"].to_pylist(), buckets))
    parts, used = {k: [] for k in range(3)}, dict.fromkeys(range(3), 0)
    for source, offset, tokens, k in rows:
        if used[k] + tokens + 1 <= max_tokens:
            tokens_file = open_tokens(root, index, val_file(source))
            parts[k].append(np.asarray(tokens_file[offset:offset + tokens + 1]))
            used[k] += tokens + 1
    return {bucket_name(k): np.concatenate(p) if p else np.zeros(0, "<u2") for k, p in parts.items()}


def test_lru_evicts_the_least_recently_used_within_its_budget():
    closed = []
    cache = LRU(10, weigh=len, on_evict=closed.append)
    for key in ("a", "b", "c"):
        cache.get(key, lambda k=key: k * 4)          # 4 bytes each: a and b fit, c evicts a
    assert "a" not in cache and closed == ["aaaa"] and cache.weight == 8
    cache.get("b", lambda: pytest.fail("cached"))    # b is now the most recent
    cache.get("d", lambda: "d" * 4)
    assert closed == ["aaaa", "cccc"] and list(cache._items) == ["b", "d"]
    cache.get("big", lambda: "x" * 50)               # heavier than the budget: kept alone
    assert len(cache) == 1 and cache.weight == 50 and cache.loads == 5
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0 and closed[-1] == "x" * 50


def test_token_files_read_what_a_memory_map_reads_through_few_descriptors(buckets):
    root, index = buckets
    names = [b["file"] for b in index["buckets"]] + [v["file"] for v in index["val"].values()]
    with TokenFiles.of_index(root, index, max_open=2) as files:
        for name in names * 2:                            # 6 files twice, 2 descriptors
            mapped, lazy = open_tokens(root, index, name), files.file(name)
            assert len(lazy) == len(mapped) and files.open_files <= 2
            for a, b in ((0, 5), (3, 11), (len(mapped) - 4, len(mapped) + 9), (7, 7)):
                got = lazy[a:b]
                assert got.dtype == np.dtype("<u2") and np.array_equal(got, mapped[a:b])
                got[:] = 0                                # a copy: the file is untouched
            assert lazy[-1] == mapped[-1] and lazy[2] == mapped[2]
        with pytest.raises(IndexError):
            lazy[::2]
        with pytest.raises(IndexError):
            lazy[len(lazy)]
    assert files.open_files == 0                          # closed on exit
    (root / "empty.bin").write_bytes(b"")
    with TokenFiles.of_index(root, index) as files:
        assert len(files.file("empty.bin")) == 0 and files.file("empty.bin")[0:5].size == 0


@pytest.mark.parametrize("layout", ["buckets", "without_statistics"])
def test_lazy_table_finds_what_the_whole_table_finds_through_a_tiny_cache(layout, request):
    root, index = request.getfixturevalue(layout)
    table = DocTable.read(root, cache_bytes=1)            # one decoded row group at a time
    for k, entry in enumerate(index["buckets"]):
        docs = whole_table_docs(root, k)
        for start in range(0, entry["tokens"] - 3, 3):
            for width in (1, 4, 40):
                end = min(start + width, entry["tokens"])
                want = [(i, max(a, start), min(b, end)) for i, a, b in docs if a < end and b > start]
                assert list(table.overlaps(k, start, end)) == want
                assert len(table.groups) == 1
    table.close()


def test_data_order_is_the_same_whatever_the_cache_budget(buckets, tmp_path):
    root, index = buckets
    arrays = [open_tokens(root, index, b["file"]) for b in index["buckets"]]
    written = []
    for schedule, replay in (("stepwise", 0.3), ("smooth", 0.3), ("shuffled", 0.0)):
        for budget in (1, 1 << 30):
            batches = make_batches(schedule, arrays, ["a", "b", "c"], steps=12, seq_len=6,
                                   batch_size=4, grad_accum=2, seed=2, replay=replay)
            path = tmp_path / f"{schedule}-{budget}.parquet"
            assert write_data_order(path, batches, DocTable.read(root, cache_bytes=budget), 12) > 0
            written.append(path.read_bytes())
        assert written[-1] == written[-2]


@pytest.mark.parametrize("layout", ["buckets", "without_statistics"])
def test_validation_rows_stream_without_the_training_index(layout, request, monkeypatch):
    """Every rank evaluates per bucket; only rank 0 looks up training rows (data order)."""
    root, index = request.getfixturevalue(layout)
    monkeypatch.setattr(order, "_blocks", lambda docs: pytest.fail("training rows indexed"))
    table = DocTable.read(root)
    for max_tokens in (5, 60, 10_000):
        got, want = table.val_by_bucket(max_tokens), whole_table_val(root, index, max_tokens)
        assert sorted(got) == sorted(want)
        assert all(np.array_equal(got[k], want[k]) for k in want)
    assert table.groups.loads == 0


def test_opening_the_buckets_reads_no_tokens(buckets):
    root, index = buckets
    opened = open_buckets(root)
    assert opened.files.open_files == 0 and opened.table.groups.loads == 0
    assert [len(a) for a in opened.arrays] == [b["tokens"] for b in index["buckets"]]
    opened.close()


def test_a_closed_table_holds_nothing_and_reopens_on_use(buckets):
    root, _ = buckets
    table = DocTable.read(root)
    first = list(table.overlaps(1, 10, 30))
    table.close()                                         # what the stage does before training
    assert table._docs is None and table._blocks is None and len(table.groups) == 0
    assert list(table.overlaps(1, 10, 30)) == first


def test_a_missing_docs_table_is_an_input_error(buckets, tmp_path):
    root, _ = buckets
    for path in root.iterdir():
        if path.name != DOCS_FILE:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    with pytest.raises(InputError, match="unreadable bucket index"):
        open_buckets(tmp_path)
