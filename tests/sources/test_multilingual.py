"""The multilingual sample source: crafted archives (decoding, parsing, quarantine) and
the real pinned ones (languages, scripts, provenance, stable ids, the check set).

    pytest tests/sources/test_multilingual.py -q

The real-archive tests read the pins from the repository's ``.cache/dists`` when a run
has put them there, else download them once into a temporary cache (needs PyPI, ~7 MB).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from redrobe.sources import multilingual as ml
from redrobe.sources.base import QUARANTINED, route

REPO = Path(__file__).resolve().parents[2]
DATA = "charset_normalizer-3.5.2/data"
SPACY_META = b"Metadata-Version: 2.1\nName: spacy\nLicense: MIT\n"


def crafted(make_archive, greek: bytes = "Η ελληνική γλώσσα μιλιέται στην Κύπρο.".encode("cp1253"),
            german: bytes = b'sentences = ["Die ganze Stadt ist ein Startup.", "Wo bist du?"]\n'):
    charset = make_archive("charset-normalizer", "3.5.2", {
        f"{DATA}/sample-greek.txt": greek,
        f"{DATA}/sample-greek-2.txt": greek,                       # the same text again: skipped
        f"{DATA}/sample-french.txt": "\ufeffLe roi\r\nse lève.\r\n\r\nFin.  \r\n".encode(),
        f"{DATA}/NOTICE.md": b"notice",
    })
    spacy = make_archive("spacy", "3.8.18", {
        "spacy-3.8.18.dist-info/METADATA": SPACY_META,
        "spacy/lang/de/examples.py": german,
        "spacy/lang/xx/examples.py": b'sentences = ["Mixed."]\n',     # many languages: skipped
        "spacy/lang/ja/examples.py": 'sentences = ["アップルがイギリスの新興企業を購入"]\n'.encode(),
        "spacy/lang/de/stop_words.py": b"STOP_WORDS = set()\n",
    }, kind="wheel")
    return {"charset-normalizer": charset, "spacy": spacy}


def test_crafted_archives_give_one_document_per_text_and_language(make_archive):
    docs = list(ml.documents(crafted(make_archive)))
    assert [(d.meta["language_label"], d.meta["script"]) for d in docs] == [
        ("el", "Grek"), ("fr", "Latn"), ("de", "Latn"), ("ja", "Jpan")]
    greek, french, german, japanese = docs
    assert greek.text == "Η ελληνική γλώσσα μιλιέται στην Κύπρο." and greek.meta["encoding"] == "cp1253"
    assert french.text == "Le roi\nse lève.\n\nFin."            # BOM, CRLF and trailing blanks gone
    assert german.text == "Die ganze Stadt ist ein Startup.\nWo bist du?"
    assert german.meta["sentences"] == 2 and german.meta["license"] == "MIT"
    assert greek.meta["license"] == ml.CHARSET_TEXT_LICENSE
    assert german.meta["provenance"] == {"distribution": "spacy==3.8.18",
                                         "member": "spacy/lang/de/examples.py",
                                         "sha256": german.meta["provenance"]["sha256"], "offset": 0}
    assert all(d.id.startswith("multilingual/") for d in docs)
    assert len({d.id for d in docs}) == 4


def test_undecodable_sample_and_non_literal_examples_are_quarantined(make_archive):
    # bytes that are not the pinned encoding; a list that is code, never run
    archives = crafted(make_archive, greek=b"\x81\x81 not cp1253",
                       german=b'sentences = [__import__("os").system("false")]\n')
    docs = list(ml.documents(archives))
    bad = {d.meta["provenance"]["member"]: d for d in docs if "error" in d.extra}
    assert set(bad) == {f"{DATA}/sample-greek.txt", "spacy/lang/de/examples.py"}
    assert "codec can't decode" in bad[f"{DATA}/sample-greek.txt"].extra["error"]
    assert "ValueError" in bad["spacy/lang/de/examples.py"].extra["error"]
    assert all(route(d, 10**6)[0] == QUARANTINED for d in bad.values())


def test_example_sentences_reads_the_literal_only():
    assert ml.example_sentences('"""doc"""\nsentences = ["a", " ", "b"]\n') == ["a", "b"]
    with pytest.raises(ValueError, match="no module-level"):
        ml.example_sentences("x = 1\n")
    with pytest.raises(ValueError, match="not a non-empty list"):
        ml.example_sentences("sentences = [1, 2]\n")


@pytest.mark.parametrize(("text", "script"), [
    ("Москва — столица России", "Cyrl"), ("بالموازاة مع ذلك", "Arab"), ("維基大典者，網路為礎", "Hani"),
    ("एप्पल 1 अरब डॉलर के लिए", "Deva"), ("アップルがイギリスの新興企業", "Jpan"),
    ("역사적 예수 연구자들은", "Hang"),
    ("Ｔｏｋｙｏ ｉｓ ｂｉｇ", "Latn"), ("1234 !!", "Zyyy"),
])
def test_dominant_script(text, script):
    assert ml.dominant_script(text) == script


def test_check_set_splits_sentences_and_paragraphs(make_archive):
    items = ml.check_set(crafted(make_archive), min_chars=5)
    assert [(i.text, i.label) for i in items] == [
        ("Η ελληνική γλώσσα μιλιέται στην Κύπρο.", "el"), ("Le roi se lève.", "fr"),
        ("Die ganze Stadt ist ein Startup.", "de"), ("Wo bist du?", "de"),
        ("アップルがイギリスの新興企業を購入", "ja")]
    german = [i for i in items if i.label == "de"]
    assert [i.offset for i in german] == [0, len("Die ganze Stadt ist ein Startup.\n")]


# ----------------------------------------------------------------------------- the real pins

@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """The pinned archives: the repository's download cache when it has them, else PyPI."""
    repo_cache = REPO / ".cache" / "dists"
    have = all((repo_cache / pin.filename).exists() for pin in ml.PINS)
    cache = repo_cache if have else tmp_path_factory.mktemp("dists")
    return ml.open_archives(ml.fetch_pins(cache))


def test_real_sources_cover_many_languages_and_scripts(archives):
    docs = list(ml.documents(archives))
    assert not [d.id for d in docs if "error" in d.extra]
    labels = {d.meta["language_label"] for d in docs}
    scripts = {d.meta["script"] for d in docs}
    assert len(labels) >= 12 and len(scripts) >= 5
    assert {"Latn", "Cyrl", "Arab", "Hani", "Deva", "Grek", "Hebr", "Hang", "Jpan"} <= scripts
    by_label = {}
    for doc in docs:
        by_label.setdefault(doc.meta["language_label"], set()).add(doc.meta["script"])
    assert by_label["ja"] == {"Jpan"} and by_label["hi"] == {"Deva"} and by_label["ru"] == {"Cyrl"}
    assert by_label["zh"] == {"Hani"} and by_label["ar"] == {"Arab"} and by_label["ko"] == {"Hang"}
    for doc in docs:
        prov = doc.meta["provenance"]
        pin = next(p for p in ml.PINS if p.spec == prov["distribution"])
        assert prov["sha256"] == pin.sha256 and set(prov) == {"distribution", "member", "sha256", "offset"}
        assert doc.meta["license"] and doc.text.strip()
    # charset-normalizer's paragraphs are long; spaCy's grouped sentences dozens of words
    words = sorted(len(d.text.split()) for d in docs if d.meta["script"] in ("Latn", "Cyrl"))
    assert words[len(words) // 2] >= 40


def test_real_ids_are_unique_and_stable(archives):
    first = [(d.id, d.text) for d in ml.documents(archives)]
    again = [(d.id, d.text) for d in ml.documents(archives)]
    assert first == again and len({i for i, _ in first}) == len(first)


def test_real_check_set_is_labelled_from_the_documents(archives):
    items = ml.check_set(archives)
    docs = {d.id: d for d in ml.documents(archives)}
    assert len(items) > 300 and len({i.label for i in items}) >= 12
    assert all(len(i.text) >= 20 and i.text in " ".join(docs[i.doc_id].text.split()) for i in items)
    assert all(i.label == docs[i.doc_id].meta["language_label"] for i in items)
