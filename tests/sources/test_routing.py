"""Routing a slice by language: labels, identification, the keep list, the minimum score,
removal reasons, partitions written by the sink and their accounting."""

import pytest

from redrobe.config import IngestRouting
from redrobe.documents import Document, list_shards, read_documents
from redrobe.sources.base import EMPTY_TEXT, LANGUAGE_NOT_KEPT, LANGUAGE_SCORE_BELOW_MIN, quarantined
from redrobe.sources.routing import LABEL_SCORE, Router
from redrobe.sources.sink import SliceSink

GERMAN = ("Der Rhein ist ein Strom in Mitteleuropa. Er entspringt in den Alpen und mündet "
          "in die Nordsee, nachdem er viele Städte durchflossen hat.")
ENGLISH = ("The Rhine is a river in central Europe. It rises in the Alps and flows into the "
           "North Sea after passing through many cities.")
FRENCH = "Le Rhin est un fleuve d'Europe qui prend sa source dans les Alpes suisses."


def router(keep=("en", "de"), min_score=0.0, backend="fasttext") -> Router:
    return Router.of(IngestRouting(keep=list(keep), min_score=min_score), backend)


def doc(text: str, label: str | None = None, n: int = 0) -> Document:
    meta = {"language_label": label} if label else {}
    return Document(f"wikipedia/{n}", text, "wikipedia", meta)


@pytest.mark.parametrize("backend", ["fasttext", "py3langid"])
def test_an_unlabelled_document_is_identified_with_the_chosen_backend(backend):
    language, routed = router(backend=backend).route(doc(GERMAN))
    assert language == "de" and "reason" not in routed.extra
    assert routed.extra["language"] == "de" and 0.5 < routed.extra["language_score"] <= 1.0


def test_a_source_label_wins_over_identification_with_score_one():
    # the English text labelled German: the source states what the text is
    language, routed = router().route(doc(ENGLISH, label="deu"))
    assert language == "de"                      # normalized as the rules key languages
    assert routed.extra == {"language": "de", "language_score": LABEL_SCORE}


def test_a_language_outside_the_keep_list_is_removed_with_its_reason():
    language, routed = router(keep=("en",)).route(doc(FRENCH))
    assert language == "fr" and routed.extra["reason"] == LANGUAGE_NOT_KEPT
    assert routed.extra["language"] == "fr"      # kept on the removed document: why


def test_a_score_below_the_minimum_is_removed_but_a_label_always_passes():
    mixed = "Rhine Rhein Rhin river Fluss fleuve " * 3
    language, score = router().language_of(doc(mixed))
    strict = router(keep=(language,), min_score=min(1.0, score + 0.01))
    assert strict.route(doc(mixed))[1].extra["reason"] == LANGUAGE_SCORE_BELOW_MIN
    assert "reason" not in router(keep=("en",), min_score=1.0).route(doc(mixed, label="en"))[1].extra


def test_the_sink_writes_language_partitions_and_counts_each(dirs):
    sink = SliceSink(dirs, "wikipedia", shard_docs=2, batch_size=2, max_chars=10_000,
                     router=router(keep=("en", "de")))
    docs = [doc(ENGLISH, n=0), doc(GERMAN, n=1), doc(FRENCH, n=2), doc(ENGLISH + " Again.", n=3),
            doc(ENGLISH + " More.", n=4), doc("   ", n=5), quarantined(doc("\x00", n=6), "unreadable")]
    for d in docs:
        sink.add(d, origin="input")
    reports = {r.slice: r for r in sink.close()}
    assert list(reports) == ["wikipedia/de", "wikipedia/en", "wikipedia/fr", "wikipedia/und"]
    counts = {name: r.ledger.as_dict()["slices"][name] for name, r in reports.items()}
    assert (counts["wikipedia/en"]["in"], counts["wikipedia/en"]["out"]) == (3, 3)
    assert counts["wikipedia/fr"]["removed_by_reason"] == {LANGUAGE_NOT_KEPT: 1}
    assert counts["wikipedia/und"]["removed_by_reason"] == {EMPTY_TEXT: 1}
    assert counts["wikipedia/und"]["quarantined"] == 1
    for c in counts.values():
        assert c["in"] == c["out"] + c["removed"] + c["quarantined"]
    assert sum(c["in"] for c in counts.values()) == len(docs) and sink.kept == 4
    # shards only where documents went: no empty language moves on
    assert [s.path for s in reports["wikipedia/en"].raw] == [
        "wikipedia/en/part-00000.parquet", "wikipedia/en/part-00001.parquet"]
    assert reports["wikipedia/fr"].raw == [] and reports["wikipedia/de"].removed == []
    assert all(r.routed for r in reports.values())
    raw = [d for p in list_shards(dirs.raw) for d in read_documents(p)]
    assert {(d.id, d.extra["language"]) for d in raw} == {
        ("wikipedia/0", "en"), ("wikipedia/1", "de"), ("wikipedia/3", "en"), ("wikipedia/4", "en")}
    assert all(isinstance(d.extra["language_score"], str) for d in raw)   # string column
    (removed,) = read_documents(dirs.removed / "wikipedia" / "fr" / "part-00000.parquet")
    assert (removed.extra["reason"], removed.extra["language"]) == (LANGUAGE_NOT_KEPT, "fr")


def test_a_routed_slice_that_read_nothing_reports_zeros_and_writes_nothing(dirs):
    (report,) = SliceSink(dirs, "wikipedia", 2, 2, 100, router=router()).close()
    assert report.slice == "wikipedia" and report.ledger.as_dict()["slices"]["wikipedia"]["in"] == 0
    assert (report.raw, report.removed, report.quarantine) == ([], [], [])
    assert not dirs.raw.exists()


def test_an_unrouted_slice_keeps_its_layout_and_placeholders(dirs):
    sink = SliceSink(dirs, "books", 2, 2, 10_000)
    sink.add(Document("books/0", FRENCH, "books"), origin="input")
    (report,) = sink.close()
    assert report.slice == "books" and not report.routed
    assert [s.path for s in report.raw + report.removed + report.quarantine] == [
        "books/part-00000.parquet"] * 3
    (kept,) = read_documents(dirs.raw / "books" / "part-00000.parquet")
    assert kept.extra == {}                      # no language columns
