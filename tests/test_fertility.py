"""redrobe.fertility: words per language (scripts without spaces included), tokens per
word and per character, the document's language column, merging per-shard counts."""

from __future__ import annotations

import pickle

from redrobe.documents import Document
from redrobe.fertility import UNDETERMINED, Fertility, count_words, document_language

CHINESE = "我们的语言是一种功能强大的语言。"   # 16 characters


def test_words_follow_the_language_profile():
    assert count_words("Das ist ein Haus.", "de") == 4
    assert count_words("Hello, world.  This is it.", "en") == 5
    # Chinese: the stop words 我们 and 一种 whole, every other character a word, 。 a word
    assert count_words(CHINESE, "zh") == 14
    # Japanese: one word per kanji, です a stop word
    assert count_words("東京は日本の首都です。", "ja") == 10
    # an unprofiled language splits on whitespace, as English does
    assert count_words("Moien alleguer zesummen", "lb") == 3


def test_fertility_on_known_text():
    counts = Fertility()
    counts.add("de", "Das ist ein Haus.", 6)
    counts.add("de", "Ein Haus", 3)
    counts.add("zh", CHINESE, 21)
    result = counts.as_dict()
    assert list(result) == ["de", "zh"]
    assert result["de"] == {"docs": 2, "words": 6, "chars": 25, "tokens": 9,
                            "tokens_per_word": 1.5, "tokens_per_char": 0.36}
    assert result["zh"]["words"] == 14 and result["zh"]["chars"] == 16
    assert result["zh"]["tokens_per_word"] == 1.5
    assert result["zh"]["tokens_per_char"] == round(21 / 16, 6)


def test_empty_text_has_no_ratio():
    counts = Fertility()
    counts.add("en", "", 0)
    assert counts.as_dict()["en"]["tokens_per_word"] is None
    assert counts.as_dict()["en"]["tokens_per_char"] is None


def test_merged_counts_add_up_and_survive_pickling():
    a, b = Fertility(), Fertility()
    a.add("fr", "un deux trois", 4)
    b.add("fr", "quatre", 2)
    b.add("en", "one two", 2)
    total = Fertility.merged(pickle.loads(pickle.dumps(x)) for x in (a, b))
    assert total.as_dict()["fr"]["words"] == 4 and total.as_dict()["fr"]["tokens"] == 6
    assert total.as_dict()["en"]["docs"] == 1
    assert a.as_dict()["fr"]["tokens"] == 4          # merging copies, never aliases


def test_document_language_reads_the_clean_column():
    assert document_language(Document("a", "x", "c4", extra={"language": "zh-Hant"})) == "zh"
    assert document_language(Document("b", "x", "c4", extra={"language": "DEU"})) == "de"
    assert document_language(Document("c", "x", "github", extra={"language": None})) == UNDETERMINED
    assert document_language(Document("d", "x", "c4")) == UNDETERMINED
