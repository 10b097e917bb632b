"""RedPajama-format inputs: JSONL (plain/.gz/.zst) and Parquet readers, records → documents."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from redrobe.documents import file_digest
from redrobe.errors import InputError
from redrobe.sources.redpajama import expand_paths, iter_records, normalize_slice, to_document

GOOD = {"text": "The committee met on Tuesday.", "meta": {"url": "https://example.org/a"},
        "red_pajama_subset": "c4"}
LINES = [
    json.dumps(GOOD),
    '{"text": "unterminated',                                            # bad JSON
    json.dumps({"meta": {}, "red_pajama_subset": "c4"}),                 # missing text
    "",                                                                  # blank: not a record
    json.dumps({"text": "Call me Ishmael.", "red_pajama_subset": "book",
                "meta": json.dumps({"title": "Moby-Dick"})}),            # meta as JSON string
    json.dumps({"text": "def f(): pass", "source": "github"}),
    json.dumps({"text": "plain", "meta": {"source": "arxiv"}}),
    json.dumps({"text": "no slice named"}),
    json.dumps({"text": "x", "red_pajama_subset": "../etc"}),            # unusable slice name
    json.dumps([1, 2]),                                                  # not an object
]
BLOB = ("\n".join(LINES) + "\n").encode()


def write(path: Path, data: bytes = BLOB) -> Path:
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz", "in.jsonl.zst"])
def test_jsonl_records_with_line_numbers_and_errors(tmp_path, name):
    path = write(tmp_path / name)
    records = list(iter_records(path))
    assert [r.position for r in records] == [1, 2, 3, 5, 6, 7, 8, 9, 10]  # blank line 4 skipped
    assert records[0].value == GOOD and records[0].sha256 == file_digest(path)
    assert records[1].error.startswith("invalid JSON")
    assert records[8].error == "record is a JSON list, not an object"


def test_records_become_documents_with_slices_and_quarantine(tmp_path):
    path = write(tmp_path / "in.jsonl")
    docs = [to_document(r, "common_crawl") for r in iter_records(path)]
    by_line = {d.meta["provenance"]["line"]: d for d in docs}
    assert by_line[1].source == "c4" and by_line[1].text == GOOD["text"]
    assert by_line[1].meta["url"] == "https://example.org/a"
    assert by_line[1].meta["provenance"] == {"file": str(path), "sha256": file_digest(path), "line": 1}
    assert by_line[5].source == "books" and by_line[5].meta["title"] == "Moby-Dick"
    assert by_line[6].source == "github" and by_line[7].source == "arxiv"
    assert by_line[8].source == "common_crawl"  # the default slice
    errors = {line: d.extra["error"] for line, d in by_line.items() if "error" in d.extra}
    assert set(errors) == {2, 3, 9, 10}
    assert errors[2].startswith(f"{path}:2: invalid JSON")
    assert errors[3] == f"{path}:3: missing 'text'"
    assert "invalid slice name '../etc'" in errors[9]
    assert by_line[2].text == LINES[1]  # the bad line itself is kept in quarantine
    # ids depend on (file digest, line) only: the same bytes elsewhere give the same ids
    copy = write(tmp_path / "copy.jsonl")
    assert [to_document(r, "common_crawl").id for r in iter_records(copy)] == [d.id for d in docs]
    assert by_line[1].id.startswith("c4/")


def test_parquet_rows_stream_with_row_numbers(tmp_path):
    path = tmp_path / "in.parquet"
    table = pa.table({"text": ["first row", None, "third"],
                      "meta": ['{"url": "https://example.org/p"}', None, None],
                      "red_pajama_subset": ["wikipedia", "wikipedia", None]})
    pq.write_table(table, path)
    docs = [to_document(r, "c4") for r in iter_records(path, batch_size=2)]
    assert [d.meta["provenance"]["row"] for d in docs] == [0, 1, 2]
    assert docs[0].source == "wikipedia" and docs[0].meta["url"] == "https://example.org/p"
    assert docs[1].extra["error"] == f"{path}:row 1: missing 'text'"
    assert '"red_pajama_subset": "wikipedia"' in docs[1].text
    assert docs[2].source == "c4"


def test_parquet_without_text_column_is_an_input_error(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"content": ["x"]}), path)
    with pytest.raises(InputError, match=f"{path}: no 'text' column"):
        list(iter_records(path))


@pytest.mark.parametrize("name, data", [("broken.jsonl.gz", b"\x1f\x8b\x08\x00garbage"),
                                        ("broken.jsonl.zst", b"\x28\xb5\x2f\xfdgarbage"),
                                        ("broken.parquet", b"PAR1 not really")])
def test_corrupt_files_are_input_errors_naming_the_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError, match=f"{path}: unreadable"):
        list(iter_records(path))


def test_expand_paths_reports_missing_inputs(tmp_path):
    a = write(tmp_path / "a.jsonl")
    b = write(tmp_path / "b.jsonl.gz")
    assert expand_paths([str(tmp_path / "*.jsonl*"), str(a)]) == [a, b]
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        expand_paths([str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError, match=r"'.*\*\.parquet' matches no file"):
        expand_paths([str(tmp_path / "*.parquet")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt: unsupported file type"):
        expand_paths([str(tmp_path / "notes.txt")])


def test_normalize_slice():
    assert normalize_slice(" Book ") == "books" and normalize_slice("common_crawl") == "common_crawl"
    for bad in ("", "a/b", "C4 news", 7):
        with pytest.raises(ValueError):
            normalize_slice(bad)


def test_invalid_utf8_line_is_quarantined_not_fatal(tmp_path):
    path = write(tmp_path / "mixed.jsonl", b'{"text": "caf\xe9"}\n' + json.dumps(GOOD).encode() + b"\n")
    docs = [to_document(r, "c4") for r in iter_records(path)]
    assert docs[0].extra["error"].startswith(f"{path}:1: invalid UTF-8")
    assert docs[0].text == '{"text": "caf\ufffd"}'
    assert docs[1].text == GOOD["text"] and "error" not in docs[1].extra
