"""Per-language profiles: stop words, words and sentences of scripts without spaces, the
rules and signals judging Chinese, Japanese and Thai documents, English unchanged.

    pytest tests/text/test_languages.py -q
"""

from __future__ import annotations

import unicodedata

import pytest
import stopwordsiso

from redrobe.config import Clean
from redrobe.documents import Document
from redrobe.text import c4, gopher, rpv2
from redrobe.text.c4 import C4Rules
from redrobe.text.fineweb import FineWebRules
from redrobe.text.gopher import GopherQualityRules, GopherRepetitionRules
from redrobe.text.languages import (
    ENGLISH,
    GOPHER_STOP_WORDS_EN,
    RPV2_STOP_WORDS_EN,
    normalize_code,
    profile,
    supported_languages,
)
from redrobe.text.normalize import normalized_words, raw_words
from redrobe.text.rpv2 import doc_score, line_scores
from redrobe.text.rules import Cleaner, CleanStats
from text.test_rules import PROSE, PROSE_LINES  # tests/ is on sys.path (its conftest)

# Short articles written for these tests, one paragraph per line, as web pages come.
ZH = "\n".join([
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。这座城"
    "市有三千多年的历史，保存了大量的古代建筑和文物。每年都有很多"
    "游客来这里参观故宫、长城和天坛。",
    "城市的交通十分方便，地铁线路覆盖了大部分地区。人们可以乘坐公"
    "共汽车或者地铁去上班。近年来，政府还修建了很多公园，让市民有"
    "更多的休闲场所。",
    "北京的饮食文化也很有特色。烤鸭是最有名的菜之一，很多人专门为"
    "了吃烤鸭而来到北京。除了烤鸭以外，这里还有各种各样的小吃。",
    "在教育方面，北京有许多著名的大学，例如北京大学和清华大学。每"
    "年都有大量的学生从全国各地来这里学习。这些大学在科学研究方面"
    "也取得了很大的成就。",
    "总的来说，北京是一个既古老又现代的城市。它不仅有悠久的历史，"
    "而且发展得非常快。如果你有机会，一定要来北京看看。",
])
JA = "\n".join([
    "東京は日本の首都であり、世界でも有数の大都市です。人口は千四"
    "百万人を超えています。",
    "東京には多くの観光地があります。浅草寺や東京タワー、スカイツ"
    "リーなどが有名です。",
    "交通機関はとても便利で、電車や地下鉄で町のどこにでも行くこと"
    "ができます。",
    "また、東京は食べ物がおいしいことでも知られています。寿司やラ"
    "ーメン、天ぷらなど、いろいろな料理を楽しめます。",
    "春には桜がきれいに咲き、多くの人が公園で花見をします。秋には"
    "紅葉も美しく、散歩するのにぴったりの季節です。",
])
TH = "\n".join([
    "ประเทศไทยเป็นประเทศที่ตั้งอยู่ในเอเชียตะ"
    "วันออกเฉียงใต้ มีกรุงเทพมหานครเป็นเมืองห"
    "ลวง",
    "คนไทยส่วนใหญ่นับถือศาสนาพุทธ และมีวัฒนธร"
    "รมที่เป็นเอกลักษณ์ของตัวเอง",
    "อาหารไทยมีชื่อเสียงไปทั่วโลก เช่น ต้มยำก"
    "ุ้ง ผัดไทย และแกงเขียวหวาน",
    "นักท่องเที่ยวจำนวนมากเดินทางมาเที่ยวชายห"
    "าดและภูเขาในภาคเหนือ",
    "ภาษาไทยมีตัวอักษรของตัวเองซึ่งพัฒนามาจาก"
    "อักษรขอมโบราณ",
])
SHORT = "This page is far too short to keep."
DE = ("Die Stadt liegt an einem breiten Fluss und ist seit dem Mittelalter ein wichtiger Ort "
      "für den Handel. Viele Menschen kommen jedes Jahr hierher, um die alte Brücke und die "
      "Kirche zu sehen. Im Sommer gibt es auf dem Marktplatz ein großes Fest mit Musik.")
ARTICLES = {"zh": ZH, "ja": JA, "th": TH}


# ------------------------------------------------------------------------- stop words
def test_english_keeps_gophers_and_redpajamas_lists() -> None:
    assert GOPHER_STOP_WORDS_EN == {"the", "be", "to", "of", "and", "that", "have", "with"}
    assert gopher.STOP_WORDS is GOPHER_STOP_WORDS_EN and rpv2.STOP_WORDS_EN is RPV2_STOP_WORDS_EN
    assert len(RPV2_STOP_WORDS_EN) == 570 and {"a's", "zero", "yourselves"} <= RPV2_STOP_WORDS_EN
    assert profile("en") is ENGLISH and profile("EN") is ENGLISH and profile("eng") is ENGLISH
    assert ENGLISH.gopher_stop_words is GOPHER_STOP_WORDS_EN
    assert ENGLISH.stop_words is RPV2_STOP_WORDS_EN


@pytest.mark.parametrize("code, words", [("de", {"und", "der", "nicht"}), ("fr", {"le", "et", "pour"}),
                                         ("ru", {"и", "не"}), ("zh", {"的", "我们"}),
                                         ("th", {"ของ", "และ"}), ("ar", {"في"})])
def test_stop_words_come_from_stopwordsiso(code: str, words: set[str]) -> None:
    lists = profile(code)
    assert words <= lists.stop_words and lists.stop_words == lists.gopher_stop_words
    assert lists.stop_words <= stopwordsiso.stopwords(code)


def test_stop_word_entries_that_never_match_a_word_are_left_out() -> None:
    assert "。" in stopwordsiso.stopwords("zh") and "。" not in profile("zh").stop_words
    assert "!" in stopwordsiso.stopwords("ko") and "!" not in profile("ko").stop_words


def test_codes_are_normalized_and_unsupported_languages_fall_back_to_english() -> None:
    assert [normalize_code(c) for c in ("zh-Hant", "cmn_Hani", "deu", "JA", " th ")] \
        == ["zh", "zh", "de", "ja", "th"]
    assert profile("zh-Hant") is profile("zh")
    for code in ("lb", "und", "zxx", "xx", ""):
        assert profile(code) is ENGLISH
    assert {"de", "zh", "ja", "th", "lo", "km", "my"} <= supported_languages()
    assert not profile("km").stop_words   # no stopwordsiso list, yet its own splitting


# ---------------------------------------------------------------------------- words
def test_english_words_are_the_whitespace_and_wordpunct_views() -> None:
    text = "It's a café-time... (really)"
    assert ENGLISH.tokens(text) == text.split()
    assert ENGLISH.raw_words(text) == raw_words(text)
    assert ENGLISH.normalized_words(text) == normalized_words(text)


def test_latin_languages_split_like_english() -> None:
    assert profile("de").tokens(DE) == DE.split()
    assert profile("de").raw_words(DE) == raw_words(DE)


def test_han_is_one_word_per_character_and_stop_words_stay_whole() -> None:
    words = profile("zh").tokens("我们的语言。Python（派森）很好 (OK)")
    assert words == ["我们", "的", "语", "言", "。", "Python", "（", "派", "森", "）", "很", "好", "(OK)"]


def test_japanese_keeps_katakana_runs_and_kana_stop_words_whole() -> None:
    assert profile("ja").tokens("コンピュータを使います") == ["コンピュータ", "を", "使", "います"]
    # the normalized (NFD) view splits the same way: が is か + U+3099 there
    nfd = [unicodedata.normalize("NFD", w) for w in ("データ", "が", "好", "き")]
    assert profile("ja").normalized_words("データが好き") == nfd


def test_thai_khmer_myanmar_keep_marks_with_their_letter() -> None:
    assert profile("th").tokens("ที่ของแมว") == ["ที่", "ของ", "แ", "ม", "ว"]
    assert profile("km").tokens("ខ្មែរ") == ["ខ្", "មែ", "រ"]
    assert profile("my").tokens("မြန်မာ") == ["မြ", "န်", "မာ"]


# ------------------------------------------------------------------------- sentences
@pytest.mark.parametrize("code, text, sentences", [
    ("zh", "你好。今天天气很好！「你去哪里？」他问。", 4),
    ("ja", "東京は大きい。大阪も大きいです！", 2),
    ("hi", "यह एक वाक्य है। यह दूसरा वाक्य है।", 2),
    ("ar", "هل أنت بخير؟ نعم أنا بخير.", 2),
    ("ur", "یہ ایک جملہ ہے۔ یہ دوسرا جملہ ہے۔", 2),
    ("km", "នេះជាប្រយោគ។ នេះជាប្រយោគទីពីរ។", 2),
    ("my", "ဒါစာကြောင်းပါ။ ဒါဒုတိယစာကြောင်းပါ။", 2),
    ("th", "ภาษาไทยเป็นภาษาราชการ คนไทยใช้ภาษานี้ทุกวัน", 2),   # a space ends a Thai sentence
    ("de", "Das ist gut. Ist es gut? Ja!", 3),
])
def test_sentences_end_at_the_scripts_own_terminators(code: str, text: str, sentences: int) -> None:
    assert len(profile(code).sentence_pattern.findall(text)) == sentences


def test_english_sentences_are_redpajamas_pattern() -> None:
    assert ENGLISH.sentence_pattern.pattern == r"\b[^.!?]+[.!?]*"
    assert len(ENGLISH.sentence_pattern.findall("你好。今天天气很好！")) == 1   # one run, no terminator


def test_line_ends_add_the_scripts_marks_to_a_rule_sets_own() -> None:
    assert ENGLISH.line_ends(c4.END_PUNCTUATION) == c4.END_PUNCTUATION
    zh = profile("zh")
    assert {"。", "！", "？", "」"} <= set(zh.line_ends(c4.END_PUNCTUATION))
    assert zh.ends_sentence("他说：「好。」", zh.line_ends(c4.END_PUNCTUATION))
    th = profile("th")
    assert th.ends_sentence("คนไทยใช้ภาษานี้", th.line_ends(c4.END_PUNCTUATION))
    assert not th.ends_sentence("ราคา 100", th.line_ends(c4.END_PUNCTUATION))


# --------------------------------------------------------------------- rules judging
def _rules(code: str, clean: Clean) -> list:
    own = clean.for_language(code)
    return [GopherQualityRules(own.gopher_quality, profile(code)),
            GopherRepetitionRules(own.gopher_repetition, profile(code)),
            C4Rules(own.c4, profile(code)), FineWebRules(own.fineweb, profile(code))]


@pytest.mark.parametrize("code", list(ARTICLES))
def test_an_article_without_spaces_is_judged_by_its_words_not_removed_wholesale(code: str) -> None:
    text = ARTICLES[code]
    for rules in _rules(code, Clean()):
        assert rules.reasons(text) == [], (rules.name, rules.reasons(text))
    words = GopherQualityRules(Clean().gopher_quality, profile(code)).statistics(text)["min_words"]
    assert 150 < words < len(text)   # characters as words: far more than whitespace tokens
    # the English rules remove it: a handful of whitespace "words"
    assert gopher.GopherQualityRules(Clean().gopher_quality).check(text).reason == gopher.GOPHER_SHORT_DOC


@pytest.mark.parametrize("code", list(ARTICLES))
def test_the_word_count_rules_still_remove_a_short_or_repetitive_page(code: str) -> None:
    clean = Clean().for_language(code)
    lines = ARTICLES[code].splitlines()
    short = GopherQualityRules(clean.gopher_quality, profile(code)).check(lines[0][:20])
    assert short.reason == gopher.GOPHER_SHORT_DOC
    repeated = "\n".join([lines[0]] * 5)
    assert GopherRepetitionRules(clean.gopher_repetition, profile(code)).check(repeated).reason \
        == gopher.GOPHER_DUP_LINE_FRAC
    few = C4Rules(clean.c4, profile(code)).check(lines[0][:40])
    assert few.reason == c4.C4_TOO_FEW_SENTENCES


def test_c4_keeps_lines_ending_in_cjk_terminators() -> None:
    rules = C4Rules(Clean().c4, profile("zh"))
    decision = rules.check(ZH + "\n导航 首页 关于我们")   # a menu line without a terminator
    assert decision.keep and decision.text == ZH
    assert rules.report(ZH).sentences == 15


def test_a_language_without_stop_words_skips_the_stop_word_check() -> None:
    text = " ".join(["ខ្មែរ"] * 3 + ["ភាសា"] * 40)
    rules = GopherQualityRules(Clean().for_language("km").gopher_quality, profile("km"))
    assert gopher.GOPHER_TOO_FEW_STOP_WORDS not in rules.reasons(text)
    assert rules.statistics(text)["min_stop_words"] == float("inf")


def test_statistics_are_what_each_rule_compares() -> None:
    # a threshold just past a document's statistic flips the rule's verdict on it
    ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
    repeated_zh = "\n".join(ZH.splitlines()[:1] * 4)
    for code, text in [("en", PROSE_LINES), ("en", SHORT), ("en", "\n".join([PROSE_LINES] * 3)),
                       ("zh", ZH), ("zh", repeated_zh), ("th", TH), ("th", TH[:30])]:
        for rules in _rules(code, Clean()):
            stats = rules.statistics(text)
            for key, op in rules.thresholds.items():
                threshold = _threshold(rules.config, key)
                fails = ops[op](float(stats[key]), float(threshold))
                assert fails == any(r for r in rules.reasons(text) if _reason_of(rules, key, r)), \
                    (code, rules.name, key)


def _threshold(config, key: str) -> float:
    field, _, entry = key.partition(".")
    return getattr(config, field)[entry] if entry else getattr(config, field)


def _reason_of(rules, key: str, reason: str) -> bool:
    """Does ``reason`` come from the threshold ``key``?"""
    names = {"min_words": [gopher.GOPHER_SHORT_DOC], "max_words": [gopher.GOPHER_LONG_DOC],
             "min_mean_word_length": [gopher.GOPHER_BELOW_AVG_WORD_LENGTH],
             "max_mean_word_length": [gopher.GOPHER_ABOVE_AVG_WORD_LENGTH],
             "max_symbol_word_ratio": [gopher.GOPHER_TOO_MANY_HASHES, gopher.GOPHER_TOO_MANY_ELLIPSIS],
             "max_bullet_lines_ratio": [gopher.GOPHER_TOO_MANY_BULLETS],
             "max_ellipsis_lines_ratio": [gopher.GOPHER_TOO_MANY_END_ELLIPSIS],
             "max_non_alpha_words_ratio": [gopher.GOPHER_BELOW_ALPHA_THRESHOLD],
             "min_stop_words": [gopher.GOPHER_TOO_FEW_STOP_WORDS],
             "min_sentences": [c4.C4_TOO_FEW_SENTENCES]}
    if key in names:
        return reason in names[key]
    field, _, n = key.partition(".")
    if field in ("top_n_grams", "dup_n_grams"):
        reason_of = gopher.top_ngram_reason if field == "top_n_grams" else gopher.dup_ngram_reason
        return reason == reason_of(int(n))
    return reason == f"{'fineweb' if rules.name == 'fineweb' else 'gopher'}_" + {
        "line_punct_thr": "line_punct_ratio", "short_line_thr": "short_line_ratio",
        "char_duplicates_ratio": "char_dup_ratio", "new_line_ratio": "list_ratio"}.get(key, key)


# -------------------------------------------------------------------------- signals
def test_signals_use_the_languages_lists() -> None:
    german = rpv2.compute_signals(DE)
    english_lists = rpv2.compute_signals(DE, per_language=False)
    assert doc_score(german, "rps_doc_stop_word_fraction") > 0.3
    assert doc_score(english_lists, "rps_doc_stop_word_fraction") < 0.1
    assert german["rps_doc_word_count"] == english_lists["rps_doc_word_count"]


def test_signals_of_a_chinese_article_count_characters_sentences_and_terminal_lines() -> None:
    signals, lang = rpv2.compute_signals_with_language(ZH)
    assert lang == "zh"
    assert doc_score(signals, "rps_doc_word_count") > 250
    assert doc_score(signals, "rps_doc_num_sentences") == 15
    assert (line_scores(signals, "rps_lines_ending_with_terminal_punctution_mark") == 1).all()
    assert doc_score(signals, "rps_doc_frac_no_alph_words") < 0.2   # Han characters are letters
    assert doc_score(signals, "rps_doc_stop_word_fraction") > 0.1
    plain = rpv2.compute_signals(ZH, per_language=False)
    assert doc_score(plain, "rps_doc_word_count") < 20
    assert (line_scores(plain, "rps_lines_ending_with_terminal_punctution_mark") == 0).all()


# ------------------------------------------------------------------- English identity
@pytest.mark.parametrize("slice_name", ["c4", "books", "wikipedia"])
def test_english_documents_are_judged_exactly_as_without_languages(slice_name: str) -> None:
    docs = [Document(f"d{i}", text, slice_name) for i, text in enumerate(
        [PROSE, PROSE_LINES, SHORT, PROSE + "\nLorem ipsum dolor sit amet, elit.",
         "\n".join([PROSE] * 3)])]
    on = list(Cleaner.for_slice(slice_name, Clean())(docs))
    off = list(Cleaner.for_slice(slice_name, Clean(language_rules=False))(docs))
    assert [o.language for o in on] == ["en"] * len(docs)
    for a, b in zip(on, off):
        assert (a.status, a.reason, a.rule_set, a.doc, a.columns) == (b.status, b.reason, b.rule_set,
                                                                      b.doc, b.columns)


def test_unsupported_and_english_languages_share_the_default_rule_sets() -> None:
    cleaner = Cleaner.for_slice("c4", Clean())
    assert cleaner.languages is not None
    assert cleaner.rules_for("en") is cleaner.rule_sets and cleaner.rules_for("lb") is cleaner.rule_sets
    assert cleaner.rules_for(None) is cleaner.rule_sets   # not identified
    assert cleaner.rules_for("zh") is not cleaner.rule_sets
    assert cleaner.rules_for("zh-Hans") is cleaner.rules_for("zh")   # built once per language
    assert [r.name for r in cleaner.rules_for("de")] == cleaner.rule_set_names


def test_cleaner_keeps_articles_without_spaces_and_counts_them_per_language() -> None:
    docs = [Document(code, text, "c4") for code, text in ARTICLES.items()]
    docs += [Document("en", PROSE, "c4"), Document("short", SHORT, "c4")]
    cleaner = Cleaner.for_slice("c4", Clean())
    stats = CleanStats()
    stats.start_slice("c4", cleaner.rule_set_names)
    outcomes = list(cleaner(docs))
    for outcome in outcomes:
        stats.add("c4", outcome)
    assert [o.language for o in outcomes] == ["zh", "ja", "th", "en", "en"]
    assert [o.reason for o in outcomes] == [None, None, None, None, gopher.GOPHER_SHORT_DOC]
    assert [o.columns["language"] for o in outcomes] == ["zh", "ja", "th", "en", "en"]
    ledger = {"slices": {"c4": {"in": 5, "removed": 1, "quarantined": 0}}}
    table = stats.removal_by_language(ledger)
    assert table["slices"]["c4"]["en"] == {
        "docs_in": 2, "docs_kept": 1, "docs_removed": 1, "docs_quarantined": 0,
        "removed_fraction": 0.5, "removed_by_reason": {gopher.GOPHER_SHORT_DOC: 1}}
    assert table["total"]["zh"]["docs_kept"] == 1 and set(table["total"]) == {"en", "ja", "th", "zh"}
