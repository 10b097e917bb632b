"""FineWeb quality rule set (Penedo et al. 2024, App. E.4 Table 2).

    rules = FineWebRules(params.clean.fineweb)
    rules(doc)          # Decision: KEEP or remove(FINEWEB_LINE_PUNCT_RATIO), ...
    rules.reasons(text) # every check that fails, each on its own

Sources and thresholds: docs/references.md, "Rule sets: Gopher, C4, FineWeb".

The four checks run in datatrove's ``FineWebQualityFilter`` order and with its
semantics (lines are ``text.split("\\n")``, nothing stripped); the first failing one
names the reason (datatrove's reason, prefixed ``fineweb_``):

1. :data:`FINEWEB_LINE_PUNCT_RATIO`: the share of lines ending in . ' " ! ? is
   <= ``line_punct_thr`` (0.12; with ``line_punct_exclude_zero`` a share of exactly 0
   is let through, as datatrove allows).
2. :data:`FINEWEB_SHORT_LINE_RATIO`: the share of lines of at most
   ``short_line_length`` (30) characters is >= ``short_line_thr`` (0.67).
3. :data:`FINEWEB_CHAR_DUP_RATIO`: characters of non-empty lines that repeat an
   earlier line, over the characters of the text without newlines, is >=
   ``char_duplicates_ratio`` (0.01).
4. :data:`FINEWEB_LIST_RATIO`: newlines per word is > ``new_line_ratio`` (0.3).

Difference from datatrove, by design: words for check 4 are RedPajama-V2's WordPunct
tokens (:func:`redrobe.text.normalize.raw_words`) instead of NLTK's ``word_tokenize``
(not shipped here); both make every punctuation run a token, they differ on
contractions ("don't" is 3 tokens here, 2 in NLTK). A document without words has a
newline ratio of 0 where datatrove divides by zero.

Other languages (a :class:`~redrobe.text.languages.LanguageProfile` other than
English): a line may also end in the script's sentence ends (。！？, ।, ؟ ...; in Thai
and Lao, in a letter), and words for check 4 are the profile's raw words (scripts
without spaces cut into words).
"""

from __future__ import annotations

from collections.abc import Iterator

from redrobe.config import FineWebParams
from redrobe.text.base import FailureChecks, ratio
from redrobe.text.gopher import repeated_items
from redrobe.text.languages import ENGLISH, LanguageProfile

FINEWEB_LINE_PUNCT_RATIO = "fineweb_line_punct_ratio"
FINEWEB_SHORT_LINE_RATIO = "fineweb_short_line_ratio"
FINEWEB_CHAR_DUP_RATIO = "fineweb_char_dup_ratio"
FINEWEB_LIST_RATIO = "fineweb_list_ratio"

# datatrove FineWebQualityFilter's stop_chars
LINE_END_PUNCTUATION = (".", "'", '"', "!", "?")


class FineWebRules(FailureChecks):
    """Document-level FineWeb heuristics (the rules FineWeb added on top of C4/Gopher),
    checked in datatrove's order."""

    name = "fineweb"
    config: FineWebParams
    language_aware = True
    thresholds = {"line_punct_thr": "<=", "short_line_thr": ">=", "char_duplicates_ratio": ">=",
                  "new_line_ratio": ">"}

    def __init__(self, config: FineWebParams, profile: LanguageProfile = ENGLISH) -> None:
        super().__init__(config, profile)
        self._ends = profile.line_ends(LINE_END_PUNCTUATION)   # English: exactly datatrove's

    def _failures(self, text: str) -> Iterator[str]:
        # a generator: check() stops at the first failure, reasons() runs every check
        c = self.config
        lines = text.split("\n")  # never empty: "".split("\n") == [""]
        punct = self._punctuated_share(lines)
        if punct <= c.line_punct_thr and not (punct == 0 and c.line_punct_exclude_zero):
            yield FINEWEB_LINE_PUNCT_RATIO
        short = sum(1 for line in lines if len(line) <= c.short_line_length) / len(lines)
        if short >= c.short_line_thr:
            yield FINEWEB_SHORT_LINE_RATIO
        newlines = len(lines) - 1
        _, dup_chars = repeated_items([line for line in lines if line.strip()])
        if ratio(dup_chars, len(text) - newlines) >= c.char_duplicates_ratio:
            yield FINEWEB_CHAR_DUP_RATIO
        if ratio(newlines, len(self.profile.raw_words(text))) > c.new_line_ratio:
            yield FINEWEB_LIST_RATIO

    def _punctuated_share(self, lines: list[str]) -> float:
        if self.profile.space_ends_sentence:
            return sum(self.profile.ends_sentence(line, self._ends) for line in lines) / len(lines)
        return sum(1 for line in lines if line.endswith(self._ends)) / len(lines)

    def statistics(self, text: str) -> dict[str, float]:
        lines = text.split("\n")
        punct = self._punctuated_share(lines)
        newlines = len(lines) - 1
        _, dup_chars = repeated_items([line for line in lines if line.strip()])
        # a share of 0 let through (line_punct_exclude_zero) is never removed
        exempt = punct == 0 and self.config.line_punct_exclude_zero
        return {"line_punct_thr": float("inf") if exempt else punct,
                "short_line_thr": sum(len(line) <= self.config.short_line_length for line in lines)
                / len(lines),
                "char_duplicates_ratio": ratio(dup_chars, len(text) - newlines),
                "new_line_ratio": ratio(newlines, len(self.profile.raw_words(text)))}
