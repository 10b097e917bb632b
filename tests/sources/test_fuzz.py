"""Property-based fuzzing of every files-mode reader (hypothesis, derandomized).

Each reader gets a well-formed input damaged at random: truncated, bits flipped,
bytes inserted, a piece repeated (duplicate ids, records), hostile bytes spliced in
(NULs, a WARC record header, an ``\\input``), or replaced by random bytes. Whatever
comes in, ingest must not crash, must account for every record
(in == out + removed + quarantined, checked by the ledger) and every quarantine
error must name the input file. Limits are small so that the budgets trip too.
"""

import gzip
import io
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hostile import (
    BOOK,
    PAPER,
    POSTS,
    ingest_dir,
    jsonl_file,
    mediawiki_xml,
    tar_bytes,
    warc_file,
    wet_file,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redrobe.sources.inputs import InputSpec

#: fixed and modest: the same examples on every run and machine, the file in seconds
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HOSTILE = [b"\x00" * 8, b"\r\n\r\nWARC/1.0\r\nContent-Length: 99999\r\n\r\n", b"\\input{main}",
           b'<row Id="1" PostTypeId="1" />', b"\xff\xfe", b"]]>&#0;<!--", b"\n" * 5]


def parquet_file() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["Tides rise.", "Waves break."], "id": ["a", "b"]}), buf)
    return buf.getvalue()


#: one well-formed input per reader (file name -> bytes); the name picks the reader
SEEDS = {
    "redpajama.jsonl": jsonl_file(3),
    "redpajama.jsonl.gz": gzip.compress(jsonl_file(3), mtime=0),
    "redpajama.parquet": parquet_file(),
    "crawl.warc": warc_file(2),
    "crawl.warc.gz": warc_file(2, gzip=True),
    "crawl.wet": wet_file(3),
    "Posts.xml": POSTS,
    "enwiki.xml": mediawiki_xml(2),
    "2301.00001.tar": tar_bytes(PAPER),
    "pg1.txt": BOOK,
    "pg2.txt.gz": gzip.compress(BOOK, mtime=0),
}


@st.composite
def damaged(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` damaged one way or another (or random bytes)."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "repeat", "hostile", "random"]))
    at = draw(st.integers(0, len(seed)))
    if how == "truncate":
        return seed[:at]
    if how == "flip":
        data = bytearray(seed)
        for position in draw(st.lists(st.integers(0, len(seed) - 1), min_size=1, max_size=8)):
            data[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if how == "insert":
        return seed[:at] + draw(st.binary(min_size=1, max_size=64)) + seed[at:]
    if how == "repeat":
        end = draw(st.integers(at, len(seed)))
        return seed[:end] + seed[at:end] * draw(st.integers(1, 3)) + seed[end:]
    if how == "hostile":
        return seed[:at] + draw(st.sampled_from(HOSTILE)) + seed[at:]
    return draw(st.binary(max_size=2048))


def check_ingest(name: str, data: bytes) -> None:
    """Ingest one input: no crash, the ledger balances (ingest_dir checks it), every
    quarantined record names the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in" / name
        path.parent.mkdir()
        path.write_bytes(data)
        ledger, trees = ingest_dir([InputSpec(str(path))], Path(tmp) / "out", max_chars=300,
                                   max_input_bytes=1 << 16)
        assert sum(s.docs_in for s in ledger.slices.values()) == sum(map(len, trees.values()))
        for doc in trees["quarantine"]:
            assert doc.extra["error"].startswith(str(path)), doc.extra["error"]


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_reader_survives_damaged_input(name, data):
    check_ingest(name, data.draw(damaged(SEEDS[name])))


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from(["a.py", "b/c.py", "LICENSE", "d/e.txt"]),
                                st.binary(max_size=600)), max_size=4),
       link=st.booleans())
def test_code_tree_reader_survives_random_files_and_links(files, link):
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "repo"
        tree.mkdir()
        for rel, content in files:
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes(content)
        if link:
            (tree / "escape.py").symlink_to("/etc/hostname")
        ledger, trees = ingest_dir([InputSpec(str(tree), "code")], Path(tmp) / "out",
                                   max_chars=300, max_input_bytes=1 << 16)
        kept = {d.meta["path"] for d in trees["raw"]}
        assert "escape.py" not in kept
        assert ledger.slices["github"].removed["symlink"] == int(link)
