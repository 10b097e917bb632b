"""C4 rule set (Raffel et al. 2020, §2.2; tfds c4_utils / datatrove C4QualityFilter).

    rules = C4Rules(params.clean.c4)
    rules(doc)   # Decision(text=<kept lines>) or remove(C4_CURLY_BRACKET), ...

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
"""

from __future__ import annotations

import operator
import re

from redrobe.config import C4Rules as C4Config
from redrobe.documents import Document
from redrobe.text.base import Decision, remove

C4_LOREM_IPSUM = "c4_lorem_ipsum"
C4_CURLY_BRACKET = "c4_curly_bracket"
C4_TOO_FEW_SENTENCES = "c4_too_few_sentences"

END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
# tfds c4_utils._POLICY_SUBSTRINGS (as datatrove keeps them)
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                     "use of cookies", "use cookies")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*")  # RedPajama-V2 rps_doc_num_sentences
_POLICY = re.compile("|".join(map(re.escape, POLICY_SUBSTRINGS)))   # one scan, not six
_MAY_END_A_SENTENCE = operator.methodcaller("endswith", END_PUNCTUATION + ("]",))


class C4Rules:
    """C4's line filters plus its page-level drops."""

    name = "c4"

    def __init__(self, config: C4Config) -> None:
        self.config = config

    def __call__(self, doc: Document) -> Decision:
        return self.check(doc.text)

    def check(self, text: str) -> Decision:
        c = self.config
        kept: list[str] = []
        sentences = 0
        # a line must end in terminal punctuation, or in "]" of a citation mark whose
        # removal may uncover it; dropping the others first (in C) is safe because
        # every line filter only drops the line
        for stripped in filter(_MAY_END_A_SENTENCE, map(str.strip, text.splitlines())):
            # only a line longer than the limit can hold a word longer than the limit
            if len(stripped) > c.max_word_length and any(len(w) > c.max_word_length
                                                         for w in stripped.split()):
                continue
            line = _CITATION.sub("", stripped) if "[" in stripped else stripped
            if not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS):
                continue
            if len(stripped.split()) < c.min_words_per_line:  # C4 counts before citations go
                continue
            lower = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in lower:
                return remove(C4_LOREM_IPSUM)
            if c.filter_javascript_lines and "javascript" in lower:
                continue
            if c.filter_curly_bracket and "{" in line:
                return remove(C4_CURLY_BRACKET)
            if c.filter_policy_lines and _POLICY.search(lower):
                continue
            sentences += len(_SENTENCE.findall(line))
            kept.append(line)
        if sentences < c.min_sentences:
            return remove(C4_TOO_FEW_SENTENCES)
        new_text = "\n".join(kept)
        return Decision(text=new_text if new_text != text else None)
