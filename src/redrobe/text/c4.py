"""C4 rule set (Raffel et al. 2020, §2.2; tfds c4_utils / datatrove C4QualityFilter).

    rules = C4Rules(params.clean.c4)
    rules(doc)   # Decision(text=<kept lines>) or remove(C4_CURLY_BRACKET), ...
    rules.report(text)   # every rule on its own: page-level reasons + dropped lines per filter

Line by line (each line stripped): drop lines with a word longer than
``max_word_length``; remove Wikipedia-style citation marks ("[1]", "[edit]",
"[citation needed]"); drop lines that do not end in terminal punctuation (. ? ! " ')
or that end in an ellipsis; drop lines with fewer than ``min_words_per_line`` words;
remove the whole document at a kept-so-far line mentioning "lorem ipsum" or holding a
curly bracket; drop lines mentioning javascript or cookie/terms/privacy boilerplate.
The document is removed when the kept lines hold fewer than ``min_sentences``
sentences; otherwise its text becomes the kept lines joined by newlines.

As in the reference implementations, "lorem ipsum" and "{" only remove a document when
they sit on a line that survived the line filters before them (a code line without
terminal punctuation is dropped as a line, not as a page). Sentences are counted with
RedPajama-V2's rps_doc_num_sentences pattern instead of NLTK's punkt, which this
project does not ship.

Other languages (a :class:`~redrobe.text.languages.LanguageProfile` other than
English): words per line and word lengths use the profile's words (a Chinese line
has words without having spaces), a line may also end in the script's own sentence
ends (。！？, ।, ؟ ...; in Thai and Lao, in a letter), and sentences are counted with
the profile's pattern, so a document is not dropped line by line for lacking spaces or
Latin full stops.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass

from redrobe.config import C4Params
from redrobe.text.base import Decision, FailureChecks, remove
from redrobe.text.languages import ENGLISH, LanguageProfile

C4_LOREM_IPSUM = "c4_lorem_ipsum"
C4_CURLY_BRACKET = "c4_curly_bracket"
C4_TOO_FEW_SENTENCES = "c4_too_few_sentences"
# line filters (a dropped line, not a removed document; :meth:`C4Rules.report` names them)
C4_LINE_LONG_WORD = "c4_line_long_word"
C4_LINE_NO_TERMINAL_PUNCTUATION = "c4_line_no_terminal_punctuation"
C4_LINE_TOO_FEW_WORDS = "c4_line_too_few_words"
C4_LINE_JAVASCRIPT = "c4_line_javascript"
C4_LINE_POLICY = "c4_line_policy"

END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
# tfds c4_utils._POLICY_SUBSTRINGS (as datatrove keeps them)
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                     "use of cookies", "use cookies")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_POLICY = re.compile("|".join(map(re.escape, POLICY_SUBSTRINGS)))   # one scan, not six
_MAY_END_A_SENTENCE = operator.methodcaller("endswith", END_PUNCTUATION + ("]",))


@dataclass(frozen=True)
class C4Report:
    """Every C4 rule on one text, each page-level rule judged on its own.

    ``reasons``: the page-level rules that fire (each with the line filters before it,
    as if it were the only page-level rule), in C4's order; ``dropped``: line-filter
    reason -> the (stripped) lines that filter drops, a line going to the first filter
    that drops it; ``text``: the kept lines joined by newlines (what :meth:`C4Rules.check`
    keeps when ``reasons`` is empty); ``sentences``: the sentences of the kept lines.
    """

    reasons: list[str]
    dropped: dict[str, list[str]]
    text: str
    sentences: int = 0


class C4Rules(FailureChecks):
    """C4's line filters plus its page-level drops.

    Unlike the other rule sets C4 edits what it keeps (the surviving lines), so it
    overrides :meth:`check`; its failures, for :meth:`reasons`, are the page-level
    rules of :meth:`report`."""

    name = "c4"
    config: C4Params
    language_aware = True
    thresholds = {"min_sentences": "<"}

    def __init__(self, config: C4Params, profile: LanguageProfile = ENGLISH) -> None:
        super().__init__(config, profile)
        # English: str.split and C4's own line ends, exactly as before profiles existed
        self._words = str.split if profile.plain else profile.tokens
        self._ends = profile.line_ends(END_PUNCTUATION)
        self._open_ends = profile.space_ends_sentence
        self._ends_without_mark = profile.ends_sentence_without_mark
        self._may_end = _MAY_END_A_SENTENCE if profile is ENGLISH else self._may_end_a_sentence

    def _may_end_a_sentence(self, line: str) -> bool:
        # the pre-filter of _scan for other languages: their line ends, or "]"
        return self.profile.ends_sentence(line, self._ends + ("]",))

    def check(self, text: str) -> Decision:
        """Remove for the first page-level rule that fires, else keep the kept lines."""
        scan = self._scan(text, every=False)
        if scan.reasons:
            return remove(scan.reasons[0])
        return Decision(text=scan.text if scan.text != text else None)

    def report(self, text: str) -> C4Report:
        """Every rule's verdict (:class:`C4Report`): per-rule removal counts, as FineWeb
        App. E.4 and Dolma count them (Dolma tags C4's no-punctuation lines on their own)."""
        return self._scan(text, every=True)

    def _failures(self, text: str) -> Iterator[str]:
        # every page-level rule that fires, each on its own (the first is check()'s); not
        # lazy: which page-level rules fire depends on the line filters over the whole text
        return iter(self.report(text).reasons)

    def statistics(self, text: str) -> dict[str, float]:
        return {"min_sentences": self.report(text).sentences}

    def _scan(self, text: str, every: bool) -> C4Report:
        # every=False stops at the first page-level drop and records no dropped lines
        c = self.config
        kept: list[str] = []
        reasons: list[str] = []
        dropped: dict[str, list[str]] = {}
        sentences = 0

        def drop(reason: str, line: str) -> None:
            if every:
                dropped.setdefault(reason, []).append(line)

        lines: Iterator[str] = map(str.strip, text.splitlines())
        if not every:
            # a line must end in terminal punctuation, or in "]" of a citation mark whose
            # removal may uncover it; dropping the others first (in C) is safe because
            # every line filter only drops the line
            lines = filter(self._may_end, lines)
        for stripped in lines:
            # only a line longer than the limit can hold a word longer than the limit
            if len(stripped) > c.max_word_length and any(len(w) > c.max_word_length
                                                         for w in self._words(stripped)):
                drop(C4_LINE_LONG_WORD, stripped)
                continue
            line = _CITATION.sub("", stripped) if "[" in stripped else stripped
            if not (line.endswith(self._ends) or self._open_ends and self._ends_without_mark(line)) \
                    or line.endswith(ELLIPSIS):
                drop(C4_LINE_NO_TERMINAL_PUNCTUATION, stripped)
                continue
            if len(self._words(stripped)) < c.min_words_per_line:  # C4 counts before citations go
                drop(C4_LINE_TOO_FEW_WORDS, stripped)
                continue
            lower = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in lower:
                if not every:
                    return C4Report([C4_LOREM_IPSUM], dropped, "")
                _add_once(reasons, C4_LOREM_IPSUM)
            if c.filter_javascript_lines and "javascript" in lower:
                drop(C4_LINE_JAVASCRIPT, stripped)
                continue
            if c.filter_curly_bracket and "{" in line:
                if not every:
                    return C4Report([C4_CURLY_BRACKET], dropped, "")
                _add_once(reasons, C4_CURLY_BRACKET)
            if c.filter_policy_lines and _POLICY.search(lower):
                drop(C4_LINE_POLICY, stripped)
                continue
            sentences += len(self.profile.sentence_pattern.findall(line))
            kept.append(line)
        if sentences < c.min_sentences:
            reasons.append(C4_TOO_FEW_SENTENCES)
        return C4Report(reasons, dropped, "\n".join(kept), sentences)


def _add_once(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)
