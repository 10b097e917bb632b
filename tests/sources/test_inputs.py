"""Files mode driver: format detection, slices, fsspec URLs, and corrupt inputs quarantined."""

import bz2
import gzip
import io
import json

import fsspec
import pytest
from warcio.warcwriter import WARCWriter

from redrobe.accounting import Ledger
from redrobe.documents import list_shards, read_documents
from redrobe.errors import InputError
from redrobe.sources.fileio import expand
from redrobe.sources.inputs import InputSpec, detect_format, ingest_inputs


def wet_bytes(n: int) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for i in range(n):
        writer.write_record(writer.create_warc_record(
            f"https://site.example/{i}", "conversion",
            payload=io.BytesIO(f"Page {i} has some plain text.".encode()),
            warc_headers_dict={"Content-Type": "text/plain", "WARC-Date": "2023-03-20T00:00:00Z",
                               "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"}))
    return buf.getvalue()


def ingest(specs, dirs):
    reports, inputs = ingest_inputs(specs, dirs, "common_crawl", shard_docs=100, batch_size=8,
                                    max_chars=10_000, max_input_bytes=1 << 30)
    ledger = Ledger()
    for report in reports:
        ledger.merge(report.ledger)
    assert not ledger.check()
    return {r.slice: r for r in reports}, inputs, ledger


def quarantine_errors(dirs, slice_name):
    return [d.extra["error"] for p in list_shards(dirs.quarantine, slice_name)
            for d in read_documents(p)]


@pytest.mark.parametrize("name,fmt", [
    ("CC-MAIN-1.warc.wet.gz", "wet"), ("x.wet", "wet"), ("crawl.warc.gz", "warc"),
    ("a.jsonl.zst", "redpajama"), ("b.parquet", "redpajama"), ("Posts.xml", "stackexchange"),
    ("Posts.xml.bz2", "stackexchange"), ("stackoverflow.com-Posts.xml", "stackexchange"),
    ("enwiki-pages-articles.xml.bz2", "mediawiki"), ("2301.00001.tar.gz", "latex"),
    ("paper.tex", "latex"), ("pg1513.txt", "gutenberg"), ("pg1513.txt.gz", "gutenberg"),
    ("notes.pdf", None)])
def test_detect_format_by_name(tmp_path, name, fmt):
    (tmp_path / name).write_bytes(b"")
    assert detect_format(expand(str(tmp_path / name))[0]) == fmt


def test_directories_are_latex_with_top_level_tex_else_code(tmp_path):
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "main.tex").write_text("\\section{A}")
    (tmp_path / "repo" / "docs").mkdir(parents=True)
    (tmp_path / "repo" / "docs" / "manual.tex").write_text("\\section{A}")
    assert [detect_format(s) for s in expand(str(tmp_path / "*"))] == ["latex", "code"]


def test_corrupt_and_unknown_inputs_are_quarantined_naming_the_file(tmp_path, dirs):
    good = wet_bytes(3)
    (tmp_path / "ok.warc.wet.gz").write_bytes(good)
    (tmp_path / "cut.warc.wet.gz").write_bytes(good[: len(good) - 40])   # truncated last record
    (tmp_path / "bad.wet.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    (tmp_path / "dump.xml.bz2").write_bytes(b"BZh91AY&SY" + b"\x00" * 50)  # bad bz2
    (tmp_path / "Posts.xml").write_bytes(b"<posts><row Id='1' PostTypeId='1'")  # malformed
    (tmp_path / "paper.tar.gz").write_bytes(gzip.compress(b"no tar here" * 50))
    (tmp_path / "slides.pdf").write_bytes(b"%PDF-1.4")
    slices, inputs, ledger = ingest([InputSpec(str(tmp_path / "*"))], dirs)
    assert sorted(inputs) == sorted(str(p) for p in tmp_path.iterdir() if p.is_file())
    cc = ledger.slices["common_crawl"]
    assert (cc.docs_in, cc.docs_out, cc.quarantined) == (3 + 2 + 1 + 1 + 1, 3 + 2, 3)
    errors = quarantine_errors(dirs, "common_crawl")
    assert any(e.startswith(f"{tmp_path / 'cut.warc.wet.gz'}: unreadable wet input")
               and e.endswith("after 2 record(s)") for e in errors)
    assert any(e.startswith(f"{tmp_path / 'bad.wet.gz'}: unreadable wet input") for e in errors)
    assert any(e.startswith(f"{tmp_path / 'slides.pdf'}: unknown format") for e in errors)
    for slice_name, name in (("wikipedia", "dump.xml.bz2"), ("stackexchange", "Posts.xml"),
                             ("arxiv", "paper.tar.gz")):
        (error,) = quarantine_errors(dirs, slice_name)
        assert error.startswith(f"{tmp_path / name}: unreadable"), error
        assert ledger.slices[slice_name].quarantined == 1 == ledger.slices[slice_name].docs_in


def test_memory_and_file_urls_with_explicit_format_and_slice(tmp_path, dirs):
    fs = fsspec.filesystem("memory")
    fs.pipe("/inputs-test/crawl.bin", wet_bytes(2))
    rows = [{"text": "A wiki article.", "red_pajama_subset": "wikipedia"}, {"text": "No subset."}]
    fs.pipe("/inputs-test/rp.jsonl.gz",
            gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    (tmp_path / "book.txt.bz2").write_bytes(bz2.compress(b"Title: Tides\n\nThe sea rose."))
    try:
        slices, inputs, ledger = ingest([
            InputSpec("memory://inputs-test/crawl.bin", "wet", "web"),
            InputSpec("memory://inputs-test/rp.jsonl.gz", slice="c4"),
            InputSpec(f"file://{tmp_path}/*.bz2")], dirs)
    finally:
        fs.rm("/inputs-test", recursive=True)
    assert sorted(slices) == ["books", "c4", "web", "wikipedia"]
    assert {s: ledger.slices[s].docs_out for s in slices} == {"books": 1, "c4": 1, "web": 2,
                                                              "wikipedia": 1}
    (book,) = read_documents(list_shards(dirs.raw, "books")[0])
    assert book.text == "Title: Tides\n\nThe sea rose." and book.meta["title"] == "Tides"
    assert book.meta["provenance"]["file"] == f"file://{tmp_path}/book.txt.bz2"
    assert set(inputs) == {"memory:///inputs-test/crawl.bin", "memory:///inputs-test/rp.jsonl.gz",
                           f"file://{tmp_path}/book.txt.bz2"}
    assert slices["web"].input_digests == {"memory:///inputs-test/crawl.bin":
                                           inputs["memory:///inputs-test/crawl.bin"]}


def test_a_path_that_matches_nothing_is_an_input_error(tmp_path, dirs):
    with pytest.raises(InputError, match="no such file"):
        ingest_inputs([InputSpec(str(tmp_path / "nope.wet.gz"))], dirs, "common_crawl", 10, 8, 100,
                      1000)
