"""Crafted hostile inputs through files-mode ingest: each ends as kept, removed or
quarantined (naming the file), within bounded memory, and the counts add up."""

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hostile import POSTS, ingest_dir, jsonl_file, mediawiki_xml, posts_xml, warc_file, wet_file

from redrobe.documents import list_shards, read_documents
from redrobe.sources import gutenberg
from redrobe.sources.base import SYMLINK, TOO_LONG
from redrobe.sources.inputs import InputSpec, ingest_inputs
from redrobe.sources.sink import OutputDirs

MIB = 1 << 20


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def gzip_bomb(path: Path, mib: int) -> str:
    """A gzip of ``mib`` MiB of text, a few hundred KiB on disk (repeated members)."""
    member = gzip.compress(b"A" * (16 * MIB), compresslevel=9, mtime=0)
    return write(path, member * (mib // 16))


def errors(trees: dict) -> list[str]:
    return [doc.extra["error"] for doc in trees["quarantine"]]


# ----------------------------------------------------------------------------- budgets

BOMB_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from redrobe.sources.inputs import InputSpec, ingest_inputs
    from redrobe.sources.sink import OutputDirs
    out = Path(sys.argv[1])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reports, _ = ingest_inputs([InputSpec(p) for p in sys.argv[2:]],
                               OutputDirs(out / "raw", out / "removed", out / "quarantine"),
                               "common_crawl", shard_docs=10, batch_size=4,
                               max_chars=2_000_000, max_input_bytes=64 << 30)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before,
                      "removed": {r.slice: dict(r.ledger.slices[r.slice].removed) for r in reports}}))
""")


def test_gzip_bomb_is_removed_too_long_and_never_held_whole(tmp_path):
    """512 MiB of text in ~0.5 MiB of gzip, as a book and as one JSONL line: the reader
    keeps the first bytes, counts the rest, and its memory grows far less than that."""
    book = gzip_bomb(tmp_path / "in" / "bomb.txt.gz", 512)
    line = str(tmp_path / "in" / "bomb.jsonl.gz")
    with gzip.open(line, "wb", compresslevel=9) as fh:  # one 256 MiB line
        fh.write(b'{"text": "')
        for _ in range(256):
            fh.write(b"B" * MIB)
        fh.write(b'"}\n')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(tmp_path / "out"), book, line],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["removed"] == {"books": {TOO_LONG: 1}, "common_crawl": {TOO_LONG: 1}}
    assert result["growth_kib"] < 128 * 1024  # 512 MiB expanded; the budget holds 8 MiB


def test_the_input_budget_quarantines_a_decompression_bomb_naming_file_and_key(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.txt.gz", 32)
    good = write(tmp_path / "ok.jsonl", jsonl_file(2))
    ledger, trees = ingest_dir([InputSpec(bomb), InputSpec(good)], tmp_path / "out",
                               max_input_bytes=4 * MIB)
    (error,) = errors(trees)
    assert error.startswith(f"{bomb}: unreadable gutenberg input (InputTooLarge: more than "
                            f"{4 * MIB} bytes") and "ingest.max_input_bytes" in error
    assert ledger.slices["books"].quarantined == 1 and len(trees["raw"]) == 2


def test_documents_over_the_budget_keep_their_first_characters_and_size(tmp_path):
    long_line = json.dumps({"id": "big", "text": "x" * 5000}).encode() + b"\n"
    path = write(tmp_path / "big.jsonl", long_line + jsonl_file(1))
    tree = tmp_path / "repo"
    write(tree / "LICENSE", b"Permission is hereby granted, free of charge, to any person")
    write(tree / "huge.py", b"x = 1\n" * 1000)
    ledger, trees = ingest_dir([InputSpec(path), InputSpec(str(tree), "code")], tmp_path / "out",
                               max_chars=100)
    too_long = {d.meta["provenance"].get("line", d.meta.get("path")): d for d in trees["removed"]
                if d.extra["reason"] == TOO_LONG}
    assert too_long[1].text == long_line.decode()[:100]
    assert too_long[1].meta["size_bytes"] == len(long_line)
    assert too_long["huge.py"].text == ("x = 1\n" * 17)[:100]
    assert too_long["huge.py"].meta["size"] == too_long["huge.py"].meta["size_bytes"] == 6000
    assert [d.meta["source_id"] for d in trees["raw"]] == ["doc-0"]


def test_latex_input_fan_out_and_macro_expansion_are_bounded(tmp_path):
    levels = {f"l{i}.tex": f"\\input{{l{i + 1}}} " * 10 for i in range(8)}
    fan_out = {"main.tex": "\\documentclass{article}\\begin{document}\\section{A}\\input{l0}",
               **levels, "l8.tex": "tide " * 20}
    for name, text in fan_out.items():
        write(tmp_path / "fan" / name, text.encode())
    macros = "".join(f"\\def\\m{chr(97 + i)}{{" + f"\\m{chr(98 + i)} " * 10 + "}" for i in range(8))
    macro_paper = (f"\\documentclass{{article}}{macros}\\def\\m{chr(105)}{{tide}}"
                   "\\begin{document}\\section{A}\\ma\\end{document}")
    write(tmp_path / "macro" / "main.tex", macro_paper.encode())
    ledger, trees = ingest_dir([InputSpec(str(tmp_path / "fan")), InputSpec(str(tmp_path / "macro"))],
                               tmp_path / "out", max_chars=100_000)
    assert [d.extra["reason"] for d in trees["removed"]] == [TOO_LONG, TOO_LONG]
    assert all(d.meta["expanded_chars_at_least"] > 400_000 for d in trees["removed"])
    assert ledger.slices["arxiv"].docs_in == 2


def test_many_latex_definitions_cost_one_scan_not_one_each(tmp_path):
    """60,000 definitions, then 60,000 that never close: each used to rescan the rest
    of the paper (tens of minutes); one pass over the braces finds every body."""
    tex = ("\\documentclass{article}\\begin{document}\\section{A} text "
           + "\\def\\a{x}" * 60_000 + "\\def\\b{" * 60_000)
    path = write(tmp_path / "many.tex", tex.encode())
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out", max_chars=3_000_000)
    (paper,) = trees["raw"]
    assert paper.text.startswith("\\section{A} text \\def\\b{") and "\\def\\a" not in paper.text


def test_a_book_of_unclosed_license_blocks_costs_one_scan(tmp_path):
    """100,000 small-print openings that never close: each used to scan the rest of the
    book for its closing line; the closing lines are now found once."""
    opening = b"***START**THE SMALL PRINT!\n"
    path = write(tmp_path / "pg9.txt", b"Title: Print\n\n" + opening * 100_000 + b"The end.\n")
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out", max_chars=3_000_000)
    (book,) = trees["raw"]
    assert book.text.endswith("The end.") and book.text.count("SMALL PRINT") == 100_000


# ----------------------------------------------------------------------------- errors

def test_memory_error_in_a_reader_quarantines_that_input_only(tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError("simulated")
    monkeypatch.setattr(gutenberg, "book_from_stream", exhausted)
    book = write(tmp_path / "book.txt", b"Title: Tides\n\nThe sea rose.")
    good = write(tmp_path / "ok.jsonl", jsonl_file(1))
    ledger, trees = ingest_dir([InputSpec(book), InputSpec(good)], tmp_path / "out")
    assert errors(trees) == [f"{book}: unreadable gutenberg input (MemoryError: simulated)"]
    assert len(trees["raw"]) == 1


def test_duplicate_stackexchange_id_is_quarantined_and_the_first_kept(tmp_path):
    duplicate = POSTS.replace(b"</posts>", b'  <row Id="1" PostTypeId="1" Title="Again" '
                                           b'Body="&lt;p&gt;Second copy.&lt;/p&gt;" />\n'
                                           b'  <row Id="x" PostTypeId="1" Body="b" />\n</posts>')
    path = write(tmp_path / "Posts.xml", duplicate)
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out")
    assert [d.meta["source_id"] for d in trees["raw"]] == ["1", "3"]
    assert trees["raw"][0].meta["title"] == "Tides"
    assert errors(trees) == [
        f"{path}: row 4: post Id 1 repeats an earlier post's (the first one is kept)",
        f"{path}: row 5: ValueError: invalid literal for int() with base 10: 'x'"]
    assert trees["quarantine"][0].text == "Second copy."


def test_a_bogus_gutenberg_charset_is_quarantined_naming_the_file(tmp_path):
    path = write(tmp_path / "pg1.txt", b"Title: Tides\nCharacter set encoding: rot13\n\nGur frn.")
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out")
    (error,) = errors(trees)
    assert error.startswith(f"{path}: the declared encoding 'rot-13' cannot decode the book: "
                            "LookupError")


def test_an_over_long_xml_record_stops_that_input_with_an_error_naming_the_page(tmp_path):
    dump = mediawiki_xml(2).replace(b"</mediawiki>", b"<page><title>Big</title><ns>0</ns><id>9</id>"
                                    b"<revision><id>1</id><text>" + b"w" * 100_000
                                    + b"</text></revision></page></mediawiki>")
    path = write(tmp_path / "wiki.xml", dump)
    # the parser reads 16 KiB at a time: the budget must be larger than that
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out", max_chars=5000)
    (error,) = errors(trees)
    assert error.startswith(f"{path}: unreadable mediawiki input (RecordTooLarge: the page after "
                            "page 2 ('Tide 1') is larger than 50000 bytes of XML")
    assert [d.meta["source_id"] for d in trees["raw"]] == ["1", "2"]


# ----------------------------------------------------------------------------- code trees

def test_code_trees_never_follow_symlinks(tmp_path):
    secret = write(tmp_path / "outside" / "secret.py", b"API_KEY = 'do-not-train-on-me'\n")
    tree = tmp_path / "repo"
    write(tree / "LICENSE", b"Permission is hereby granted, free of charge, to any person")
    write(tree / "pkg" / "mod.py", b"def f():\n    return 1\n")
    (tree / "pkg" / "leak.py").symlink_to(secret)
    (tree / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    ledger, trees = ingest_dir([InputSpec(str(tree), "code")], tmp_path / "out")
    everything = [d for docs in trees.values() for d in docs]
    assert not any("do-not-train-on-me" in d.text for d in everything)
    links = {d.meta["path"]: d for d in trees["removed"] if d.extra["reason"] == SYMLINK}
    assert set(links) == {"linked", "pkg/leak.py"}
    assert links["pkg/leak.py"].meta["link_target"] == secret
    assert ledger.slices["github"].removed[SYMLINK] == 2
    assert [d.meta["path"] for d in trees["raw"]] == ["pkg/mod.py"]


# ----------------------------------------------------------------------------- WARC

def damaged_warc(extra_length: int) -> tuple[bytes, list[int]]:
    """Three records; the first declares ``extra_length`` more bytes than it has."""
    data = warc_file(3)
    starts = [i for i in range(len(data)) if data.startswith(b"WARC/1.", i)]
    header_end = data.index(b"\r\n\r\n") + 4
    length = int(data[:header_end].split(b"Content-Length: ")[1].split(b"\r\n")[0])
    patched = data[:header_end].replace(b"Content-Length: %d" % length,
                                        b"Content-Length: %d" % (length + extra_length))
    shift = len(patched) - header_end
    return patched + data[header_end:], [starts[0]] + [s + shift for s in starts[1:]]


@pytest.mark.parametrize("name,cover", [("past", 40), ("exact", None)])
def test_a_warc_record_running_into_the_next_is_quarantined_and_the_rest_read(tmp_path, name,
                                                                              cover):
    data, starts = damaged_warc(40)
    if cover is None:  # a length that swallows the second record exactly
        data, starts = damaged_warc(starts[2] - starts[1])
    path = write(tmp_path / f"{name}.warc", data)
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out")
    (error,) = errors(trees)
    assert error.startswith(f"{path}@0: damaged record: Content-Length")
    assert f"runs past the next record header (at offset {starts[1]})" in error
    assert trees["quarantine"][0].meta["source_id"].endswith("000000000000>")
    assert [d.meta["url"] for d in trees["raw"]] == ["https://harbour.example/1",
                                                     "https://harbour.example/2"]
    assert ledger.slices["common_crawl"].docs_in == 3


def test_a_truncated_warc_record_is_quarantined(tmp_path):
    data = wet_file(3)
    path = write(tmp_path / "cut.wet", data[:-30])
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out")
    (error,) = errors(trees)
    assert error.startswith(f"{path}@") and "damaged record: truncated: Content-Length" in error
    assert len(trees["raw"]) == 2 and trees["raw"][0].meta["source_id"].startswith("<urn:uuid:")


def test_a_warc_record_over_the_budget_is_removed_too_long_and_the_next_read(tmp_path):
    path = write(tmp_path / "big.warc", warc_file(3, padding=2000))
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out", max_chars=1000)
    (removed,) = trees["removed"]
    assert removed.extra["reason"] == TOO_LONG and removed.meta["url"].endswith("/0")
    assert removed.text.startswith("<html><head><title>Tides 0") and len(removed.text) == 1000
    assert removed.meta["size_bytes"] > 10_000
    assert [d.meta["url"] for d in trees["raw"]] == ["https://harbour.example/1",
                                                     "https://harbour.example/2"]


def test_garbage_between_warc_records_is_quarantined_and_reading_goes_on(tmp_path):
    data = warc_file(2)
    second = data.index(b"WARC/1.", 10)
    path = write(tmp_path / "junk.warc", data[:second] + b"junk line\n" * 3 + data[second:])
    ledger, trees = ingest_dir([InputSpec(path)], tmp_path / "out")
    assert len(trees["raw"]) == 1 and len(trees["quarantine"]) == 2  # the record, the junk
    assert all(e.startswith(f"{path}@") for e in errors(trees))


# ----------------------------------------------------------------------------- text

def test_control_characters_are_removed_and_counted(tmp_path):
    rows = [{"text": "tab\tnew\nline\r\nnul\x00esc\x1b[0mbell\x07ff\x0c", "id": 7},
            {"text": "\x00\x00"}]
    path = write(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    dirs = OutputDirs(tmp_path / "raw", tmp_path / "removed", tmp_path / "quarantine")
    (report,), _ = ingest_inputs([InputSpec(path)], dirs, "c4", 10, 4, 1000, 1 << 20)
    assert report.control_chars == 6
    (kept,) = read_documents(list_shards(dirs.raw, "c4")[0])
    assert kept.text == "tab\tnew\nline\r\nnulesc[0mbellff" and kept.meta["source_id"] == "7"
    (empty,) = read_documents(list_shards(dirs.removed, "c4")[0])
    assert empty.extra["reason"] == "empty_text"


def test_source_ids_of_every_format_with_one(tmp_path):
    paths = [write(tmp_path / "a.warc", warc_file(1)), write(tmp_path / "b.wet", wet_file(1)),
             write(tmp_path / "Posts.xml", posts_xml('Id="42" PostTypeId="1" Title="T" Body="b"')),
             write(tmp_path / "w.xml", mediawiki_xml(1)), write(tmp_path / "r.jsonl", jsonl_file(1)),
             write(tmp_path / "2301.00001.tex", b"\\documentclass{a}\\section{A} text")]
    ledger, trees = ingest_dir([InputSpec(p) for p in paths], tmp_path / "out")
    ids = sorted(d.meta["source_id"] for docs in trees.values() for d in docs)
    assert ids == ["1", "2301.00001", "42", "<urn:uuid:00000000-0000-0000-0000-000000000000>",
                   "<urn:uuid:00000000-0000-0000-0000-000000000000>", "doc-0"]
