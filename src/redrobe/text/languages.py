"""Per-language text profiles: stop words, word and sentence splitting, script.

    from redrobe.text.languages import profile
    zh = profile("zh")
    zh.tokens("我们的语言是一种功能强大的语言。")   # ["我们", "的", "语", "言", "是", "一种", ...]
    zh.sentence_pattern.findall("你好。今天天气很好！")   # ["你好。", "今天天气很好！"]
    profile("lb") is profile("en") is ENGLISH   # unsupported: today's English behaviour

The rule sets (:mod:`redrobe.text.gopher`, :mod:`~redrobe.text.c4`,
:mod:`~redrobe.text.fineweb`) and the RedPajama-V2 signals (:mod:`~redrobe.text.rpv2`)
take a :class:`LanguageProfile` and ask it for words, stop words and sentence ends, so
all the per-language and per-script knowledge lives here, once.

Profiles:

- :data:`ENGLISH` is exactly what the rules did before there were profiles: whitespace
  tokens, WordPunct raw words, Gopher's eight stop words (Rae et al. 2021, App. A) for
  the Gopher rule and RedPajama-V2's English list for ``rps_doc_stop_word_fraction``,
  sentences ending in ``. ! ?``. English results do not depend on this module.
- Every language with a stopwordsiso list (ISO 639-1 keyed; docs/references.md, "Many
  languages") gets that list, for the Gopher rule and the RedPajama-V2 signal alike,
  plus its script's word and sentence rules (:data:`SCRIPTS`).
- Lao, Khmer, Myanmar, Cantonese and Wu have no stopwordsiso list but need their
  script's splitting; they get a profile without stop words.
- Anything else (an unsupported language, ``und``, ``zxx``) falls back to
  :data:`ENGLISH`, i.e. the behaviour the pipeline had before it knew languages.

Scripts written without spaces between words (Han, Japanese kana, Thai, Lao, Khmer,
Myanmar): a run of the script is cut into units with no dictionary beyond the
language's stop words: at each position the longest stop word that starts there is one
word (so 我们, ของ, あの stay whole and can be matched), a katakana run is one word
(katakana spells loanwords, which stay whole), and otherwise one character with its
combining marks is one word (a Han character is a morpheme; a Thai, Lao, Khmer or
Myanmar letter with its vowel and tone marks is roughly a syllable's core). So word
counts are in characters for these languages and the word-count thresholds have to be
set per language (``clean.language_thresholds``; FineWeb-2 does the same). Why not a
dictionary segmenter: the maintained ones are per language (jieba for Chinese,
pythainlp for Thai, MeCab for Japanese), bring their own dictionaries and models and
cost far more per document than the rules themselves; one character per word treats
every such script alike, needs nothing beyond the standard library and keeps n-gram
repetition meaningful. Text of other scripts inside such a document (a Latin name, a
number) is split as before.

Sentences end at ``. ! ?`` plus the script's own terminators (。！？ for Han and kana,
। ॥ for Devanagari and Bengali, ؟ ۔ for Arabic script, ។ ៕ for Khmer, ။ for Myanmar,
։ for Armenian). Thai and Lao mark a sentence end with a space, not a character: in
those languages whitespace ends a sentence and a line ending in a letter of the script
counts as ending one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import stopwordsiso

from redrobe.text.normalize import normalized_text, normalized_words, raw_words

# ----------------------------------------------------------------------- English lists
#: Gopher's stop words (Rae et al. 2021, App. A: "the, be, to, of, and, that, have, with")
GOPHER_STOP_WORDS_EN = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

# RedPajama-V2's English stop words (core/quality_signals/utils/stop_words.py, taken
# from github.com/6/stopwords-json); matched case-sensitively against raw words.
_RPV2_STOP_WORDS_EN_TEXT = """
a a's able about above according accordingly across actually after afterwards again
against ain't all allow allows almost alone along already also although always am
among amongst an and another any anybody anyhow anyone anything anyway anyways
anywhere apart appear appreciate appropriate are aren't around as aside ask asking
associated at available away awfully b be became because become becomes becoming
been before beforehand behind being believe below beside besides best better between
beyond both brief but by c c'mon c's came can can't cannot cant cause causes certain
certainly changes clearly co com come comes concerning consequently consider
considering contain containing contains corresponding could couldn't course
currently d definitely described despite did didn't different do does doesn't doing
don't done down downwards during e each edu eg eight either else elsewhere enough
entirely especially et etc even ever every everybody everyone everything everywhere
ex exactly example except f far few fifth first five followed following follows for
former formerly forth four from further furthermore g get gets getting given gives go
goes going gone got gotten greetings h had hadn't happens hardly has hasn't have
haven't having he he's hello help hence her here here's hereafter hereby herein
hereupon hers herself hi him himself his hither hopefully how howbeit however i i'd
i'll i'm i've ie if ignored immediate in inasmuch inc indeed indicate indicated
indicates inner insofar instead into inward is isn't it it'd it'll it's its itself j
just k keep keeps kept know known knows l last lately later latter latterly least less
lest let let's like liked likely little look looking looks ltd m mainly many may maybe
me mean meanwhile merely might more moreover most mostly much must my myself n name
namely nd near nearly necessary need needs neither never nevertheless new next nine
no nobody non none noone nor normally not nothing novel now nowhere o obviously of off
often oh ok okay old on once one ones only onto or other others otherwise ought our
ours ourselves out outside over overall own p particular particularly per perhaps
placed please plus possible presumably probably provides q que quite qv r rather rd
re really reasonably regarding regardless regards relatively respectively right s
said same saw say saying says second secondly see seeing seem seemed seeming seems
seen self selves sensible sent serious seriously seven several shall she should
shouldn't since six so some somebody somehow someone something sometime sometimes
somewhat somewhere soon sorry specified specify specifying still sub such sup sure t
t's take taken tell tends th than thank thanks thanx that that's thats the their
theirs them themselves then thence there there's thereafter thereby therefore therein
theres thereupon these they they'd they'll they're they've think third this thorough
thoroughly those though three through throughout thru thus to together too took
toward towards tried tries truly try trying twice two u un under unfortunately unless
unlikely until unto up upon us use used useful uses using usually uucp v value various
very via viz vs w want wants was wasn't way we we'd we'll we're we've welcome well went
were weren't what what's whatever when whence whenever where where's whereafter
whereas whereby wherein whereupon wherever whether which while whither who who's
whoever whole whom whose why will willing wish with within without won't wonder would
wouldn't x y yes yet you you'd you'll you're you've your yours yourself yourselves z
zero
"""
#: RedPajama-V2's English stop words (``rps_doc_stop_word_fraction``)
RPV2_STOP_WORDS_EN = frozenset(_RPV2_STOP_WORDS_EN_TEXT.split())

# ----------------------------------------------------------------------------- scripts
# Character classes (regex class bodies) of the letters and marks of the scripts
# written without spaces; punctuation and digits are left out, so they split as before.
_HAN = "\u3005\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HIRAGANA = "\u3041-\u3096\u3099-\u309f"
_KATAKANA = "\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_THAI = "\u0e01-\u0e3a\u0e40-\u0e4e"
_LAO = "\u0e81-\u0ece\u0edc-\u0edf"
_KHMER = "\u1780-\u17d3\u17d7\u17dc\u17dd"
_MYANMAR = "\u1000-\u103f\u1050-\u108f\u109a-\u109f\ua9e0-\ua9ef\ua9fa-\ua9fe\uaa60-\uaa7f"


@dataclass(frozen=True)
class Script:
    """How a writing system separates words and sentences.

    ``letters``: regex class body of the script's letters and marks when its words are
    not separated by spaces ("" for scripts that use spaces); ``runs``: a class body
    whose runs are single words (katakana); ``sentence_ends``: characters that end a
    sentence besides ``. ! ?``; ``closers``: characters that may follow a sentence end
    at the end of a line (closing quotes); ``space_ends_sentence``: sentences end at
    whitespace, not at a character (Thai, Lao)."""

    name: str
    letters: str = ""
    runs: str = ""
    sentence_ends: str = ""
    closers: str = ""
    space_ends_sentence: bool = False


LATIN = Script("latin")   # also every other script that separates words with spaces
SCRIPTS = {s.name: s for s in (
    LATIN,
    Script("han", _HAN, sentence_ends="\u3002\uff01\uff1f\uff0e\uff61", closers="\u300d\u300f\u201d\uff09"),
    Script("japanese", _HAN + _HIRAGANA + _KATAKANA, runs=_KATAKANA,
           sentence_ends="\u3002\uff01\uff1f\uff0e\uff61", closers="\u300d\u300f\u201d\uff09"),
    Script("thai", _THAI, space_ends_sentence=True),
    Script("lao", _LAO, space_ends_sentence=True),
    Script("khmer", _KHMER, sentence_ends="\u17d4\u17d5"),
    Script("myanmar", _MYANMAR, sentence_ends="\u104b"),
    Script("arabic", sentence_ends="\u061f\u06d4"),
    Script("devanagari", sentence_ends="\u0964\u0965"),
    Script("bengali", sentence_ends="\u0964\u0965"),
    Script("armenian", sentence_ends="\u0589"),
)}

#: language (ISO 639-1, or 639-3 where there is no 639-1 code) -> script; others: latin
LANGUAGE_SCRIPTS = {
    "zh": "han", "yue": "han", "wuu": "han", "ja": "japanese", "th": "thai", "lo": "lao",
    "km": "khmer", "my": "myanmar", "ar": "arabic", "fa": "arabic", "ur": "arabic",
    "ps": "arabic", "ug": "arabic", "ku": "arabic", "hi": "devanagari", "mr": "devanagari",
    "ne": "devanagari", "sa": "devanagari", "bn": "bengali", "as": "bengali", "hy": "armenian",
}

# ISO 639-2/3 codes (as other identifiers write them) -> the ISO 639-1 code profiles use
_ISO_639_1 = {
    "eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it",
    "por": "pt", "nld": "nl", "dut": "nl", "rus": "ru", "pol": "pl", "ukr": "uk", "tur": "tr",
    "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko", "tha": "th", "lao": "lo",
    "khm": "km", "mya": "my", "bur": "my", "ara": "ar", "arb": "ar", "fas": "fa", "pes": "fa",
    "per": "fa", "urd": "ur", "hin": "hi", "ben": "bn", "vie": "vi", "ind": "id", "swe": "sv",
}

# a letter of any script (what "holds a letter" means outside English)
LETTER = re.compile(r"[^\W\d_]")
# the Latin-script sentence (RedPajama-V2's rps_doc_num_sentences pattern)
LATIN_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*")


def normalize_code(code: str) -> str:
    """An identifier's language code as profiles and params key it: lower case, the
    script or region suffix dropped (``zh-Hant``, ``cmn_Hani``), ISO 639-2/3 codes of
    the common languages mapped to ISO 639-1 (``deu`` -> ``de``)."""
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    return _ISO_639_1.get(base, base)


# ---------------------------------------------------------------------------- profiles
@dataclass(frozen=True, eq=False)
class LanguageProfile:
    """What the rules and signals need to know about one language.

    ``code``: the language ("" for the English fallback), ``stop_words``: the list for
    RedPajama-V2's stop-word fraction, ``gopher_stop_words``: the list Gopher's "at least
    two stop words" rule counts (English: Gopher's eight; elsewhere the same list as
    ``stop_words``). ``plain`` is true when words are whitespace tokens (no segmenter)."""

    code: str
    script: Script
    stop_words: frozenset[str]
    gopher_stop_words: frozenset[str]
    _segmenter: _Segmenter | None = field(default=None, repr=False)
    sentence_pattern: re.Pattern[str] = field(default=LATIN_SENTENCE, repr=False)

    @property
    def plain(self) -> bool:
        return self._segmenter is None

    @property
    def space_ends_sentence(self) -> bool:
        """Sentences end at whitespace (Thai, Lao): see :meth:`ends_sentence_without_mark`."""
        return self.script.space_ends_sentence and self._segmenter is not None

    def line_ends(self, marks: tuple[str, ...]) -> tuple[str, ...]:
        """A rule set's own line-final ``marks`` (C4: ``. ? ! " '``) plus the script's
        sentence ends and closing quotes; for English exactly ``marks``."""
        extra = self.script.sentence_ends + self.script.closers
        return marks + tuple(m for m in extra if m not in marks)

    def tokens(self, text: str) -> list[str]:
        """Whitespace tokens, each run of a script without spaces cut into words (the
        Gopher and C4 word view)."""
        if self._segmenter is None:
            return text.split()
        return self._segmenter.split(text.split(), whole=list.append)

    def raw_words(self, text: str) -> list[str]:
        """RedPajama-V2's WordPunct tokens, script runs cut into words."""
        if self._segmenter is None:
            return raw_words(text)
        return self._segmenter.split([text], whole=lambda out, part: out.extend(raw_words(part)))

    def split_normalized(self, normalized: str) -> list[str]:
        """The words of an already normalized text (:func:`~redrobe.text.normalize.normalized_text`)."""
        return self.tokens(normalized)

    def normalized_words(self, text: str) -> list[str]:
        """RedPajama-V2's normalized words of ``text``, script runs cut into words."""
        return normalized_words(text) if self._segmenter is None else self.tokens(normalized_text(text))

    def ends_sentence_without_mark(self, line: str) -> bool:
        """True when ``line`` ends a sentence although it has no terminator: the last
        character is a letter of a script whose sentences end at spaces (Thai, Lao)."""
        segmenter = self._segmenter if self.script.space_ends_sentence else None
        return segmenter is not None and segmenter.is_letter(line[-1:])

    def ends_sentence(self, line: str, ends: tuple[str, ...]) -> bool:
        """Does ``line`` end a sentence, given :meth:`line_ends` of a rule set's marks."""
        return line.endswith(ends) or self.ends_sentence_without_mark(line)


class _Segmenter:
    """Cuts the runs of one script without spaces into words (see the module docstring):
    the longest dictionary word (the language's stop words) starting at a position, else
    a run of a ``runs`` character class, else one character with its combining marks."""

    def __init__(self, script: Script, dictionary: frozenset[str]) -> None:
        self.letters = re.compile(f"[{script.letters}]")
        self.run = re.compile(f"([{script.letters}]+)")
        marks = _marks(script.letters)
        unit = f"(?:[{script.runs}][{marks}]*)+|" if script.runs else ""
        self.unit = re.compile(f"{unit}.[{marks}]*" if marks else f"{unit}.", re.DOTALL)
        # stop words written in the script only, and the NFD form too, as the normalized
        # view is NFD (が = か + U+3099); per first character, their lengths, longest first
        words = {w for w in dictionary if self.run.fullmatch(w)}
        self.words = frozenset(words | {unicodedata.normalize("NFD", w) for w in words})
        lengths: dict[str, set[int]] = {}
        for word in self.words:
            lengths.setdefault(word[0], set()).add(len(word))
        self.lengths = {first: sorted(n, reverse=True) for first, n in lengths.items()}
        self.single = not marks and not script.runs   # a unit is one character (Han)

    def is_letter(self, char: str) -> bool:
        return bool(char) and self.letters.match(char) is not None

    def split(self, pieces: list[str], whole: Callable[[list[str], str], None]) -> list[str]:
        """Words of ``pieces``: a piece without the script's letters goes to ``whole``
        (which appends it, or its own split of it, to the output); in the others the
        script's runs are segmented and the text between them (CJK punctuation glued to
        a Latin name, "。Python（") is split into WordPunct tokens."""
        out: list[str] = []
        for piece in pieces:
            if self.letters.search(piece) is None:
                whole(out, piece)
                continue
            for i, part in enumerate(self.run.split(piece)):
                out.extend(self.segment(part) if i % 2 else raw_words(part))
        return out

    def segment(self, run: str) -> list[str]:
        """One run of the script's letters, cut into words."""
        if not self.words:
            return self.unit.findall(run)
        out, i, end = [], 0, len(run)
        while i < end:
            # the longest stop word starting here (a few set lookups), else one unit
            size = next((n for n in self.lengths.get(run[i], ()) if run[i:i + n] in self.words), 0)
            if not size:
                size = 1 if self.single else self.unit.match(run, i).end() - i   # type: ignore[union-attr]
            out.append(run[i:i + size])
            i += size
        return out


def _marks(letters: str) -> str:
    """Regex class body of the combining marks (categories Mn, Mc, Me) among the
    characters of a class body of single characters and ``a-b`` ranges (the
    supplementary planes, Han extensions here, hold none of the scripts' marks)."""
    points = [chr(c) for lo, hi, one in re.findall(r"(.)-(.)|(.)", letters)
              for c in (range(ord(lo), ord(hi) + 1) if lo else [ord(one)]) if c < 0x10000]
    return "".join(re.escape(c) for c in points if unicodedata.category(c).startswith("M"))


def _sentence_pattern(script: Script) -> re.Pattern[str]:
    if not (script.sentence_ends or script.space_ends_sentence):
        return LATIN_SENTENCE
    ends = re.escape(".!?" + script.sentence_ends) + (r"\s" if script.space_ends_sentence else "")
    return re.compile(rf"\b[^{ends}]+[{ends}]*")


#: today's rules: English lists, whitespace words, Latin sentence ends; also the fallback
ENGLISH = LanguageProfile("", LATIN, RPV2_STOP_WORDS_EN, GOPHER_STOP_WORDS_EN)


def _usable(words: set[str]) -> frozenset[str]:
    # an entry without a letter (stopwordsiso lists hold punctuation for some
    # languages) or with a space (no single token can equal it) never matches a word
    return frozenset(w for w in words if LETTER.search(w) and not any(c.isspace() for c in w))


def profile(code: str) -> LanguageProfile:
    """The profile for a language code (any case or suffix, :func:`normalize_code`);
    :data:`ENGLISH` for English and for every language this module does not support.
    Built once per process and language."""
    return _profile(normalize_code(code))


@functools.cache
def _profile(code: str) -> LanguageProfile:
    if code == "en" or code not in supported_languages():
        return ENGLISH
    script = SCRIPTS[LANGUAGE_SCRIPTS.get(code, "latin")]
    stop_words = _usable(stopwordsiso.stopwords(code))
    segmenter = _Segmenter(script, stop_words) if script.letters else None
    return LanguageProfile(code, script, stop_words, stop_words, segmenter, _sentence_pattern(script))


@functools.cache
def supported_languages() -> frozenset[str]:
    """Codes with a profile of their own: English, every stopwordsiso language and the
    languages whose script needs splitting."""
    return frozenset(stopwordsiso.langs()) | frozenset(LANGUAGE_SCRIPTS) | {"en"}
