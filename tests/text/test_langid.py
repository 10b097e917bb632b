"""Offline language identification (py3langid) as the clean stage uses it.

    pytest tests/text/test_langid.py -q
"""

from __future__ import annotations

import pickle

import pytest

from redrobe.text.langid import DEFAULT_MAX_CHARS, UNDETERMINED, identify, language

ENGLISH = "The committee will publish its annual report on the state of the rivers next week."
GERMAN = "Der Ausschuss wird seinen Jahresbericht über den Zustand der Flüsse nächste Woche veröffentlichen."
FRENCH = "Le comité publiera la semaine prochaine son rapport annuel sur l'état des rivières."


@pytest.mark.parametrize(("text", "code"), [(ENGLISH, "en"), (GERMAN, "de"), (FRENCH, "fr")])
def test_identifies_sentences(text: str, code: str) -> None:
    lang, probability = identify(text)
    assert lang == code
    assert 0.5 < probability <= 1.0
    assert language(text) == code


def test_deterministic() -> None:
    assert identify(GERMAN) == identify(GERMAN)


def test_only_the_prefix_is_scored() -> None:
    # German first, then a long English tail: with max_chars covering only the German
    # sentence the answer is German; over everything it is English
    text = GERMAN + " " + ENGLISH * 40
    assert identify(text, max_chars=len(GERMAN))[0] == "de"
    assert identify(text, max_chars=len(text))[0] == "en"
    assert identify(text) == identify(text[:DEFAULT_MAX_CHARS], max_chars=len(text))


def test_blank_text_is_undetermined() -> None:
    assert identify("") == (UNDETERMINED, 0.0)
    assert identify(" \n\t") == (UNDETERMINED, 0.0)
    with pytest.raises(ValueError, match="max_chars"):
        identify(ENGLISH, max_chars=0)


def test_functions_pickle_by_reference() -> None:
    # process pools and Ray ship the function, never a loaded model
    assert pickle.loads(pickle.dumps(identify)) is identify
