"""Table "tokenizer-fertility": folds keep every multilingual item held out, both variants
measure the same text, the English baseline is the English slices' validation documents,
the rows beside the paper's premiums and the claims' verdicts, on crafted text (the
multilingual archives are replaced by a few items; tests/tables/test_tables_tiny.py runs
the table on the real ones)."""

from __future__ import annotations

import pytest

from redrobe.config import ConfigError
from redrobe.documents import Document
from redrobe.fertility import count_words
from redrobe.sources.multilingual import LabelledText
from redrobe.tables import tokenizer_fertility as tf

PROSE = ("The history of the river valley is long and varied. Farmers settled along the "
         "banks and built small villages with stone walls. ")
UNSEEN = ["zqzqzq vkvkvk xjxjxj " * 8, "mwmwmw pjpjpj fqfqfq " * 8]   # share no byte pair
REPEATED = "Donaudampfschifffahrt Kapitänsmütze " * 8
CHINESE = "我们的语言是一种功能强大的语言。" * 3


def items() -> list[LabelledText]:
    return [LabelledText(UNSEEN[0], "xx", "Latn", "d-xx", 0),
            LabelledText(UNSEEN[1], "xx", "Latn", "d-xx", 200),
            LabelledText(REPEATED, "de", "Latn", "d-de", 0),
            LabelledText(REPEATED, "de", "Latn", "d-de", 300),
            LabelledText(CHINESE, "zh", "Hani", "d-zh", 0),
            LabelledText(CHINESE, "zh", "Hani", "d-zh", 50),
            LabelledText(CHINESE, "zh", "Hani", "d-zh", 100)]


def corpus() -> list[Document]:
    return ([Document(f"c{i}", PROSE * (1 + i % 3), "c4") for i in range(30)]
            + [Document(f"g{i}", "def f(x):\n    return x\n" * 4, "github") for i in range(5)])


@pytest.fixture
def run(make_context, monkeypatch):
    """Both variants on the crafted corpus and items: (ctx, results)."""
    monkeypatch.setattr(tf, "load_items", lambda cache_dir: items())

    def go(settings=None):
        ctx = make_context(tf.SPEC, corpus(), settings=settings,
                           params={"shared": {"val_fraction": 0.2}}, vocab_size=400)
        return ctx, {v.name: tf.SPEC.run_variant(v, ctx) for v in tf.SPEC.variants(ctx)}
    return go


def test_items_are_dealt_into_folds_by_position_in_their_document():
    assert tf.fold_of(items(), 2) == [0, 1, 0, 1, 0, 1, 0]
    assert tf.fold_of(items(), 3) == [0, 1, 0, 1, 0, 1, 2]


def test_two_variants_with_the_pins_and_training_params(make_context):
    ctx = make_context(tf.SPEC, corpus(), settings={"folds": 3})
    found = {v.name: v.params for v in tf.SPEC.variants(ctx)}
    assert list(found) == [tf.ENGLISH, tf.MULTILINGUAL]
    assert found[tf.MULTILINGUAL]["folds"] == 3
    assert found[tf.MULTILINGUAL]["vocab_size"] == ctx.params.tokenize.vocab_size
    assert any(p.startswith("spacy==3.8.18 sha256:") for p in found[tf.ENGLISH]["pins"])


def test_both_variants_measure_the_same_text_once(run):
    ctx, results = run()
    english = tf.english_texts(ctx)
    assert english and len(english) == results[tf.ENGLISH]["english_docs"]
    for result in results.values():
        langs = result["languages"]
        assert {k: langs[k]["docs"] for k in ("xx", "de", "zh")} == {"xx": 2, "de": 2, "zh": 3}
        assert langs["zh"]["words"] == 3 * count_words(CHINESE, "zh")
        assert langs["en"]["docs"] == len(english)         # c4 validation docs, no github
        assert langs["en"]["words"] == sum(count_words(t, "en") for t in english)
    assert results[tf.ENGLISH]["scripts"] == {"de": "Latn", "xx": "Latn", "zh": "Hani"}


def test_multilingual_items_are_measured_held_out(run):
    _, results = run()
    eng, mul = (results[n]["languages"] for n in (tf.ENGLISH, tf.MULTILINGUAL))
    # a document whose items repeat each other: the other fold taught the tokenizer its words
    assert mul["de"]["tokens"] < eng["de"]["tokens"]
    # items sharing nothing: each fold's tokenizer never saw its own item's byte pairs
    assert mul["xx"]["tokens"] == eng["xx"]["tokens"]


def test_rows_put_english_first_and_the_paper_beside_ours(run):
    ctx, results = run()
    table = tf.SPEC.build(results, ctx)
    rows = {r["language"]: r for r in table.rows}
    assert table.rows[0]["language"] == "en" and rows["en"]["ours_english_ratio"] == 1.0
    assert rows["de"]["paper_gpt2_premium"] == 2.14 and rows["de"]["paper_bloom_premium"] == 1.68
    assert rows["de"]["flores_language"] == "German"
    assert rows["xx"]["paper_gpt2_premium"] is None and rows["zh"]["script"] == "Hani"
    de = results[tf.ENGLISH]["languages"]["de"]["tokens_per_word"]
    en = results[tf.ENGLISH]["languages"]["en"]["tokens_per_word"]
    assert rows["de"]["ours_english_ratio"] == round(de / en, 3)
    assert [r["language"] for r in table.rows][1:3] == ["zh", "de"]   # by the paper's premium
    assert len(table.claims) == 4 and set(table.columns) <= set(table.rows[0])


def test_same_inputs_give_the_same_result(run):
    assert run()[1] == run()[1]


def test_bad_settings_name_the_key(make_context):
    with pytest.raises(ConfigError, match=r"tables\.tokenizer_fertility\.folds"):
        make_context(tf.SPEC, corpus(), settings={"folds": 1})
    with pytest.raises(ConfigError, match=r"tables\.tokenizer_fertility\.english_slices"):
        make_context(tf.SPEC, corpus(), settings={"english_slices": []})


def test_paper_numbers_are_premiums_over_english():
    assert tf.PAPER["en"][1:] == (1.0, 1.0)
    others = [v for code, v in tf.PAPER.items() if code != "en"]
    assert all(gpt2 > 1 and bloom < gpt2 for _, gpt2, bloom in others)
    assert tf.PAPER_GPT2_MIN_OTHER == 1.86 and tf.PAPER_BLOOM_MAX == 8.21


def test_spearman():
    assert tf.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert tf.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert tf.spearman([1, 1, 2], [5, 6, 7]) == pytest.approx(0.8660254)   # tied ranks 1.5
    assert tf.spearman([1, 2], [1, 2]) is None and tf.spearman([1, 1, 1], [1, 2, 3]) is None


def _row(code, script, words, english, multi, gpt2):
    """A row whose English fertility is 2 with both tokenizers (tokens per word = 2 x ratio)."""
    return {"language": code, "script": script, "words": words, "ours_english_ratio": english,
            "ours_multilingual_ratio": multi, "paper_gpt2_premium": gpt2,
            "ours_english_tokens_per_word": 2 * english, "ours_multilingual_tokens_per_word": 2 * multi}


def test_claim_verdicts_on_hand_made_rows():
    good = [_row("en", "Latn", 1000, 1.0, 1.0, 1.0), _row("de", "Latn", 50, 1.8, 1.7, 2.14),
            _row("fr", "Latn", 50, 1.4, 1.3, 2.0), _row("ru", "Cyrl", 50, 6.0, 4.0, 5.74),
            _row("hi", "Deva", 50, 7.0, 5.0, 7.46), _row("bn", "Beng", 5, 0.5, 0.5, 9.65)]
    claims = [f(good, 20) for f in (tf.english_cheapest_claim, tf.script_claim,
                                    tf.ordering_claim, tf.multilingual_claim)]
    assert [c.holds for c in claims] == [True, True, True, True]   # bn: too few words
    bad = [_row("en", "Latn", 1000, 1.0, 1.0, 1.0), _row("de", "Latn", 50, 0.9, 0.95, 2.14),
           _row("fr", "Latn", 50, 7.0, 1.2, 2.0), _row("ru", "Cyrl", 50, 1.2, 1.3, 5.74),
           _row("hi", "Deva", 50, 1.1, 1.5, 7.46)]
    claims = [f(bad, 20) for f in (tf.english_cheapest_claim, tf.script_claim,
                                   tf.ordering_claim, tf.multilingual_claim)]
    assert [c.holds for c in claims] == [False, False, False, False]
    none = [f(good[:1], 20) for f in (tf.english_cheapest_claim, tf.script_claim,
                                      tf.ordering_claim, tf.multilingual_claim)]
    assert [c.holds for c in none] == [None, None, None, None]
    # a ratio that moves only because English's fertility moved does not count as lowered
    same = [dict(r, ours_multilingual_ratio=r["ours_english_ratio"] - 0.001,
                 ours_multilingual_tokens_per_word=r["ours_english_tokens_per_word"]) for r in good]
    assert tf.multilingual_claim(same, 20).holds is False
