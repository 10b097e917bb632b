"""The ingest stage in files mode on mixed formats (ingest.inputs), with corrupt inputs."""

import bz2
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from warcio.warcwriter import WARCWriter

from redrobe.accounting import check_accounting
from redrobe.config import ConfigError, params_from_dict
from redrobe.documents import list_shards, read_documents
from redrobe.sources.base import BINARY, NOT_CODE, VENDORED, WIKI_REDIRECT
from redrobe.stages import ingest

TREES = ("raw", "removed", "quarantine")
PROSE = "The tide tables list the times of high and low water for every harbour on the coast."



def write_inputs(root: Path) -> None:
    root.mkdir()
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for i in range(2):
        writer.write_record(writer.create_warc_record(
            f"https://tides.example/{i}", "conversion", payload=io.BytesIO(f"{PROSE} ({i})".encode()),
            warc_headers_dict={"Content-Type": "text/plain", "WARC-Date": "2023-03-20T00:00:00Z",
                               "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"}))
    (root / "CC-MAIN-0.warc.wet.gz").write_bytes(buf.getvalue())
    (root / "se").mkdir()
    (root / "se" / "Posts.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        '  <row Id="1" PostTypeId="1" Score="4" Title="When is high water?" '
        'Body="&lt;p&gt;How do I read a tide table?&lt;/p&gt;" Tags="&lt;tides&gt;" />\n'
        '  <row Id="2" PostTypeId="2" ParentId="1" Score="1" Body="&lt;p&gt;Look up the port.&lt;/p&gt;" />\n'
        '  <row Id="3" PostTypeId="2" ParentId="1" Score="6" Body="&lt;p&gt;Add the offset.&lt;/p&gt;" />\n'
        "</posts>\n")
    tex = ("\\documentclass{article}\n\\newcommand{\\tide}{high water}\n\\begin{document}\n"
           "\\section{Tides}\n% draft\nThe \\tide{} mark.\n\\bibliography{refs}\n\\end{document}\n")
    with tarfile.open(root / "2303.01234.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("main.tex")
        info.size = len(tex.encode())
        tar.addfile(info, io.BytesIO(tex.encode()))
    tree = root / "repos" / "tides"
    (tree / "vendor").mkdir(parents=True)
    (tree / "LICENSE").write_text("Permission is hereby granted, free of charge, to any person")
    (tree / "tides.py").write_text("def high_water(t):\n    return t % 12.42\n")
    (tree / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tree / "vendor" / "six.py").write_text("PY3 = True\n")
    wiki = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">'
            "<siteinfo><dbname>enwiki</dbname><base>https://en.wikipedia.org/wiki/Main_Page</base>"
            "</siteinfo>"
            "<page><title>Tide</title><ns>0</ns><id>1</id><revision><id>10</id>"
            "<timestamp>2023-03-20T00:00:00Z</timestamp><text>A '''tide''' is the rise of the "
            "[[sea]].</text></revision></page>"
            '<page><title>Tides</title><ns>0</ns><id>2</id><redirect title="Tide" /><revision>'
            "<id>20</id><timestamp>2023-03-20T00:00:00Z</timestamp><text>#REDIRECT [[Tide]]"
            "</text></revision></page></mediawiki>")
    (root / "enwiki-pages-articles.xml.bz2").write_bytes(bz2.compress(wiki.encode()))
    (root / "broken-pages-articles.xml.bz2").write_bytes(b"BZh91AY&SY" + b"\x00" * 40)
    (root / "pg1.txt").write_text("Title: Tide Book\n\n*** START OF THE PROJECT GUTENBERG EBOOK "
                                  "TIDE BOOK ***\n" + PROSE + "\n*** END OF THE PROJECT "
                                  "GUTENBERG EBOOK TIDE BOOK ***\n")
    (root / "notes.pdf").write_bytes(b"%PDF-1.4")
    (root / "rp.jsonl").write_text(json.dumps({"text": PROSE, "red_pajama_subset": "c4"}) + "\n")


def params_for(root: Path) -> dict:
    return {"ingest": {"mode": "files", "paths": [str(root / "rp.jsonl")], "inputs": [
        {"path": str(root / "*.wet.gz"), "format": "wet"},
        {"path": f"file://{root}/se/Posts.xml", "format": "stackexchange",
         "site": "earthscience.stackexchange.com"},
        {"path": str(root / "*.tar.gz")},
        {"path": str(root / "repos" / "*"), "format": "code"},
        {"path": str(root / "*-pages-articles.xml.bz2"), "format": "mediawiki"},
        {"path": str(root / "pg*.txt"), "format": "gutenberg"},
        {"path": str(root / "notes.pdf"), "slice": "common_crawl"},
    ]}}


def run_stage(tmp_path: Path, params: dict, name: str) -> tuple[int, Path]:
    out = tmp_path / name
    out.mkdir()
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    code = ingest.main(["--params", str(out / "params.yaml"), "--cache-dir", str(tmp_path / "c"),
                        "--output", str(out / "raw"), "--removed", str(out / "removed"),
                        "--quarantine", str(out / "quarantine"),
                        "--metrics", str(out / "metrics.json")])
    return code, out


def test_mixed_formats_accounting_outputs_and_byte_identical_rerun(tmp_path):
    root = tmp_path / "in"
    write_inputs(root)
    code, out = run_stage(tmp_path, params_for(root), "first")
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    m.pop("wall_seconds")
    assert not check_accounting(m)
    acc = m["accounting"]["slices"]
    got = {s: (c["in"], c["out"], c["quarantined"]) for s, c in acc.items()}
    # wikipedia is routed by language (params.yaml): the article to its language's
    # partition, the redirect and the unreadable dump (no language) to wikipedia/und
    assert got == {"arxiv": (1, 1, 0), "books": (1, 1, 0), "c4": (1, 1, 0),
                   "common_crawl": (3, 2, 1), "github": (4, 1, 0),
                   "stackexchange": (1, 1, 0), "wikipedia/en": (1, 1, 0), "wikipedia/und": (2, 0, 1)}
    assert acc["github"]["removed_by_reason"] == {BINARY: 1, NOT_CODE: 1, VENDORED: 1}
    assert acc["wikipedia/und"]["removed_by_reason"] == {WIKI_REDIRECT: 1}
    assert len(m["inputs"]) == 9 and all(len(i["sha256"]) == 64 for i in m["inputs"])

    docs = {d.source: d for p in list_shards(out / "raw") for d in read_documents(p)}
    assert docs["stackexchange"].text == ("Q:\n\nWhen is high water?\n\nHow do I read a tide "
                                          "table?\n\nA:\n\nAdd the offset.\n\nA:\n\nLook up the port.")
    assert docs["stackexchange"].meta["url"] == "https://earthscience.stackexchange.com/questions/1"
    assert docs["arxiv"].text == "\\section{Tides}\nThe high water{} mark."
    assert docs["github"].meta["license"] == "MIT" and docs["github"].meta["path"] == "tides.py"
    assert docs["books"].text == PROSE and docs["books"].meta["title"] == "Tide Book"
    assert docs["wikipedia"].text == "A tide is the rise of the sea."
    errors = {d.meta["provenance"]["file"]: d.extra["error"]
              for p in list_shards(out / "quarantine") for d in read_documents(p)}
    assert set(errors) == {str(root / "broken-pages-articles.xml.bz2"), str(root / "notes.pdf")}
    assert "unreadable mediawiki input" in errors[str(root / "broken-pages-articles.xml.bz2")]
    assert "unknown format" in errors[str(root / "notes.pdf")]

    code, again = run_stage(tmp_path, params_for(root), "second")
    assert code == 0
    for tree in TREES:
        first = {p.relative_to(out / tree): p.read_bytes() for p in list_shards(out / tree)}
        second = {p.relative_to(again / tree): p.read_bytes() for p in list_shards(again / tree)}
        assert first == second
    m2 = json.loads((again / "metrics.json").read_text())
    m2.pop("wall_seconds")
    assert m2 == m


def test_unknown_format_in_params_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"ingest\.inputs\[1\]\.format: must be one of"):
        params_from_dict({"ingest": {"mode": "files", "inputs": [
            {"path": "a.wet.gz", "format": "wet"}, {"path": "b.pdf", "format": "pdf"}]}})
    with pytest.raises(ConfigError, match=r"ingest\.inputs\[0\]\.path: must name"):
        params_from_dict({"ingest": {"mode": "files", "inputs": [{"format": "wet"}]}})


# ----------------------------------------------------------------------------- one task per input

def write_many(root: Path) -> None:
    """The mixed inputs plus three JSONL files feeding one slice, so shards span inputs."""
    write_inputs(root)
    for k, n in enumerate((9, 4, 13)):
        lines = [json.dumps({"text": f"{PROSE} Input {k}, line {i}.", "red_pajama_subset": "c4"})
                 for i in range(n)]
        (root / f"c4-{k}.jsonl").write_text("\n".join(lines) + "\n")


def oracle(specs, dirs, shard_docs, batch_size, max_chars, max_input_bytes):
    """The one-process ingest this stage did before: every input in turn into one sink per
    slice (the partitioned result must equal it byte for byte)."""
    from redrobe.sources.base import Limits
    from redrobe.sources.fileio import expand
    from redrobe.sources.inputs import read_input
    from redrobe.sources.sink import SliceSink

    sinks, inputs = {}, {}

    def sink_for(name):
        return sinks.setdefault(name, SliceSink(dirs, name, shard_docs, batch_size, max_chars))

    for spec, source in [(s, src) for s in specs for src in expand(s.path)]:
        if source.name in inputs:
            continue
        reading = read_input(source, spec, "common_crawl", batch_size,
                             Limits(max_chars, max_input_bytes))
        inputs[source.name] = reading.origin.sha256
        if reading.format != "redpajama":
            sink_for(reading.slice).input_digests[source.name] = reading.origin.sha256
        for doc in reading.documents:
            sink_for(doc.source).input_digests[source.name] = reading.origin.sha256
            sink_for(doc.source).add(doc, source.name)
    return [report for n in sorted(sinks) for report in sinks[n].close()], inputs


def specs_for(root: Path):
    from redrobe.sources.inputs import InputSpec

    p = params_for(root)["ingest"]
    return ([InputSpec(str(root / "c4-*.jsonl"), "redpajama"), InputSpec(p["paths"][0], "redpajama")]
            + [InputSpec(i["path"], i.get("format", "auto"), i.get("slice", ""), i.get("site", ""))
               for i in p["inputs"]] + [InputSpec(str(root / "c4-1.jsonl"))])  # named twice


def comparable(result):
    import dataclasses

    reports, inputs = result
    return [dataclasses.replace(r, ledger=r.ledger.as_dict()) for r in reports], list(inputs.items())


def tree_bytes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("shard_docs", [5, 1000])
def test_one_task_per_input_equals_the_one_process_ingest_for_any_worker_count(tmp_path, shard_docs):
    from redrobe.parallel import LocalExecutor
    from redrobe.sources.inputs import ingest_inputs
    from redrobe.sources.sink import OutputDirs

    root = tmp_path / "in"
    write_many(root)
    specs = specs_for(root)
    limits = (shard_docs, 4, 100_000, 1 << 30)   # batch 4: partial shards of several row groups
    want_dirs = OutputDirs(*(tmp_path / "want" / t for t in TREES))
    want = oracle(specs, want_dirs, *limits)
    for workers in (1, 2):
        dirs = OutputDirs(*(tmp_path / f"w{workers}" / t for t in TREES))
        got = ingest_inputs(specs, dirs, "common_crawl", *limits, executor=LocalExecutor(workers))
        assert comparable(got) == comparable(want)   # ledgers, shards and lineage, digests
        for tree in TREES:
            assert tree_bytes(getattr(dirs, tree)) == tree_bytes(getattr(want_dirs, tree))
        assert sorted(p.name for p in (tmp_path / f"w{workers}").iterdir()) == sorted(TREES)
    c4 = next(r for r in want[0] if r.slice == "c4")
    assert sum(s.docs for s in c4.raw) == 27
    if shard_docs == 5:   # shards made of several inputs, inputs cut across shards
        assert len(c4.raw) == 6 and any(len(s.inputs) > 1 for s in c4.raw)


def test_shards_are_cut_every_shard_docs_across_inputs_and_partial_shards():
    from redrobe.sources.inputs import Span, _cut, _record

    spans = [Span("a/0", 0, 4, 4, "a"), Span("b/0", 0, 4, 4, "b"), Span("b/1", 0, 1, 1, "b"),
             Span("c/0", 0, 3, 3, "c")]
    tasks = _cut(spans, Path("/out"), "c4", 4, 2, ())
    assert [[(s.path, s.start, s.stop) for s in t.spans] for t in tasks] == [
        [("a/0", 0, 4)], [("b/0", 0, 4)], [("b/1", 0, 1), ("c/0", 0, 3)]]
    tasks = _cut(spans, Path("/out"), "c4", 3, 2, ())
    assert [[(s.path, s.start, s.stop) for s in t.spans] for t in tasks] == [
        [("a/0", 0, 3)], [("a/0", 3, 4), ("b/0", 0, 2)], [("b/0", 2, 4), ("b/1", 0, 1)],
        [("c/0", 0, 3)]]
    assert [_record(t, Path("/out")).inputs for t in tasks] == [("a",), ("a", "b"), ("b",), ("c",)]
    assert [t.path for t in _cut([], Path("/out"), "c4", 3, 2, ("reason",))] == [
        "/out/c4/part-00000.parquet"]


def test_an_input_task_reads_one_input_and_returns_a_small_result(tmp_path):
    import pickle

    from redrobe.sources.fileio import expand
    from redrobe.sources.inputs import (
        InputSpec,
        InputTask,
        ShardTask,
        Span,
        read_input_task,
        write_shard_task,
    )

    root = tmp_path / "in"
    write_many(root)
    (source,) = expand(str(root / "c4-2.jsonl"))
    task = InputTask(source.name, source, InputSpec(source.name, "redpajama"),
                     str(tmp_path / "work"), "common_crawl", 5, 4, 100_000, 1 << 30)
    result = read_input_task(task)
    assert [r.slice for r in result.reports] == ["c4"]
    assert [s.docs for s in result.reports[0].raw] == [5, 5, 3]
    assert all(s.inputs == (source.name,) for s in result.reports[0].raw)
    assert len(pickle.dumps(result)) < 8000
    # a whole partial shard is moved; moving it again (a rerun of the task) is a no-op
    part = tmp_path / "work" / "raw" / "c4" / "part-00001.parquet"
    shard = ShardTask(str(tmp_path / "out" / "part-00000.parquet"),
                      (Span(str(part), 0, 5, 5, source.name),), 4, ())
    data = part.read_bytes()
    assert write_shard_task(shard) == 5 and write_shard_task(shard) == 5
    assert (tmp_path / "out" / "part-00000.parquet").read_bytes() == data and not part.exists()


def test_stage_with_two_workers_writes_the_one_worker_bytes(tmp_path):
    root = tmp_path / "in"
    write_many(root)
    params = params_for(root)
    params["ingest"]["paths"].append(str(root / "c4-*.jsonl"))
    params["ingest"]["shard_docs"] = 4
    code, one = run_stage(tmp_path, params, "one")
    params["shared"] = {"workers": 2}
    code2, two = run_stage(tmp_path, params, "two")
    assert code == code2 == 0
    for tree in TREES:
        assert tree_bytes(one / tree) == tree_bytes(two / tree)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    m1.pop("wall_seconds"), m2.pop("wall_seconds")
    assert m1 == m2 and m1["accounting"]["slices"]["c4"]["out"] == 27
