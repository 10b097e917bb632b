"""Paper table "rule-removal": characters and tokens each rule of the Gopher, C4 and
FineWeb rule sets removes, per slice, beside FineWeb App. E.4 Table 2 and Dolma's rates.

    redrobe reproduce rule-removal --scale sample

How it runs. One variant per rule set (``gopher`` = gopher_quality + gopher_repetition,
``c4``, ``fineweb``), each applying that set ALONE to every raw document after the
pipeline's Unicode normalization (``params.clean.normalization``), with the thresholds of
``params.clean``. Documents are streamed ``params.shared.batch_docs`` at a time; only
counters are kept. Each document is judged two ways:

- "first that fires": the pipeline's :class:`redrobe.text.rules.Cleaner` with only that
  set; its :class:`~redrobe.text.rules.Outcome` names the one reason the document is
  removed for (the first failing check), and ``chars_edited`` the characters C4's line
  filters cut from a kept document (row ``line_edits``). The first-fire rows of a set add
  up to its ``any`` row.
- "alone": every check of the set on its own, through the rule sets' ``reasons(text)``
  (C4: ``report(text)``, which also lists the lines each line filter drops), the same code
  ``check`` runs. This is how FineWeb App. E.4 Table 2 counts ("tokens removed by one
  rule") and how Dolma tags. A document counts once in ``any`` however many rules fire.

A rule's share is the characters (tokens of ``ctx.tokenizer``) of the documents it
removes over all characters (tokens) of the slice, both of the normalized text; a C4 line
filter's share is the characters of the lines it drops. Pooled rows: ``gopher_top_ngrams``
(2/3/4-gram rules) and ``gopher_dup_ngrams`` (5..10-gram rules), the FineWeb Table 2 rows;
slice ``web`` pools the ``web_slices`` (common_crawl + c4), on which the claims are checked
(:func:`short_line_claim`, :func:`no_punctuation_claim`, criteria in their text).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

from redrobe.config import Clean
from redrobe.documents import Document, Status
from redrobe.tables.spec import CORPUS, TOKENIZER, Claim, Context, Table, TableSpec, Variant, pct
from redrobe.text import c4, fineweb, gopher
from redrobe.text.base import FailureChecks
from redrobe.text.normalize import normalize_unicode
from redrobe.text.rules import Cleaner, Outcome, build_rule_sets
from redrobe.tokenizer import token_counts

#: the published rule sets (params.clean field names, in the order they run)
RULE_SETS = {"gopher": ("gopher_quality", "gopher_repetition"), "c4": ("c4",), "fineweb": ("fineweb",)}
ANY, LINE_EDITS, WEB = "any", "line_edits", "web"
TOP_NGRAMS, DUP_NGRAMS = "gopher_top_ngrams", "gopher_dup_ngrams"

#: FineWeb App. E.4 Table 2, % of tokens removed by one rule (docs/references.md, "Paper tables");
#: FineWeb's top-n-gram thresholds were 0.13/0.087/0.079, ours are Gopher's (params.clean)
PAPER_TOKENS = {
    ("fineweb", fineweb.FINEWEB_LINE_PUNCT_RATIO): 10.14,
    ("fineweb", fineweb.FINEWEB_CHAR_DUP_RATIO): 12.47,
    ("fineweb", fineweb.FINEWEB_SHORT_LINE_RATIO): 3.37,
    ("gopher", DUP_NGRAMS): 10.92,
    ("gopher", TOP_NGRAMS): 56.71,
}
#: Dolma, % of characters tagged: all Gopher rules, and C4's no-terminal-punctuation lines
PAPER_CHARS = {("gopher", ANY): 15.23, ("c4", c4.C4_LINE_NO_TERMINAL_PUNCTUATION): 22.73}
FINEWEB_TOP_NGRAM_THRESHOLDS = "0.13/0.087/0.079"

C4_PAGE = (c4.C4_LOREM_IPSUM, c4.C4_CURLY_BRACKET, c4.C4_TOO_FEW_SENTENCES)
C4_LINES = (c4.C4_LINE_LONG_WORD, c4.C4_LINE_NO_TERMINAL_PUNCTUATION, c4.C4_LINE_TOO_FEW_WORDS,
            c4.C4_LINE_JAVASCRIPT, c4.C4_LINE_POLICY)
GOPHER_QUALITY = (gopher.GOPHER_SHORT_DOC, gopher.GOPHER_LONG_DOC,
                  gopher.GOPHER_BELOW_AVG_WORD_LENGTH, gopher.GOPHER_ABOVE_AVG_WORD_LENGTH,
                  gopher.GOPHER_TOO_MANY_HASHES, gopher.GOPHER_TOO_MANY_ELLIPSIS,
                  gopher.GOPHER_TOO_MANY_BULLETS, gopher.GOPHER_TOO_MANY_END_ELLIPSIS,
                  gopher.GOPHER_BELOW_ALPHA_THRESHOLD, gopher.GOPHER_TOO_FEW_STOP_WORDS)
GOPHER_LINES = (gopher.GOPHER_DUP_PARA_FRAC, gopher.GOPHER_DUP_PARA_CHAR_FRAC,
                gopher.GOPHER_DUP_LINE_FRAC, gopher.GOPHER_DUP_LINE_CHAR_FRAC)
FINEWEB = (fineweb.FINEWEB_LINE_PUNCT_RATIO, fineweb.FINEWEB_SHORT_LINE_RATIO,
           fineweb.FINEWEB_CHAR_DUP_RATIO, fineweb.FINEWEB_LIST_RATIO)


@dataclass(frozen=True)
class Settings:
    """Which rule sets to measure and which slices are web text (pooled for the claims)."""

    rule_sets: list[str] = field(default_factory=lambda: ["gopher", "c4", "fineweb"])
    web_slices: list[str] = field(default_factory=lambda: ["common_crawl", "c4"])

    def validate(self) -> list[str]:
        unknown = sorted(set(self.rule_sets) - set(RULE_SETS))
        problems = [f"rule_sets: unknown {unknown} (known: {', '.join(RULE_SETS)})"] if unknown else []
        if not self.rule_sets:
            problems.append("rule_sets: must name at least one rule set")
        if len(set(self.rule_sets)) != len(self.rule_sets):
            problems.append("rule_sets: names repeat")
        if not self.web_slices:
            problems.append("web_slices: must name at least one slice")
        return problems


# ----------------------------------------------------------------------------- the rules

def rule_names(name: str, clean: Clean) -> list[str]:
    """Every row of rule set ``name``, in check order: its reasons, the pooled n-gram rows,
    C4's line filters and ``line_edits``, then ``any``."""
    if name == "gopher":
        rep = clean.gopher_repetition
        top = [gopher.top_ngram_reason(int(n)) for n in sorted(rep.top_n_grams, key=int)]
        dup = [gopher.dup_ngram_reason(int(n)) for n in sorted(rep.dup_n_grams, key=int)]
        return [*GOPHER_QUALITY, *GOPHER_LINES, *top, *dup, TOP_NGRAMS, DUP_NGRAMS, ANY]
    if name == "c4":
        return [*C4_PAGE, *C4_LINES, LINE_EDITS, ANY]
    return [*FINEWEB, ANY]


def pooled(reasons: Iterable[str]) -> set[str]:
    """The pooled rows a set of Gopher reasons belongs to (top 2-4-gram, dup 5-10-gram)."""
    out = set()
    for reason in reasons:
        if reason.startswith("gopher_top_") and reason.endswith("gram"):
            out.add(TOP_NGRAMS)
        elif reason.startswith("gopher_dup_") and reason.endswith("gram"):
            out.add(DUP_NGRAMS)
    return out


@dataclass
class Judged:
    """One document under one rule set: its normalized text, what removes it alone and
    first, the lines C4's filters drop (rule -> lines) and the text C4 keeps."""

    slice: str
    text: str
    alone: list[str]
    first: str | None
    dropped: dict[str, list[str]]
    edited_chars: int = 0     # Outcome.chars_edited: what C4's edits cut from a kept document
    kept_text: str | None = None   # the edited text (its tokens give the tokens cut)


def judge(doc: Document, cleaner: Cleaner, outcome: Outcome) -> Judged:
    """The Cleaner's ``outcome`` (first that fires, edits) beside every reason of every rule
    set of ``cleaner`` on its own (``reasons``, or C4's ``report``)."""
    text = normalize_unicode(doc.text, cleaner.normalization)
    alone: list[str] = []
    dropped: dict[str, list[str]] = {}
    for rule_set in cleaner.rule_sets:
        report = getattr(rule_set, "report", None)
        if report is not None:        # C4: page-level reasons and dropped lines
            result = report(text)
            alone += result.reasons
            dropped.update(result.dropped)
        else:
            alone += cast(FailureChecks, rule_set).reasons(text)  # named rule sets only
    edited = sum(outcome.chars_edited.values()) if outcome.reason is None else 0
    return Judged(doc.source, text, alone, outcome.reason, dropped, edited,
                  outcome.doc.text if edited else None)


# ----------------------------------------------------------------------------- counting

class Counts:
    """Per slice: documents/characters/tokens in all, and per (mode, rule) removed."""

    def __init__(self) -> None:
        self.total: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.removed: dict[str, dict[str, dict[str, list[int]]]] = defaultdict(
            lambda: {"alone": defaultdict(lambda: [0, 0, 0]), "first": defaultdict(lambda: [0, 0, 0])})
        self.quarantined: dict[str, int] = defaultdict(int)
        self.mismatches = 0

    def add(self, mode: str, slice_name: str, rule: str, chars: int, tokens: int) -> None:
        entry = self.removed[slice_name][mode][rule]
        entry[0] += 1
        entry[1] += chars
        entry[2] += tokens

    def add_document(self, j: Judged, tokens: int, kept_tokens: int | None,
                     lines: dict[str, tuple[int, int]]) -> None:
        """One judged document: ``tokens`` of its text, of the text C4 keeps, and
        (characters, tokens) of the lines each C4 line filter drops."""
        chars, total = len(j.text), self.total[j.slice]
        for k, v in enumerate((1, chars, tokens)):
            total[k] += v
        alone = [*dict.fromkeys(j.alone), *sorted(pooled(j.alone))] + ([ANY] if j.alone else [])
        for rule in alone:
            self.add("alone", j.slice, rule, chars, tokens)
        if j.first is not None:
            for rule in [j.first, *sorted(pooled([j.first])), ANY]:
                self.add("first", j.slice, rule, chars, tokens)
        for rule, (line_chars, line_tokens) in lines.items():
            self.add("alone", j.slice, rule, line_chars, line_tokens)
        if lines:   # every dropped line of the document, whichever filter dropped it
            self.add("alone", j.slice, LINE_EDITS, sum(c for c, _ in lines.values()),
                     sum(t for _, t in lines.values()))
        if kept_tokens is not None:
            self.add("first", j.slice, LINE_EDITS, j.edited_chars, tokens - kept_tokens)
        # the first reason of the all-reasons list must be the one the Cleaner reports
        self.mismatches += (j.alone[0] if j.alone else None) != j.first

    def as_dict(self) -> dict[str, Any]:
        names = sorted(set(self.total) | set(self.quarantined))
        return {name: {"docs": self.total[name][0], "chars": self.total[name][1],
                       "tokens": self.total[name][2], "quarantined": self.quarantined[name],
                       "alone": dict(sorted(self.removed[name]["alone"].items())),
                       "first": dict(sorted(self.removed[name]["first"].items()))}
                for name in names}


def count_batch(judged: Sequence[Judged], tokenizer: Any, counts: Counts) -> None:
    """Tokenize a batch's texts in one call and add every document to ``counts``."""
    lines = [(i, rule, dropped) for i, j in enumerate(judged) for rule, dropped in sorted(j.dropped.items())]
    kept = [i for i, j in enumerate(judged) if j.kept_text is not None]
    kept_texts = [j.kept_text for j in judged if j.kept_text is not None]
    lengths = token_counts(tokenizer, [j.text for j in judged]
                           + kept_texts
                           + ["\n".join(dropped) for _, _, dropped in lines])
    n = len(judged)
    kept_tokens: dict[int, int] = dict(zip(kept, lengths[n:n + len(kept)]))
    line_counts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for (i, rule, dropped), tokens in zip(lines, lengths[n + len(kept):]):
        line_counts[i][rule] = (sum(map(len, dropped)), tokens)
    for i, j in enumerate(judged):
        counts.add_document(j, lengths[i], kept_tokens.get(i), line_counts.get(i, {}))


# ----------------------------------------------------------------------------- variants

def variants(ctx: Context) -> list[Variant]:
    clean = ctx.params.clean
    return [Variant(name, {"members": list(RULE_SETS[name]), "normalization": clean.normalization,
                           "thresholds": {m: dataclasses.asdict(getattr(clean, m)) for m in RULE_SETS[name]},
                           "batch_docs": ctx.params.shared.batch_docs})
            for name in ctx.settings.rule_sets]


def run_variant(variant: Variant, ctx: Context) -> dict[str, Any]:
    clean = ctx.params.clean
    members = variant.params["members"]
    cleaner = Cleaner(variant.params["normalization"], build_rule_sets(members, clean),
                      store_signals=False)
    counts = Counts()
    docs = ctx.documents()
    while batch := list(islice(docs, variant.params["batch_docs"])):
        judged = []
        for doc, outcome in zip(batch, cleaner(batch)):
            if outcome.status == Status.QUARANTINED:
                counts.quarantined[doc.source] += 1
                continue
            judged.append(judge(doc, cleaner, outcome))
        count_batch(judged, ctx.tokenizer, counts)
    return {"rule_set": variant.name, "members": members, "rules": rule_names(variant.name, clean),
            "slices": counts.as_dict(), "first_fire_mismatches": counts.mismatches}


# ----------------------------------------------------------------------------- the table

COLUMNS = ["slice", "rule_set", "rule", "ours_alone_docs", "ours_alone_chars_pct",
           "ours_alone_tokens_pct", "ours_first_docs", "ours_first_chars_pct",
           "ours_first_tokens_pct", "paper_tokens_pct", "paper_chars_pct"]


def pool_slices(slices: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any] | None:
    """The counts of several slices added together (None when none of them is present)."""
    present = [slices[n] for n in names if n in slices]
    if not present:
        return None
    out: dict[str, Any] = {k: sum(s[k] for s in present) for k in ("docs", "chars", "tokens", "quarantined")}
    for mode in ("alone", "first"):
        merged: dict[str, list[int]] = {}
        for s in present:
            for rule, v in s[mode].items():
                merged[rule] = [a + b for a, b in zip(merged.get(rule, [0, 0, 0]), v)]
        out[mode] = merged
    return out


def rows_of(result: dict[str, Any], web_slices: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of one rule set: every slice, then the pooled web slices."""
    slices = dict(result["slices"])
    web = pool_slices(slices, web_slices)
    if web is not None:
        slices[WEB] = web
    name, rows = result["rule_set"], []
    for slice_name, s in slices.items():
        is_web = slice_name in web_slices or slice_name == WEB
        for rule in result["rules"]:
            alone, first = s["alone"].get(rule, [0, 0, 0]), s["first"].get(rule, [0, 0, 0])
            # C4's line filters have no first-fire count of their own (line_edits has it)
            has_first = rule not in C4_LINES
            rows.append({
                "slice": slice_name, "rule_set": name, "rule": rule,
                "ours_alone_docs": alone[0], "ours_alone_chars_pct": pct(alone[1], s["chars"]),
                "ours_alone_tokens_pct": pct(alone[2], s["tokens"]),
                "ours_first_docs": first[0] if has_first else None,
                "ours_first_chars_pct": pct(first[1], s["chars"]) if has_first else None,
                "ours_first_tokens_pct": pct(first[2], s["tokens"]) if has_first else None,
                # the papers measured web crawls: their numbers sit beside our web rows only
                "paper_tokens_pct": PAPER_TOKENS.get((name, rule)) if is_web else None,
                "paper_chars_pct": PAPER_CHARS.get((name, rule)) if is_web else None,
            })
    return rows


def find(rows: Sequence[dict[str, Any]], rule_set: str, rule: str,
         slice_name: str = WEB) -> dict[str, Any] | None:
    """The row of (slice, rule set, rule), or None."""
    key = (slice_name, rule_set, rule)
    return next((r for r in rows if (r["slice"], r["rule_set"], r["rule"]) == key), None)


def short_line_claim(rows: Sequence[dict[str, Any]]) -> Claim:
    """FineWeb Table 2: the short-line rule removes the fewest tokens of its three rules."""
    short, punct, dup = (find(rows, "fineweb", r) for r in (
        fineweb.FINEWEB_SHORT_LINE_RATIO, fineweb.FINEWEB_LINE_PUNCT_RATIO, fineweb.FINEWEB_CHAR_DUP_RATIO))
    text = ("FineWeb (App. E.4 Table 2): on web text the short-line rule (lines < 30 chars <= 0.67) "
            "removes fewer tokens than the punctuation-line (>= 0.12) and duplicated-line-chars "
            "(<= 0.01) rules. Criterion: on the pooled web slices, each rule alone, ours short-line "
            "% tokens < punctuation-line % tokens and < duplicated-line-chars % tokens.")
    values: list[Any] = [r and r["ours_alone_tokens_pct"] for r in (short, punct, dup)]
    if any(v is None for v in values):
        return Claim(text, None, "the fineweb variant or the web slices are missing")
    s, p, d = values
    return Claim(text, s < p and s < d, f"short-line {s:.2f} %, punctuation-line {p:.2f} %, "
                                        f"duplicated-line chars {d:.2f} % of tokens")


def no_punctuation_claim(rows: Sequence[dict[str, Any]]) -> Claim:
    """Dolma: C4's no-terminal-punctuation rule tags more characters than all Gopher rules."""
    no_punct = find(rows, "c4", c4.C4_LINE_NO_TERMINAL_PUNCTUATION)
    any_gopher = find(rows, "gopher", ANY)
    text = ("Dolma: C4's no-terminal-punctuation rule removes more characters than the Gopher rules "
            "together on web text (22.73 % vs 15.23 %). Criterion: on the pooled web slices, ours "
            "% of characters in lines C4 drops for lacking terminal punctuation (alone) > % of "
            "characters in documents any Gopher rule removes.")
    if no_punct is None or any_gopher is None:
        return Claim(text, None, "the c4 or gopher variant, or the web slices, are missing")
    a, b = no_punct["ours_alone_chars_pct"], any_gopher["ours_alone_chars_pct"]
    if a is None or b is None:
        return Claim(text, None, "no characters in the web slices")
    return Claim(text, a > b, f"C4 no-punctuation lines {a:.2f} % vs Gopher rules {b:.2f} % of characters")


def build(results: dict[str, dict[str, Any]], ctx: Context) -> Table:
    s: Settings = ctx.settings
    rows = [row for name in s.rule_sets if name in results
            for row in rows_of(results[name], s.web_slices)]
    return Table(name=SPEC.name, title=SPEC.title, columns=COLUMNS, rows=rows,
                 claims=[short_line_claim(rows), no_punctuation_claim(rows)],
                 notes=notes_of(results, ctx))


def notes_of(results: dict[str, dict[str, Any]], ctx: Context) -> list[str]:
    clean, s = ctx.params.clean, ctx.settings
    any_result: dict[str, Any] = next(iter(results.values()), {"slices": {}})
    docs = sum(v["docs"] for v in any_result["slices"].values())
    quarantined = {f"{name}/{slice_name}": c["quarantined"] for name, r in results.items()
                   for slice_name, c in r["slices"].items() if c["quarantined"]}
    mismatches = {n: r["first_fire_mismatches"] for n, r in results.items()}
    thresholds = clean.gopher_repetition.top_n_grams
    top = "/".join(f"{thresholds[n]:g}" for n in sorted(thresholds, key=int))
    notes = [
        f"Scale {ctx.scale}: {docs} documents, each rule set applied alone to the raw corpus after "
        f"{clean.normalization} normalization, with params.clean's thresholds.",
        "Columns: 'alone' counts every document a rule removes on its own (FineWeb's and Dolma's "
        "counting; a document counts once in 'any'); 'first' attributes each removed document to "
        "the first check that fails, as the clean stage records it, so the first-fire rows of a "
        "set add up to its 'any' row. Shares are of the slice's characters/tokens "
        "(normalized text, the table's BPE tokenizer).",
        f"Top-n-gram thresholds: ours {top} (Gopher Table A1); FineWeb's Table 2 row used "
        f"{FINEWEB_TOP_NGRAM_THRESHOLDS}, so its 56.71 % is not comparable one to one.",
        "C4's line filters edit kept documents: each filter's row counts the characters of the "
        "lines it drops (alone: in every document, a line going to the first filter that drops "
        "it); 'line_edits' first = what the edits cut from documents C4 keeps (Outcome.chars_edited), "
        "alone = all dropped lines. Dolma's 22.73 % is the share of characters in lines without "
        "terminal punctuation.",
        f"Slice '{WEB}' pools {', '.join(s.web_slices)}; paper numbers (web crawls) are shown on web "
        "rows only. The pipeline applies these sets to prose slices; github rows are for reference.",
        f"Check of the library: the first reason of each document's all-reasons list equals the "
        f"Cleaner's reason for every document (mismatches: {mismatches}).",
    ]
    if quarantined:
        notes.append(f"Quarantined (a rule raised; left out of every count): {quarantined}.")
    return notes


SPEC = TableSpec(
    name="rule-removal",
    title="Characters and tokens removed by each Gopher, C4 and FineWeb rule, per slice",
    paper="Penedo et al. 2024, The FineWeb Datasets (App. E.4, Table 2); Soldaini et al. 2024, "
          "Dolma (rule-tagging rates)",
    differences=[
        "Gopher quality rules split words on whitespace, not with spaCy/NLTK (punctuation is not "
        "a word); Gopher n-gram rules use the RedPajama-V2 signals (every occurrence of a repeated "
        "n-gram counts, over the characters of all words), datatrove counts repeats after the "
        "first over the text length.",
        "Top-n-gram thresholds are Gopher's 0.2/0.18/0.16, FineWeb's ablation used 0.13/0.087/0.079.",
        "C4 counts sentences with RedPajama-V2's pattern instead of NLTK punkt; FineWeb's "
        "newline-per-word rule counts WordPunct tokens instead of NLTK word_tokenize.",
        "FineWeb measured on a CommonCrawl dump and Dolma on its web subset at billions of tokens; "
        "the sample corpus has a few hundred web documents (common_crawl + c4 stand-ins).",
        "Dolma tags spans and documents; we remove whole documents for Gopher rules and count "
        "dropped lines for C4's line rules, which matches Dolma's character counting.",
    ],
    settings=Settings,
    variants=variants,
    run_variant=run_variant,
    build=build,
    needs=(CORPUS, TOKENIZER),
)
