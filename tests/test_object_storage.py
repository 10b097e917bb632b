"""Object storage on a real S3 server: ingest from s3://, one-pass hashing, DVC remote, dedup scratch.

The server is moto's, started on 127.0.0.1 as its own process (tests/s3_server.py).
The corpus holds one small, well-formed file of each streamed format plus a Parquet
file and a code tree (hashed by a read of their own) and is ingested from a local
directory and from a bucket: the outputs must be the same but for the names the
provenance and metrics record (the path as given vs the ``s3://`` URL).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import random
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from pipeline_repo import dvc, git
from s3_server import S3Server  # the fixtures s3 and s3_server come from conftest.py
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from redrobe.accounting import Ledger
from redrobe.documents import Document, ShardWriter, list_shards, read_documents, shard_path
from redrobe.sources import fileio
from redrobe.sources.base import Origin, stable_id
from redrobe.sources.fileio import expand
from redrobe.sources.inputs import InputSpec, ingest_inputs
from redrobe.sources.sink import OutputDirs
from redrobe.sources.warc import wet_documents
from redrobe.stages import bucket as bucket_stage
from redrobe.stages import clean as clean_stage
from redrobe.stages import dedup as dedup_stage
from redrobe.stages import ingest as ingest_stage
from redrobe.stages import quality as quality_stage
from redrobe.stages import tokenize as tokenize_stage
from redrobe.storage import MANIFEST, read_manifest

WIKI = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">'
        "<siteinfo><sitename>Wikipedia</sitename><dbname>enwiki</dbname>"
        "<base>https://en.wikipedia.org/wiki/Main_Page</base>"
        '<namespaces><namespace key="0" case="first-letter" /></namespaces></siteinfo>\n'
        "<page><title>Tide</title><ns>0</ns><id>1</id><revision><id>10</id>"
        "<timestamp>2023-03-20T10:00:00Z</timestamp><contributor><username>Ed</username><id>1</id>"
        "</contributor><model>wikitext</model><format>text/x-wiki</format>"
        "<text xml:space=\"preserve\">A '''tide''' is the rise and fall of [[sea level]].</text>"
        "</revision></page>\n</mediawiki>\n")
POSTS = ('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
         '  <row Id="1" PostTypeId="1" Score="3" Body="&lt;p&gt;Why do tides repeat?&lt;/p&gt;" '
         'Title="Tides" Tags="&lt;physics&gt;" />\n'
         '  <row Id="2" PostTypeId="2" ParentId="1" Score="5" Body="&lt;p&gt;The moon.&lt;/p&gt;" />\n'
         "</posts>\n")
PAPER = (r"\documentclass{article}\begin{document}\section{Tides}"
         r"Tides follow the moon.\end{document}")
MIT = ("MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy "
       'of this software and associated documentation files (the "Software"), to deal\n'
       "in the Software without restriction...\n")


def warc_bytes(kind: str, pages: int) -> bytes:
    """A gzipped WARC of ``pages`` HTML responses, or a WET of text conversions."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for i in range(pages):
        headers = {"WARC-Date": "2023-03-20T00:00:00Z",
                   "WARC-Record-ID": f"<urn:uuid:00000000-0000-0000-0000-{i:012d}>"}
        if kind == "wet":
            record = writer.create_warc_record(
                f"https://site.example/{i}", "conversion",
                warc_headers_dict={**headers, "Content-Type": "text/plain"},
                payload=io.BytesIO(f"Page {i} is about the tides of the North Sea.".encode()))
        else:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            html = (f"<html><body><article><h1>Ferry {i}</h1><p>The ferry leaves at high tide, "
                    "twice a day, from the old harbour wall.</p></article></body></html>")
            record = writer.create_warc_record(
                f"https://news.example/{i}", "response", payload=io.BytesIO(html.encode()),
                http_headers=http, warc_headers_dict=headers)
        writer.write_record(record)
    return buf.getvalue()


def paper_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("main.tex")
        info.size = len(PAPER)
        tar.addfile(info, io.BytesIO(PAPER.encode()))
    return buf.getvalue()


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["A row about tides.", "Another row."],
                             "red_pajama_subset": ["c4", "c4"]}), buf)
    return buf.getvalue()


def corpus_files() -> dict[str, bytes]:
    """A small real file of every format, by path relative to the corpus root."""
    rows = [{"text": "Tides are long waves.", "red_pajama_subset": "c4"}, {"text": "No subset."}]
    jsonl = "".join(json.dumps(r) + "\n" for r in rows) + "{not json\n"
    return {
        "crawl.warc.gz": warc_bytes("warc", 2),
        "crawl.warc.wet.gz": warc_bytes("wet", 3),
        "rp.jsonl.zst": zstandard.ZstdCompressor().compress(jsonl.encode()),
        "rp.parquet": parquet_bytes(),
        "enwiki-pages-articles.xml.bz2": bz2.compress(WIKI.encode()),
        "earthscience.stackexchange.com-Posts.xml": POSTS.encode(),
        "2301.00001.tar.gz": paper_tar(),
        "pg11.txt.gz": gzip.compress(b"Title: Tides\n\nThe sea rose and fell."),
        "repo/LICENSE": MIT.encode(),
        "repo/tides.py": b"def high_tide(hour):\n    return hour % 12 == 0\n",
    }


def ingest(pattern: str, out: Path) -> tuple[dict[str, str], Ledger]:
    dirs = OutputDirs(out / "raw", out / "removed", out / "quarantine")
    reports, inputs = ingest_inputs([InputSpec(pattern)], dirs, "common_crawl", shard_docs=4,
                                    batch_size=2, max_chars=10_000, max_input_bytes=1 << 20)
    ledger = Ledger()
    for report in reports:
        ledger.merge(report.ledger)
    assert not ledger.check()
    return inputs, ledger


def shards(out: Path, name_from: str = "", name_to: str = "") -> dict[str, pa.Table]:
    """Every output shard as a table, the input names in it renamed."""
    tables = {}
    for path in sorted(out.rglob("*.parquet")):
        table = pq.read_table(path)
        for i, column in enumerate(table.column_names):
            if pa.types.is_string(table.schema.field(column).type):
                values = [v.replace(name_from, name_to) if v else v
                          for v in table.column(column).to_pylist()]
                table = table.set_column(i, column, pa.array(values, pa.string()))
        tables[path.relative_to(out).as_posix()] = table
    return tables


@pytest.mark.e2e
def test_ingest_from_s3_equals_ingest_from_a_local_directory(s3: S3Server, tmp_path: Path):
    bucket = s3.make_bucket("ingest-inputs")
    fs = s3.filesystem()
    files = corpus_files()
    for rel, data in files.items():
        (tmp_path / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "corpus" / rel).write_bytes(data)
        fs.pipe(f"{bucket}/corpus/{rel}", data)
    local = str(tmp_path / "corpus")
    url = f"s3://{bucket}/corpus"
    local_inputs, local_ledger = ingest(f"{local}/*", tmp_path / "local")
    s3_inputs, s3_ledger = ingest(f"{url}/*", tmp_path / "s3")
    assert len(local_inputs) == 9  # the code tree is one input
    assert {k.replace(url, local): v for k, v in s3_inputs.items()} == local_inputs
    assert dict(s3_ledger.slices) == dict(local_ledger.slices)
    assert sorted(local_ledger.slices) == ["arxiv", "books", "c4", "common_crawl", "github",
                                           "stackexchange", "wikipedia"]
    local_tables = shards(tmp_path / "local")
    assert shards(tmp_path / "s3", url, local) == local_tables
    (paper,) = read_documents(list_shards(tmp_path / "s3" / "raw", "arxiv")[0])
    assert paper.meta["provenance"]["file"] == f"{url}/2301.00001.tar.gz"  # the URL, no endpoint
    assert paper.meta["provenance"]["sha256"] == hashlib.sha256(files["2301.00001.tar.gz"]).hexdigest()


@pytest.mark.e2e
def test_a_truncated_s3_input_is_quarantined_naming_its_url(s3: S3Server, tmp_path: Path):
    bucket = s3.make_bucket("ingest-broken")
    good = warc_bytes("wet", 3)
    s3.filesystem().pipe(f"{bucket}/cut.warc.wet.gz", good[:-40])
    inputs, ledger = ingest(f"s3://{bucket}/cut.warc.wet.gz", tmp_path)
    assert inputs == {f"s3://{bucket}/cut.warc.wet.gz": hashlib.sha256(good[:-40]).hexdigest()}
    (error,) = [d.extra["error"] for d in
                read_documents(list_shards(tmp_path / "quarantine", "common_crawl")[0])]
    assert error.startswith(f"s3://{bucket}/cut.warc.wet.gz: unreadable wet input")
    assert error.endswith("after 2 record(s)")
    assert ledger.slices["common_crawl"].docs_out == 2


class CountingFile(io.RawIOBase):
    """A file that counts every byte read from it (into ``self.counter``)."""

    def __init__(self, path: str, counter: list[int]) -> None:
        self.inner, self.counter = open(path, "rb"), counter  # noqa: SIM115  (closed in close)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.counter[0] += len(data)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counter = [0]
    monkeypatch.setattr(fileio.Source, "open_raw",
                        lambda self: io.BufferedReader(CountingFile(self.path, counter)))
    return counter


@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.warc.wet.gz", "rp.jsonl.zst",
                                  "enwiki-pages-articles.xml.bz2", "2301.00001.tar.gz",
                                  "pg11.txt.gz", "earthscience.stackexchange.com-Posts.xml"])
def test_a_streamed_input_is_read_once_and_hashed_by_that_read(tmp_path, monkeypatch, name):
    data = corpus_files()[name]
    (tmp_path / name).write_bytes(data)
    counter = count_reads(monkeypatch)
    inputs, ledger = ingest(str(tmp_path / name), tmp_path / "out")
    assert inputs == {str(tmp_path / name): hashlib.sha256(data).hexdigest()}
    assert sum(s.docs_out for s in ledger.slices.values()) >= 1
    assert counter[0] == len(data)  # one pass: every byte read once, none twice


def test_bytes_a_reader_leaves_unread_are_hashed_at_close(tmp_path, monkeypatch):
    data = bytes(range(256)) * 4096  # 1 MiB: more than one buffer
    (tmp_path / "pg12.txt").write_bytes(data)
    counter = count_reads(monkeypatch)
    (source,) = expand(str(tmp_path / "pg12.txt"))
    hashed = source.hashed()
    with hashed.open() as fh:
        fh.read(10)
    assert hashed.digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert counter[0] == len(data)


def test_a_parquet_input_read_out_of_order_is_hashed_by_a_read_of_its_own(tmp_path, monkeypatch):
    data = parquet_bytes()
    (tmp_path / "rp.parquet").write_bytes(data)
    counter = count_reads(monkeypatch)
    inputs, _ = ingest(str(tmp_path / "rp.parquet"), tmp_path / "out")
    assert inputs == {str(tmp_path / "rp.parquet"): hashlib.sha256(data).hexdigest()}
    assert counter[0] > len(data)  # the footer first, then the whole file for the digest


def test_a_store_error_mid_read_quarantines_the_input_with_no_digest(tmp_path, monkeypatch):
    data = corpus_files()["crawl.warc.wet.gz"]
    (tmp_path / "crawl.warc.wet.gz").write_bytes(data)

    class Failing(CountingFile):
        def readinto(self, buffer) -> int:  # type: ignore[override]
            if self.counter[0]:
                raise ConnectionError("the store went away")
            return super().readinto(memoryview(buffer)[:100])

    counter = [0]
    monkeypatch.setattr(fileio.Source, "open_raw", lambda self: Failing(self.path, counter))
    inputs, ledger = ingest(str(tmp_path / "crawl.warc.wet.gz"), tmp_path / "out")
    assert inputs == {str(tmp_path / "crawl.warc.wet.gz"): ""}
    (error,) = [d.extra["error"] for d in
                read_documents(list_shards(tmp_path / "out" / "quarantine", "common_crawl")[0])]
    assert error == (f"{tmp_path / 'crawl.warc.wet.gz'}: unreadable "
                     "(ConnectionError: the store went away)")
    assert ledger.slices["common_crawl"].docs_out == 0


@pytest.mark.e2e
def test_dvc_pushes_to_and_pulls_from_an_s3_remote_on_the_server(s3: S3Server, tmp_path: Path):
    bucket = s3.make_bucket("dvc-remote")
    root = tmp_path / "repo"
    root.mkdir()
    files = {"data/raw/a.txt": b"first shard\n", "data/raw/sub/b.bin": bytes(range(256)) * 40}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    # the endpoint goes in the repository's config; credentials stay in the environment
    dvc(root, "remote", "add", "-d", "store", f"s3://{bucket}/cache")
    dvc(root, "remote", "modify", "store", "endpointurl", s3.endpoint)
    dvc(root, "add", "-q", "data/raw")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "data under DVC, remote on S3")
    dvc(root, "push", "-q", extra_env=s3.env)
    assert s3.filesystem().find(f"{bucket}/cache")  # the objects are on the server
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "data" / "raw")
    dvc(root, "pull", "-q", extra_env=s3.env)
    assert {rel: (root / rel).read_bytes() for rel in files} == files
    config = (root / ".dvc" / "config").read_text()
    assert s3.endpoint in config and "secret" not in config and "access_key" not in config


@pytest.mark.e2e
def test_the_ingest_stage_reads_s3_urls_from_params(s3: S3Server, tmp_path: Path):
    bucket = s3.make_bucket("ingest-stage")
    files = corpus_files()
    for rel, data in files.items():
        s3.filesystem().pipe(f"{bucket}/in/{rel}", data)
    params = {"ingest": {"mode": "files", "inputs": [
        {"path": f"s3://{bucket}/in/*.warc.wet.gz"},
        {"path": f"s3://{bucket}/in/repo", "format": "code", "slice": "github"}]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code = ingest_stage.main(["--params", str(tmp_path / "params.yaml"), "--cache-dir", str(tmp_path / "c"),
                        "--output", str(tmp_path / "raw"), "--removed", str(tmp_path / "removed"),
                        "--quarantine", str(tmp_path / "quarantine"),
                        "--metrics", str(tmp_path / "metrics.json")])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    wet = files["crawl.warc.wet.gz"]
    assert metrics["inputs"][0] == {"file": f"s3://{bucket}/in/crawl.warc.wet.gz",
                                    "sha256": hashlib.sha256(wet).hexdigest()}
    assert metrics["inputs"][1]["file"] == f"s3://{bucket}/in/repo"
    assert metrics["slices"]["common_crawl"]["docs"] == 3 and metrics["slices"]["github"]["docs"] == 1


def read_wet(data: bytes, origin: Origin) -> list:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
        return list(wet_documents(fh, origin, "common_crawl"))


def test_documents_get_the_ids_and_provenance_of_the_digest_known_up_front(tmp_path):
    """The spool's documents are written with the ids hashing the real sha256, as when
    the input was hashed before it was parsed."""
    data = corpus_files()["rp.jsonl.zst"]
    good = warc_bytes("wet", 3)
    cut = good[:-40]
    (tmp_path / "rp.jsonl.zst").write_bytes(data)
    (tmp_path / "cut.warc.wet.gz").write_bytes(cut)
    ingest(str(tmp_path / "*"), tmp_path / "out")
    docs = [d for tree in ("raw", "quarantine") for p in list_shards(tmp_path / "out" / tree)
            for d in read_documents(p)]
    rp, wet = hashlib.sha256(data).hexdigest(), hashlib.sha256(cut).hexdigest()
    cut_name = str(tmp_path / "cut.warc.wet.gz")
    assert sorted(d.id for d in docs) == sorted([
        stable_id("c4", rp, 1), stable_id("common_crawl", rp, 2), stable_id("common_crawl", rp, 3),
        *[d.id for d in read_wet(good, Origin(cut_name, wet))][:2],  # the two before the cut
        stable_id("common_crawl", wet, cut_name, "failure", 2)])
    assert {d.meta["provenance"]["sha256"] for d in docs} == {rp, wet}


@pytest.mark.e2e
def test_dedup_plan_scratch_on_s3_gives_the_local_bytes(s3: S3Server, tmp_path: Path, repo_root: Path):
    """The partitioned dedup plan shuffles through the bucket (two worker processes,
    many partitions) and leaves exactly the outputs of a local run, and no scratch."""
    texts = [" ".join(f"w{(i * 7 + k) % 50}x{k % 13}" for k in range(60)) for i in range(6)]
    for s, name in enumerate(("books", "c4", "books")):
        with ShardWriter(shard_path(tmp_path / "clean", name, s)) as w:
            for i, t in enumerate(texts):
                w.write(Document(id=f"{name}-{s}-{i}", text=t if i % 2 else t.upper(), source=name))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["dedup"].update(partition_keys=60, semantic={**params["dedup"]["semantic"], "enabled": False})
    params["shared"]["workers"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bucket = s3.make_bucket("dedup-scratch")

    def run(name: str, work_dir: str) -> dict[str, bytes]:
        out = tmp_path / name
        assert dedup_stage.main(["--params", str(tmp_path / "params.yaml"),
                                 "--input", str(tmp_path / "clean"), "--output", str(out / "out"),
                                 "--removed", str(out / "removed"),
                                 "--metrics", str(out / "m.json"), "--work-dir", work_dir]) == 0
        return {str(p.relative_to(out)): p.read_bytes() for sub in ("out", "removed")
                for p in list_shards(out / sub)}

    local = run("local", "")
    assert run("s3", f"s3://{bucket}/scratch") == local
    assert sum(1 for p in list_shards(tmp_path / "local" / "removed") for _ in read_documents(p)) == 12
    assert s3.filesystem().find(f"{bucket}/scratch") == []


def _prose(i: int) -> str:
    """A long, varied document that the clean rules keep; documents 4k and 4k + 1 are the
    same text (exact duplicates for dedup)."""
    text = ("the harbour wall and the boats wait for morning light while gulls circle above "
            "old piers where fishermen mend their nets before the tide turns back toward "
            "quiet villages along a rocky coast with lighthouses standing over cold water")
    words = text.split()
    rng = random.Random(i - (i % 4 == 1))
    return " ".join(" ".join(rng.choice(words) for _ in range(14)).capitalize() + "."
                    for _ in range(20))


def _run_data_stages(root: str, corpus: Path, params: Path, metrics: Path) -> None:
    """ingest (files) -> clean -> dedup with every output under ``root``."""
    def d(name: str) -> str:
        return f"{root}/{name}"
    assert ingest_stage.main(["--params", str(params), "--cache-dir", str(metrics / "dists"),
                              "--output", d("raw"), "--removed", d("rm-ingest"),
                              "--quarantine", d("q-ingest"), "--metrics", str(metrics / "ingest.json")]) == 0
    assert clean_stage.main(["--params", str(params), "--input", d("raw"), "--output", d("clean"),
                             "--removed", d("rm-clean"), "--quarantine", d("q-clean"),
                             "--metrics", str(metrics / "clean.json")]) == 0
    assert dedup_stage.main(["--params", str(params), "--input", d("clean"), "--output", d("dedup"),
                             "--removed", d("rm-dedup"), "--metrics", str(metrics / "dedup.json")]) == 0


def _run_model_data_stages(root: str, params: Path, local: Path, work: str) -> None:
    """quality, tokenize and bucket reading the document outputs under ``root``; their own
    outputs (reports, tokenizer, token arrays) are local files under ``local``."""
    assert quality_stage.main(["--params", str(params), "--raw", f"{root}/raw", "--clean", f"{root}/clean",
                               "--input", f"{root}/dedup", "--clean-metrics", str(local / "clean.json"),
                               "--dedup-metrics", str(local / "dedup.json"),
                               "--output", str(local / "quality"), "--docs", str(local / "docs"),
                               "--metrics", str(local / "quality.json"),
                               "--work-dir", work]) == 0
    assert tokenize_stage.main(["--params", str(params), "--input", f"{root}/dedup", "--gate",
                                str(local / "quality"), "--output", str(local / "tokenizer"),
                                "--metrics", str(local / "tokenize.json")]) == 0
    assert bucket_stage.main(["--params", str(params), "--input", f"{root}/dedup", "--tokenizer",
                              str(local / "tokenizer"), "--output", str(local / "buckets"),
                              "--metrics", str(local / "bucket.json")]) == 0


@pytest.mark.e2e
def test_the_data_stages_write_to_s3_the_bytes_they_write_locally(s3: S3Server, tmp_path: Path,
                                                                  repo_root: Path):
    """ingest, clean and dedup with every output in a bucket (two worker processes): each
    output is committed by a manifest listing the same files, rows and sha256s as the
    local run's, and the metrics agree."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "prose.jsonl").write_text("".join(
        json.dumps({"text": _prose(i), "red_pajama_subset": "c4" if i % 3 else "wikipedia"}) + "\n"
        for i in range(60)))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["ingest"].update(mode="files", paths=[], inputs=[{"path": f"{corpus}/*"}], shard_docs=7)
    params["dedup"]["semantic"]["enabled"] = False
    params["shared"].update(workers=2, batch_docs=4, slices=["c4", "wikipedia"])
    params["lora"]["slice"] = "wikipedia"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bucket = s3.make_bucket("stage-outputs")
    runs = {"local": str(tmp_path / "local"), "s3": f"s3://{bucket}/data"}
    for name, root in runs.items():
        (tmp_path / f"m-{name}").mkdir()
        _run_data_stages(root, corpus, tmp_path / "params.yaml", tmp_path / f"m-{name}")
        _run_model_data_stages(root, tmp_path / "params.yaml", tmp_path / f"m-{name}",
                               f"s3://{bucket}/scratch" if name == "s3" else "")
    outputs = ("raw", "rm-ingest", "q-ingest", "clean", "rm-clean", "q-clean", "dedup", "rm-dedup")
    for output in outputs:
        local = read_manifest(f"{runs['local']}/{output}")
        assert local and read_manifest(f"{runs['s3']}/{output}") == local, output
    for stage in ("ingest", "clean", "dedup", "quality", "tokenize", "bucket"):
        local, remote = (json.loads((tmp_path / f"m-{n}" / f"{stage}.json").read_text()) for n in runs)
        assert {**remote, "wall_seconds": 0} == {**local, "wall_seconds": 0}, stage
    for output in ("quality", "tokenizer", "buckets"):   # written locally from the bucket's shards
        local, remote = (read_manifest(tmp_path / f"m-{n}" / output) for n in runs)
        assert local and remote == local, output
    dedup = json.loads((tmp_path / "m-s3" / "dedup.json").read_text())
    assert dedup["accounting"]["total"]["removed"] > 0     # the duplicates were found
    fs = s3.filesystem()
    assert [f for f in fs.find(f"{bucket}/data") if "/." in f] == []   # no sidecars or scratch
    assert fs.find(f"{bucket}/scratch") == []
    raw = list_shards(f"{runs['s3']}/raw")
    assert all(str(p).startswith(f"s3://{bucket}/data/raw/") for p in raw)
    fs.rm(f"{bucket}/data/clean/{MANIFEST}")                   # an uncommitted input is refused
    assert dedup_stage.main(["--params", str(tmp_path / "params.yaml"), "--input", f"{runs['s3']}/clean",
                             "--output", f"{runs['s3']}/again", "--removed", f"{runs['s3']}/rm-again",
                             "--metrics", str(tmp_path / "again.json")]) == 1
