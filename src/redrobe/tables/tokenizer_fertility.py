"""Paper table "tokenizer-fertility": tokens per word per language with this pipeline's
byte-level BPE, trained on English alone and with multilingual text added, beside the
tokenization premiums Petrov et al. (2023) measured for GPT-2 and BLOOM.

    redrobe reproduce tokenizer-fertility --scale sample

How it runs. Two variants, each measuring fertility (:mod:`redrobe.fertility`: tokens
of the running text per word, words as the language's profile counts them) on text
the tokenizer never trained on:

- ``english``: the table's shared tokenizer (``ctx.tokenizer``: params.tokenize on the
  corpus' training split, i.e. the tokenizer the pipeline trains on the English sample).
- ``multilingual``: the same training texts plus the multilingual text of
  :mod:`redrobe.sources.multilingual` (78 documents in 67 languages, split into items:
  spaCy's sentences, the sample files' paragraphs). The items of each document are
  dealt into ``folds`` folds by position; one tokenizer per fold trains on the other
  folds' items and measures its own, so every item is measured held out.

Both measure the same text: every multilingual item under its source's language label,
and under ``en`` the validation documents of ``english_slices`` too (the English
baseline). A language's ratio is its fertility over English fertility with the same
tokenizer. The paper's numbers are premiums: the tokens of a language's FLORES-200 text
(dev + devtest) over the tokens of the same sentences in English (:data:`PAPER`).

Claims (criteria in their text; languages with fewer than ``min_words`` measured words
are shown but left out): :func:`english_cheapest_claim`, :func:`script_claim`,
:func:`ordering_claim`, :func:`multilingual_claim`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from statistics import median
from typing import Any

from redrobe.fertility import Fertility
from redrobe.sources import multilingual
from redrobe.sources.multilingual import LabelledText
from redrobe.tables.spec import CORPUS, TOKENIZER, Claim, Context, Table, TableSpec, Variant
from redrobe.text.languages import normalize_code
from redrobe.tokenizer import token_counts, train_bpe

ENGLISH, MULTILINGUAL = "english", "multilingual"
LATIN = "Latn"

#: Petrov et al. 2023, tokenization premium relative to English on FLORES-200 (dev +
#: devtest), computed from the per-language token counts the authors published with the
#: paper (docs/references.md, "Paper tables"): our label -> (FLORES-200 language, GPT-2,
#: BLOOM). Absent: languages FLORES-200 lacks (grc, hsb, dsb, la).
PAPER: dict[str, tuple[str, float, float]] = {
    "am": ("Amharic", 7.79, 5.07), "ar": ("Standard Arabic", 4.40, 1.14),
    "az": ("North Azerbaijani", 3.47, 2.30), "bg": ("Bulgarian", 5.51, 2.49),
    "bn": ("Bengali", 9.65, 1.17), "bo": ("Standard Tibetan", 14.93, 6.66),
    "ca": ("Catalan", 1.92, 1.18), "cs": ("Czech", 2.62, 2.03),
    "da": ("Danish", 1.90, 1.67), "de": ("German", 2.14, 1.68),
    "el": ("Greek", 6.54, 3.81), "en": ("English", 1.00, 1.00),
    "es": ("Spanish", 1.99, 1.21), "eu": ("Basque", 2.10, 1.14),
    "fa": ("Western Persian", 5.32, 1.78), "fi": ("Finnish", 2.28, 1.89),
    "fr": ("French", 2.00, 1.20), "gu": ("Gujarati", 12.27, 1.35),
    "he": ("Hebrew", 4.39, 2.92), "hi": ("Hindi", 7.46, 1.28),
    "hr": ("Croatian", 2.15, 1.80), "ht": ("Haitian Creole", 1.90, 1.56),
    "hu": ("Hungarian", 2.66, 2.07), "hy": ("Armenian", 10.01, 4.31),
    "id": ("Indonesian", 1.98, 0.96), "it": ("Italian", 2.01, 1.62),
    "ja": ("Japanese", 3.00, 1.81), "kmr": ("Northern Kurdish", 2.45, 2.03),
    "kn": ("Kannada", 13.69, 1.31), "ko": ("Korean", 5.07, 2.79),
    "ky": ("Kyrgyz", 5.74, 3.02), "lb": ("Luxembourgish", 2.25, 1.89),
    "lg": ("Ganda", 2.17, 1.67), "lij": ("Ligurian", 2.29, 1.81),
    "lt": ("Lithuanian", 2.45, 1.94), "ml": ("Malayalam", 15.24, 1.38),
    "ms": ("Standard Malay", 2.05, 1.07), "nb": ("Norwegian Bokmål", 1.86, 1.62),
    "ne": ("Nepali", 7.59, 1.17), "nl": ("Dutch", 1.97, 1.71),
    "nn": ("Norwegian Nynorsk", 1.93, 1.65), "pl": ("Polish", 2.69, 2.14),
    "pt": ("Portuguese", 1.94, 1.12), "ro": ("Romanian", 2.48, 1.91),
    "ru": ("Russian", 5.74, 2.48), "sa": ("Sanskrit", 7.94, 1.63),
    "si": ("Sinhala", 12.86, 8.21), "sk": ("Slovak", 2.52, 2.01),
    "sl": ("Slovenian", 2.11, 1.81), "sq": ("Tosk Albanian", 2.65, 2.17),
    "sr": ("Serbian", 5.34, 2.57), "sv": ("Swedish", 1.95, 1.65),
    "ta": ("Tamil", 15.58, 1.27), "te": ("Telugu", 13.09, 1.33),
    "ti": ("Tigrinya", 7.88, 5.16), "tn": ("Tswana", 2.39, 2.02),
    "tr": ("Turkish", 2.43, 1.96), "tt": ("Tatar", 5.82, 3.15),
    "uk": ("Ukrainian", 5.75, 2.75), "ur": ("Urdu", 6.30, 1.36),
    "vi": ("Vietnamese", 4.54, 1.27), "yo": ("Yoruba", 3.89, 1.64),
    "zh": ("Chinese (Simplified)", 3.21, 0.95),
}
#: the paper's checks over the languages of PAPER (from its numbers above)
PAPER_GPT2_MIN_OTHER = min(gpt2 for code, (_, gpt2, _) in PAPER.items() if code != "en")
PAPER_BLOOM_MAX = max(bloom for _, _, bloom in PAPER.values())
#: Spearman's rho that counts as the same ordering of languages
MIN_RHO = 0.5
#: share of languages whose ratio the multilingual tokenizer must lower
MIN_LOWERED = 0.9


@dataclass(frozen=True)
class Settings:
    """Where the pinned archives are, how many folds, which slices give the English row,
    and how many measured words a language needs to count in the claims."""

    cache_dir: str = ".cache/dists"
    folds: int = 2
    #: RedPajama's English slices (its wikipedia slice holds 20 languages)
    english_slices: list[str] = field(default_factory=lambda: ["books", "c4", "common_crawl"])
    min_words: int = 20

    def validate(self) -> list[str]:
        problems = [] if self.folds >= 2 else ["folds: must be >= 2 (every item is measured held out)"]
        if not self.english_slices:
            problems.append("english_slices: must name at least one slice")
        if self.min_words < 1:
            problems.append("min_words: must be >= 1")
        return problems


# ----------------------------------------------------------------------------- the text

def load_items(cache_dir: str) -> list[LabelledText]:
    """The multilingual items (a sentence or paragraph each), from the pinned archives."""
    return multilingual.check_set(multilingual.open_archives(multilingual.fetch_pins(cache_dir)))


def fold_of(items: Sequence[LabelledText], folds: int) -> list[int]:
    """Each item's fold: its position among its document's items, modulo ``folds``."""
    seen: Counter[str] = Counter()
    out = []
    for item in items:
        out.append(seen[item.doc_id] % folds)
        seen[item.doc_id] += 1
    return out


def scripts(items: Iterable[LabelledText]) -> dict[str, str]:
    """Each language's most frequent item script (ties: the first met)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        counts[normalize_code(item.label)][item.script] += 1
    return {code: c.most_common(1)[0][0] for code, c in sorted(counts.items())}


def english_texts(ctx: Context) -> list[str]:
    """The validation documents of the English slices (the English baseline)."""
    return [doc.text or "" for name in ctx.settings.english_slices
            for doc in ctx.documents(name) if ctx.is_validation(doc)]


def measure(tokenizer: Any, labelled: Sequence[tuple[str, str]], counts: Fertility) -> None:
    """Add (language, text) pairs to ``counts``, tokenized in one batch."""
    for (language, text), tokens in zip(labelled, token_counts(tokenizer, [t for _, t in labelled])):
        counts.add(language, text, tokens)


# ----------------------------------------------------------------------------- variants

def variants(ctx: Context) -> list[Variant]:
    s, tok = ctx.settings, ctx.params.tokenize
    pins = [f"{p.spec} sha256:{p.sha256}" for p in multilingual.PINS]
    base = {"pins": pins, "english_slices": list(s.english_slices)}
    return [Variant(ENGLISH, {**base, "tokenizer": "shared (params.tokenize)"}),
            Variant(MULTILINGUAL, {**base, "folds": s.folds, "vocab_size": tok.vocab_size,
                                   "min_frequency": tok.min_frequency})]


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    items = load_items(ctx.settings.cache_dir)
    labelled = [(normalize_code(i.label), i.text) for i in items]
    english = [("en", text) for text in english_texts(ctx)]
    counts = Fertility()
    if variant.name == ENGLISH:
        measure(ctx.tokenizer, english + labelled, counts)
    else:
        train_folds(variant.params, ctx, items, labelled, english, counts)
    return {"tokenizer": variant.name, "languages": counts.as_dict(), "scripts": scripts(items),
            "items": len(items), "english_docs": len(english)}


def train_folds(params: dict[str, Any], ctx: Context, items: Sequence[LabelledText],
                labelled: Sequence[tuple[str, str]], english: Sequence[tuple[str, str]],
                counts: Fertility) -> None:
    """One tokenizer per fold, trained on the corpus' training split and the other folds'
    items, measuring its fold's items (and the English baseline, fold 0's tokenizer)."""
    folds = fold_of(items, params["folds"])
    for fold in range(params["folds"]):
        corpus = (d.text or "" for d in ctx.documents() if not ctx.is_validation(d))
        extra = [text for (_, text), f in zip(labelled, folds) if f != fold]
        tokenizer = train_bpe(chain(corpus, extra), params["vocab_size"], params["min_frequency"])
        tokenizer.encode_special_tokens = True     # as redrobe.tokenizer.document_encoder
        mine = [pair for pair, f in zip(labelled, folds) if f == fold]
        measure(tokenizer, (list(english) if fold == 0 else []) + mine, counts)


# ----------------------------------------------------------------------------- the table

COLUMNS = ["language", "script", "flores_language", "words", "ours_english_tokens_per_word",
           "ours_multilingual_tokens_per_word", "ours_english_tokens_per_char",
           "ours_english_ratio", "ours_multilingual_ratio", "paper_gpt2_premium",
           "paper_bloom_premium"]


def _ratio(value: float | None, english: float | None) -> float | None:
    return round(value / english, 3) if value is not None and english else None


def rows_of(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per language measured, English first, then by the paper's GPT-2 premium."""
    eng = results.get(ENGLISH, {}).get("languages", {})
    mul = results.get(MULTILINGUAL, {}).get("languages", {})
    found = {**results.get(MULTILINGUAL, {}).get("scripts", {}),
             **results.get(ENGLISH, {}).get("scripts", {})}
    base = {name: r.get("languages", {}).get("en", {}).get("tokens_per_word")
            for name, r in results.items()}
    rows = []
    for code in sorted(set(eng) | set(mul)):
        e, m = eng.get(code, {}), mul.get(code, {})
        flores, gpt2, bloom = PAPER.get(code, (None, None, None))
        rows.append({
            "language": code, "script": found.get(code, LATIN if code == "en" else None),
            "flores_language": flores, "words": e.get("words", m.get("words")),
            "ours_english_tokens_per_word": e.get("tokens_per_word"),
            "ours_multilingual_tokens_per_word": m.get("tokens_per_word"),
            "ours_english_tokens_per_char": e.get("tokens_per_char"),
            "ours_english_ratio": _ratio(e.get("tokens_per_word"), base.get(ENGLISH)),
            "ours_multilingual_ratio": _ratio(m.get("tokens_per_word"), base.get(MULTILINGUAL)),
            "paper_gpt2_premium": gpt2, "paper_bloom_premium": bloom})
    return sorted(rows, key=lambda r: (r["language"] != "en", -(r["paper_gpt2_premium"] or 0),
                                       r["language"]))


def _counted(rows: Sequence[dict[str, Any]], min_words: int, key: str) -> list[dict[str, Any]]:
    """Non-English rows with enough words and a value under ``key``."""
    return [r for r in rows if r["language"] != "en" and (r["words"] or 0) >= min_words
            and r[key] is not None]


def english_cheapest_claim(rows: Sequence[dict[str, Any]], min_words: int) -> Claim:
    mine = _counted(rows, min_words, "ours_english_ratio")
    text = ("Petrov et al. 2023: an English-centric tokenizer encodes every other language in "
            f"more tokens than English (GPT-2: premium >= {PAPER_GPT2_MIN_OTHER:.2f} for each of "
            f"this table's {len(PAPER) - 1} other FLORES-200 languages). Criterion: ours, "
            "English-only tokenizer, fertility ratio to English > 1 for every language measured "
            f"on >= {min_words} words.")
    if not mine:
        return Claim(text, None, "no language other than English measured")
    below = [r["language"] for r in mine if r["ours_english_ratio"] <= 1]
    lowest = min(mine, key=lambda r: r["ours_english_ratio"])
    return Claim(text, not below, f"{len(mine)} languages; lowest {lowest['language']} "
                                  f"{lowest['ours_english_ratio']:.2f}; at or below 1: {below or 'none'}")


def _script_medians(rows: Sequence[dict[str, Any]], key: str) -> tuple[float, float] | None:
    latin = [r[key] for r in rows if r["script"] == LATIN]
    other = [r[key] for r in rows if r["script"] not in (LATIN, None)]
    return (median(latin), median(other)) if latin and other else None


def script_claim(rows: Sequence[dict[str, Any]], min_words: int) -> Claim:
    counted = [r for r in _counted(rows, min_words, "ours_english_ratio")
               if r["paper_gpt2_premium"] is not None]
    paper = _script_medians(counted, "paper_gpt2_premium")
    mine = _script_medians(counted, "ours_english_ratio")
    text = ("Petrov et al. 2023: languages in scripts other than Latin pay the largest premiums "
            "with an English-centric tokenizer. Criterion: median ratio of the non-Latin-script "
            "languages > median of the Latin-script ones, ours (English-only tokenizer, >= "
            f"{min_words} words) as the paper's GPT-2 premiums over the same languages.")
    if paper is None or mine is None:
        return Claim(text, None, "one of the script groups has no measured language")
    return Claim(text, mine[1] > mine[0] and paper[1] > paper[0],
                 f"ours Latin {mine[0]:.2f} vs other scripts {mine[1]:.2f}; "
                 f"paper GPT-2 Latin {paper[0]:.2f} vs other scripts {paper[1]:.2f}")


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None below 3 pairs."""
    if len(xs) < 3:
        return None
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else None


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def ordering_claim(rows: Sequence[dict[str, Any]], min_words: int) -> Claim:
    both = [r for r in _counted(rows, min_words, "ours_english_ratio")
            if r["paper_gpt2_premium"] is not None]
    rho = spearman([r["ours_english_ratio"] for r in both], [r["paper_gpt2_premium"] for r in both])
    text = ("Petrov et al. 2023: how much more an English-centric tokenizer costs varies widely "
            "by language. Criterion: the languages rank alike, Spearman's rho between ours "
            "(English-only tokenizer, fertility ratio, >= "
            f"{min_words} words) and the paper's GPT-2 premium >= {MIN_RHO}.")
    if rho is None:
        return Claim(text, None, f"{len(both)} languages in both: too few to rank")
    return Claim(text, rho >= MIN_RHO, f"rho {rho:.2f} over {len(both)} languages")


def multilingual_claim(rows: Sequence[dict[str, Any]], min_words: int) -> Claim:
    both = [r for r in _counted(rows, min_words, "ours_english_tokens_per_word")
            if r["ours_multilingual_tokens_per_word"] is not None
            and r["ours_multilingual_ratio"] is not None]
    text = ("Petrov et al. 2023: training on many languages narrows the premiums but does not "
            "remove them (BLOOM's premium is below GPT-2's for every language of this table, "
            f"yet up to {PAPER_BLOOM_MAX:.2f}). Criterion: ours, the multilingual tokenizer's "
            f"fertility is below the English-only one's for >= {MIN_LOWERED:.0%} of the "
            f"languages measured on >= {min_words} words (fertility, not the ratio: English's "
            "own fertility moves a little between the two), and its largest ratio to English "
            "is still >= 2.")
    if not both:
        return Claim(text, None, "the multilingual variant measured no language")
    lowered = sum(r["ours_multilingual_tokens_per_word"] < r["ours_english_tokens_per_word"]
                  for r in both)
    top = max(both, key=lambda r: r["ours_multilingual_ratio"])
    share = lowered / len(both)
    return Claim(text, share >= MIN_LOWERED and top["ours_multilingual_ratio"] >= 2,
                 f"lower for {lowered} of {len(both)} languages ({share:.0%}); largest "
                 f"{top['language']} {top['ours_multilingual_ratio']:.2f}")


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    rows = rows_of(results)
    n = ctx.settings.min_words
    return Table(name=SPEC.name, title=SPEC.title, columns=COLUMNS, rows=rows,
                 claims=[english_cheapest_claim(rows, n), script_claim(rows, n),
                         ordering_claim(rows, n), multilingual_claim(rows, n)],
                 notes=notes_of(results, ctx))


def notes_of(results: dict[str, dict[str, Any]], ctx: Context) -> list[str]:
    s, tok = ctx.settings, ctx.params.tokenize
    any_result = next(iter(results.values()), {})
    return [
        f"Scale {ctx.scale}: byte-level BPE, vocabulary {tok.vocab_size}, min frequency "
        f"{tok.min_frequency}. English row: {any_result.get('english_docs', 0)} validation "
        f"documents of {', '.join(s.english_slices)}; other rows: {any_result.get('items', 0)} "
        "items (sentences, paragraphs) of the multilingual text, by their source's label.",
        f"The multilingual tokenizer is {s.folds} tokenizers: each trained on the corpus' training "
        "split and the other folds' items, measured on its own fold's; so are both variants' "
        "numbers measured on text their tokenizer never saw.",
        "Fertility: tokens of the running text per word, words as the language's profile counts "
        "them (redrobe.fertility); for Chinese and Japanese those are mostly single characters, "
        "so their fertility is close to tokens per character. Ratio: over English fertility with "
        "the same tokenizer.",
        f"Languages measured on fewer than {s.min_words} words are shown and left out of the claims; "
        "most languages have a few dozen words, so single values move with a sentence.",
    ]


SPEC = TableSpec(
    name="tokenizer-fertility",
    title="Tokenizer fertility per language: English-only and multilingual BPE, beside the "
          "premiums of GPT-2 and BLOOM",
    paper="Petrov et al. 2023, Language Model Tokenizers Introduce Unfairness Between Languages "
          "(NeurIPS): tokenization premiums on FLORES-200, from the per-language token counts "
          "published with the paper",
    differences=[
        "The paper measures a premium: tokens of the same sentences translated (FLORES-200) in a "
        "language over English. Our text is not parallel (a few sentences or paragraphs per "
        "language, different in each), so ours is fertility (tokens per word) over English "
        "fertility; the two agree in direction, not in size (languages differ in words per "
        "sentence: Finnish packs more into a word than English).",
        "GPT-2 and BLOOM are 50k and 250k vocabularies trained on billions of tokens; ours is "
        "params.tokenize's vocabulary trained on the corpus (at sample scale 13 MB of English "
        "text and code), and the multilingual variant adds 66 kB of text in 67 languages "
        "(half of it per fold), far from BLOOM's balanced multilingual data.",
        "FLORES-200 has Simplified Chinese; our Chinese is Literary Chinese (a traditional-script "
        "Wikipedia sample) and spaCy's example sentences. Ancient Greek, Latin, Upper and Lower "
        "Sorbian are not in FLORES-200 and have no paper value.",
        "Words are whitespace tokens (scripts without spaces: the profile's cut, mostly single "
        "characters); Rust et al.'s fertility tokenizes pre-split words one by one, we count the "
        "tokens of the running text.",
    ],
    settings=Settings,
    variants=variants,
    run_variant=run_variant,
    build=build,
    needs=(CORPUS, TOKENIZER),
)
