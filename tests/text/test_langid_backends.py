"""Language-ID backends beside the default: same contract, coverage, code normalization.

    pytest tests/text/test_langid_backends.py -q

cld3 and lingua are optional (benchmarks/requirements-langid.txt): their tests skip when
the package is not installed. No timings are asserted.
"""

from __future__ import annotations

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from redrobe.text import langid
from redrobe.text.langid import UNDETERMINED, identify

#: one sentence per language, all saying the same, across eight scripts
EASY = {
    "en": "The committee will publish its annual report on the state of the rivers next week.",
    "de": "Der Ausschuss wird seinen Jahresbericht über den Zustand der Flüsse nächste Woche "
          "veröffentlichen.",
    "fr": "Le comité publiera la semaine prochaine son rapport annuel sur l'état des rivières.",
    "es": "El comité publicará la próxima semana su informe anual sobre el estado de los ríos.",
    "tr": "Komite, nehirlerin durumuna ilişkin yıllık raporunu gelecek hafta yayımlayacak.",
    "ru": "Комитет опубликует свой ежегодный доклад о состоянии рек на следующей неделе.",
    "el": "Η επιτροπή θα δημοσιεύσει την ετήσια έκθεσή της για την κατάσταση των ποταμών την "
          "επόμενη εβδομάδα.",
    "ar": "ستنشر اللجنة تقريرها السنوي عن حالة الأنهار في الأسبوع المقبل.",
    "he": "הוועדה תפרסם בשבוע הבא את הדוח השנתי שלה על מצב הנהרות.",
    "hi": "समिति अगले सप्ताह नदियों की स्थिति पर अपनी वार्षिक रिपोर्ट प्रकाशित करेगी।",
    "zh": "委员会将于下周发布关于河流状况的年度报告。",
    "ja": "委員会は来週、川の状態に関する年次報告書を発表します。",
    "ko": "위원회는 다음 주에 강의 상태에 관한 연간 보고서를 발표할 것이다.",
}


def _available(backend: str) -> bool:
    module = {"cld3": "gcld3", "lingua": "lingua"}.get(backend)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _param(backend: str):
    marks = [pytest.mark.skipif(not _available(backend), reason=f"{backend} not installed")]
    if backend == "lingua":
        marks.append(pytest.mark.slow)   # loads all 75 models on first use (about 10 s)
    return pytest.param(backend, marks=marks)


BACKENDS = [_param(b) for b in langid.BACKENDS]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_on_easy_sentences(backend: str) -> None:
    for code, text in EASY.items():
        found, probability = identify(text, backend=backend)
        assert found == code, (backend, text)
        assert 0.5 < probability <= 1.0
    assert identify("  \n", backend=backend) == (UNDETERMINED, 0.0)


def test_default_is_py3langid_unchanged() -> None:
    # the clean stage calls identify(text, max_chars): it must stay py3langid's raw answer
    raw = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for text in EASY.values():
        code, probability = raw.classify(text)
        assert identify(text) == identify(text, backend="py3langid") == (str(code), float(probability))


def test_recommended_backend_covers_more_than_100_languages() -> None:
    fasttext = langid.languages(langid.RECOMMENDED_BACKEND)
    assert fasttext is not None and len(fasttext) >= 100
    assert set(EASY) <= fasttext and {"th", "sw", "ta", "am", "bo"} <= fasttext
    assert len(langid.fasttext_labels(langid._lid176_path())) == 176
    py3langid = langid.languages("py3langid")
    assert py3langid is not None and len(py3langid) >= 100


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown language-ID backend 'nope'"):
        identify("text", backend="nope")
    with pytest.raises(ValueError, match="unknown language-ID backend"):
        langid.languages("nope")


def test_not_a_fasttext_model(tmp_path) -> None:
    bad = tmp_path / "model.ftz"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a fastText model"):
        langid.fasttext_labels(bad)


@pytest.mark.parametrize(("code", "normal"), [
    ("iw", "he"), ("zh-Latn", "zh"), ("ru-Latn", "ru"), ("EN", "en"), ("kik", "ki"),
    ("kmr", "ku"), ("grc", "grc"), ("fil", "fil"), ("pt_BR", "pt"),
])
def test_normalize_code(code: str, normal: str) -> None:
    assert langid.normalize_code(code) == normal


def test_py3langid_codes_are_already_normal_but_two() -> None:
    codes = set(LanguageIdentifier.from_model_file(MODEL_FILE).nb_classes)
    assert {c for c in codes if langid.normalize_code(c) != c} == {"kik", "gug"}


def test_matches_counts_the_macrolanguage() -> None:
    assert langid.matches("nb", "no") and langid.matches("hr", "sh") and langid.matches("he", "iw")
    assert not langid.matches("no", "nb") and not langid.matches("id", "ms")
