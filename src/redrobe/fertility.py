"""Tokenizer fertility per language: tokens per word and tokens per character.

Fertility (Rust et al. 2021) is the mean number of tokens a word costs; a tokenizer
that saw little of a language splits its words into many pieces, so the same text
takes more tokens, more compute and more of the context. Counted per language:

    counts = Fertility()
    counts.add("de", text, n_tokens)            # one document, its token count
    counts.add(document_language(doc), doc.text, len(ids))
    total = Fertility.merged([counts, other])   # per-shard counts added up
    total.as_dict()   # {"de": {"docs", "words", "chars", "tokens",
                      #         "tokens_per_word", "tokens_per_char"}, ...}

Words are what the language's profile counts as words
(:meth:`redrobe.text.languages.LanguageProfile.tokens`, the word view of the quality
rules): whitespace tokens, and in scripts written without spaces (Han, kana, Thai, Lao,
Khmer, Myanmar) runs cut into stop words, katakana runs and single characters. So for
Chinese or Japanese "tokens per word" is close to tokens per character; compare those
languages by ``tokens_per_char``. Characters are Unicode code points of the text.

Tokens are the document's tokens as the model sees them: the whole text encoded at
once (spaces and punctuation included), not each word on its own as Rust et al.
count. Byte-level BPE attaches a leading space to the word after it, so on English
prose the two ways differ by the punctuation tokens only.

The document's language is the stage column ``language`` that the clean stage writes
(dedup keeps it), normalized as the rules key it
(:func:`~redrobe.text.languages.normalize_code`); documents without one (slices whose
rules never needed it, such as code) count under ``und``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redrobe.documents import Document
from redrobe.text.languages import normalize_code, profile

#: the language of a document without a ``language`` column
UNDETERMINED = "und"
#: the stage column clean writes (redrobe.text.rules.LANGUAGE_COLUMN)
LANGUAGE_COLUMN = "language"
COUNTS = ("docs", "words", "chars", "tokens")


def document_language(doc: Document) -> str:
    """The normalized ``language`` column of ``doc``; ``und`` when it has none."""
    code = doc.extra.get(LANGUAGE_COLUMN)
    return normalize_code(code) if isinstance(code, str) and code.strip() else UNDETERMINED


def count_words(text: str, language: str) -> int:
    """Words of ``text`` as the language's profile splits them."""
    return len(profile(language).tokens(text))


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` to 6 decimals; None when ``whole`` is 0."""
    return round(part / whole, 6) if whole else None


@dataclass
class Fertility:
    """Documents, words, characters and tokens per language (addable, picklable)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, language: str, text: str, tokens: int) -> None:
        """Count one document of ``language`` whose text encodes to ``tokens`` tokens."""
        row = self.counts.setdefault(language, dict.fromkeys(COUNTS, 0))
        row["docs"] += 1
        row["words"] += count_words(text, language)
        row["chars"] += len(text)
        row["tokens"] += tokens

    def merge(self, other: Fertility) -> None:
        for language, row in other.counts.items():
            mine = self.counts.setdefault(language, dict.fromkeys(COUNTS, 0))
            for key in COUNTS:
                mine[key] += row[key]

    @classmethod
    def merged(cls, parts: Iterable[Fertility]) -> Fertility:
        total = cls()
        for part in parts:
            total.merge(part)
        return total

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Per language (sorted): the counts, tokens per word and tokens per character."""
        return {language: {**row, "tokens_per_word": ratio(row["tokens"], row["words"]),
                           "tokens_per_char": ratio(row["tokens"], row["chars"])}
                for language, row in sorted(self.counts.items())}
