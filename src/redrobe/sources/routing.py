"""Routing a slice's documents by language into partitions ``<slice>/<language>``.

    router = Router.of(params.ingest.languages["wikipedia"], backend="fasttext")
    language, doc = router.route(doc)        # doc gains the language and language_score columns
    "reason" in doc.extra                    # removed: language_not_kept / language_score_below_min

``ingest.languages.<slice>`` routes a slice (RedPajama-1T's Wikipedia slice is 20
languages, each kept apart); slices it does not list are not routed and keep their
``<slice>/part-*.parquet`` layout. A routed document's language is, in this order:

1. the language its source states, ``meta["language_label"]`` (the multilingual sample's
   file or folder name): a label is what the text is, whatever an identifier guesses
   (py3langid calls Mandarin ``wuu``, every identifier calls Ancient Greek ``el``), so it
   wins, with a score of 1.0;
2. else the identifier's answer (:func:`redrobe.text.langid.identify` with the
   ``ingest.language_id`` backend) and its probability.

Codes are normalized as the clean stage's rules key them
(:func:`redrobe.text.languages.normalize_code`). A language outside ``keep`` is removed
as ``language_not_kept``; a score below ``min_score`` as ``language_score_below_min``.
Either way the document is counted, and written to the removed tree, under its
language's partition, so a language's removals show in the accounting.

The language and score travel with the document as the stage columns ``language`` and
``language_score`` (:data:`LANGUAGE_COLUMNS`); clean judges a routed document by that
language and reports that score as ``redrobe_lang_score`` instead of identifying it
again, so every stage sees one language per document.
"""

from __future__ import annotations

from dataclasses import dataclass

from redrobe.config import IngestRouting
from redrobe.documents import Document
from redrobe.sources.base import LANGUAGE_NOT_KEPT, LANGUAGE_SCORE_BELOW_MIN, removed
from redrobe.text import langid
from redrobe.text.languages import normalize_code

#: the stage columns a routed document carries: its language code and that code's score
LANGUAGE_COLUMN, LANGUAGE_SCORE_COLUMN = langid.LANGUAGE_COLUMN, langid.LANGUAGE_SCORE_COLUMN
LANGUAGE_COLUMNS = (LANGUAGE_COLUMN, LANGUAGE_SCORE_COLUMN)
#: meta key of the language a source states (redrobe.sources.multilingual)
LABEL_KEY = "language_label"
#: the partition of a routed slice's documents that never got a language: removed or
#: quarantined before routing (empty, too long, a redirect, unreadable)
UNDETERMINED = langid.UNDETERMINED
#: the score of a source's own label
LABEL_SCORE = 1.0


@dataclass(frozen=True)
class Router:
    """One routed slice's settings (small and picklable: a worker task field)."""

    keep: frozenset[str]
    min_score: float
    backend: str

    @classmethod
    def of(cls, routing: IngestRouting, backend: str) -> Router:
        return cls(frozenset(normalize_code(code) for code in routing.keep), routing.min_score,
                   backend)

    def language_of(self, doc: Document) -> tuple[str, float]:
        """(normalized code, score): the source's label, else the identifier's answer."""
        label = doc.meta.get(LABEL_KEY)
        if isinstance(label, str) and label.strip():
            return normalize_code(label), LABEL_SCORE
        code, score = langid.identify(doc.text, backend=self.backend)
        return normalize_code(code), score

    def route(self, doc: Document) -> tuple[str, Document]:
        """(language, the document with its language columns, marked removed when its
        language is not kept or its score is below the minimum)."""
        language, score = self.language_of(doc)
        doc = doc.with_extra(**{LANGUAGE_COLUMN: language, LANGUAGE_SCORE_COLUMN: round(score, 6)})
        if language not in self.keep:
            return language, removed(doc, LANGUAGE_NOT_KEPT)
        if score < self.min_score:
            return language, removed(doc, LANGUAGE_SCORE_BELOW_MIN)
        return language, doc
