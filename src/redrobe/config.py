"""Typed, validated view of params.yaml.

Each top-level section of params.yaml maps to a frozen dataclass below; nested
mappings map to nested dataclasses. :func:`load_params` reads the file and reports
*every* problem at once (unknown keys, wrong types, out-of-range values), each with
its params.yaml key path, e.g. ``pretrain.distributed.zero_stage: must be in 0..3``.

A field's range is declared on the field (``workers: int = bounded(at_least(1),
default=1)``, see "bounds" below) and checked by one generic validator; only rules
that relate several fields are code, in a section's ``cross_checks``.

Run ``redrobe params-check`` to validate a params file without running a stage.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from redrobe.expressions import parse_signal_expression


class ConfigError(ValueError):
    """Invalid params: the message lists every problem with its key path."""

    def __init__(self, problems: list[str], source: str = "params.yaml") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source} ({len(problems)} problem(s)):\n{lines}")


# ----------------------------------------------------------------------------- bounds
#
# A field's bounds are declared once, on the field (``bounded(at_least(1), default=8)``),
# and checked the same way for every section by :func:`bound_problems`. Rules that relate
# two fields ("min_lr: must be in [0, lr]") are explicit code in a section's
# ``cross_checks``. :class:`Validated` runs both: bounds in field order, then cross checks.

_BOUNDS = "bounds"   # dataclasses.field metadata key of a field's Bound tuple
_INFINITE = "infinite"   # metadata key: the field's floats may be .inf/-.inf (never .nan)


@dataclass(frozen=True)
class Bound:
    """A condition on one field's value, and the message reported when it does not hold.

    ``per_entry``: the field is a mapping whose values are checked one by one, each
    reported under ``<field>.<key>``."""

    ok: Callable[[Any], bool]
    message: str
    per_entry: bool = False

    def problems(self, name: str, value: Any) -> list[str]:
        if self.per_entry:
            return [f"{name}.{key}: {self.message}" for key, v in value.items() if not self.ok(v)]
        return [] if self.ok(value) else [f"{name}: {self.message}"]


def at_least(low: float, note: str = "") -> Bound:
    """``value >= low``; ``note`` is appended to the message, e.g. " (0: all)"."""
    return Bound(lambda v: v >= low, f"must be >= {low}{note}")


def in_range(low: float, high: float, ends: str = "[]") -> Bound:
    """``low .. high``, each end closed (``[``, ``]``) or open (``(``, ``)``); the message
    writes the interval that way, e.g. ``must be in [0, 1)``."""
    above = operator.ge if ends[0] == "[" else operator.gt
    below = operator.le if ends[1] == "]" else operator.lt
    return Bound(lambda v: above(v, low) and below(v, high),
                 f"must be in {ends[0]}{low}, {high}{ends[1]}")


def not_empty(message: str) -> Bound:
    """A non-empty list, or a string that is not blank."""
    return Bound(lambda v: bool(v.strip() if isinstance(v, str) else v), message)


def every_item(bound: Bound) -> Bound:
    """Every item of a list satisfies ``bound``; one problem for the field, not per item."""
    return Bound(lambda v: all(bound.ok(item) for item in v), bound.message)


def each_value(bound: Bound) -> Bound:
    """Every value of a mapping satisfies ``bound``; one problem per offending key."""
    return dataclasses.replace(bound, per_entry=True)


POSITIVE = Bound(lambda v: v > 0, "must be > 0")
PROBABILITY = in_range(0, 1)
SEED = Bound(lambda v: 0 <= v < 2**32, "must be in [0, 2**32)")   # numpy RandomState's seed range


def _is_slice_name(name: str) -> bool:
    return name[:1].isalnum() and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")


SLICE_NAME = Bound(_is_slice_name, "must be a slice name (lower-case letters, digits, _ -)")


def bounded(*bounds: Bound, default: Any = dataclasses.MISSING,
            factory: Callable[[], Any] | None = None, infinite: bool = False) -> Any:
    """A dataclass field (``default`` value or ``factory``) whose value must satisfy ``bounds``.

    Floats in params must be finite unless ``infinite`` (then ``.inf``/``-.inf`` are
    allowed, e.g. "no upper bound"); ``.nan`` is never a valid setting."""
    metadata: dict[str, Any] = {_BOUNDS: bounds, _INFINITE: infinite}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def bound_problems(section: Any) -> list[str]:
    """Every declared bound of ``section``'s fields that its values break, in field order."""
    return [problem for f in dataclasses.fields(section)
            for bound in _declared_bounds(type(section), f.name)
            for problem in bound.problems(f.name, getattr(section, f.name))]


def _declared_bounds(cls: type, name: str) -> tuple[Bound, ...]:
    # a subclass that redeclares a field only to change its default (Lora.steps, of
    # OptimizerParams) keeps the bounds of the class that declared them
    for klass in cls.__mro__:
        declared = getattr(klass, "__dataclass_fields__", {}).get(name)
        if declared is not None and _BOUNDS in declared.metadata:
            return declared.metadata[_BOUNDS]
    return ()


class Validated:
    """Base of the params dataclasses: :meth:`validate` reports each broken field bound,
    then each problem of :meth:`cross_checks`, as ``<key>: <message>`` (the loader
    prefixes the section's key path)."""

    def validate(self) -> list[str]:
        return bound_problems(self) + self.cross_checks()

    def cross_checks(self) -> list[str]:
        """Rules relating several fields (explicit code, not field bounds); none by default."""
        return []


# ----------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class Shared(Validated):
    seed: int = 1234
    # documents held in memory at once by a data stage
    batch_docs: int = bounded(at_least(1), default=256)
    # worker processes (tasks in flight) for per-shard data stages
    workers: int = bounded(at_least(1), default=1)
    executor: Literal["local", "ray"] = "local"  # where shard maps run (redrobe.parallel)
    ray_address: str = ""          # executor ray: "" starts a local Ray; or auto / ray://host:10001
    # held-out validation share per slice (hash of id) ...
    val_fraction: float = bounded(in_range(0, 0.5, "()"), default=0.05)
    # ... but at least this many validation docs per slice
    min_val_docs: int = bounded(at_least(0), default=1)
    slices: list[str] = bounded(not_empty("must name at least one slice"),
                                factory=lambda: ["books", "wikipedia", "c4", "common_crawl", "github"])


@dataclass(frozen=True)
class IngestSample(Validated):
    """Kept documents per slice from the pinned sample distributions
    (docs/references.md, "Real text available offline")."""
    books: int = bounded(at_least(0), default=60)
    wikipedia: int = bounded(at_least(0), default=120)
    c4: int = bounded(at_least(0), default=300)
    common_crawl: int = bounded(at_least(0), default=200)
    github: int = bounded(at_least(0), default=300)
    # documents of the labelled multilingual text (redrobe.sources.multilingual) added to
    # the wikipedia slice, where RedPajama-1T has its non-English text; 0: none
    multilingual: int = bounded(at_least(0), default=100)


@dataclass(frozen=True)
class IngestRouting(Validated):
    """One routed slice (``ingest.languages.<slice>``): its documents go to per-language
    partitions ``<slice>/<language>``; a language not in ``keep``, or identified with a
    probability below ``min_score``, is removed with a named reason."""
    keep: list[str] = bounded(not_empty("must list at least one language code"),
                              factory=list)
    # the identifier's probability a document needs (a source's own label counts as 1.0)
    min_score: float = bounded(PROBABILITY, default=0.0)

    def cross_checks(self) -> list[str]:
        problems = [f"keep[{i}]: must be an ISO 639 language code (2 or 3 lower-case letters, "
                    f"e.g. de, zh, grc), got {code!r}"
                    for i, code in enumerate(self.keep) if not _is_language_code(code)]
        return problems + _check(len(set(self.keep)) == len(self.keep), "keep",
                                 "lists a language twice")


@dataclass(frozen=True)
class IngestInput(Validated):
    """One ``ingest.inputs`` entry (files mode): see redrobe.sources.inputs for the formats."""
    # local path/glob or fsspec URL (s3://, memory://, ...)
    path: str = bounded(not_empty("must name a file, glob or URL"), default="")
    format: Literal["auto", "redpajama", "warc", "wet", "mediawiki", "latex", "stackexchange",
                    "code", "gutenberg"] = "auto"   # auto: by file name
    # "" -> the format's RedPajama slice
    slice: str = bounded(Bound(lambda s: s == "" or _is_slice_name(s),
                               SLICE_NAME.message + " or empty"), default="")
    site: str = ""                       # stackexchange: site domain for question URLs


def _default_routing() -> dict[str, IngestRouting]:
    """The wikipedia slice by language: RedPajama-1T's Wikipedia languages whose sample text
    is long enough for the slice's rules, and Arabic, Greek, Hebrew, Hindi and Chinese for
    their scripts; cc_net's language-score threshold (docs/languages.md)."""
    keep = ["en", "bg", "cs", "es", "pl", "ru", "sl", "uk", "ar", "el", "he", "hi", "zh"]
    return {"wikipedia": IngestRouting(keep=keep, min_score=0.5)}


@dataclass(frozen=True)
class Ingest(Validated):
    mode: Literal["sample", "files"] = "sample"
    paths: list[str] = field(default_factory=list)  # globs of RedPajama JSONL/Parquet shards
    inputs: list[IngestInput] = field(default_factory=list)  # any format (files mode)
    # slice for records without red_pajama_subset
    default_slice: str = bounded(SLICE_NAME, default="common_crawl")
    shard_docs: int = bounded(at_least(1), default=1000)        # documents per raw shard
    # longer documents are removed (reason: too_long)
    max_doc_chars: int = bounded(at_least(1), default=2_000_000)
    # decompressed bytes one input may yield; a larger one (a decompression bomb) is
    # quarantined at that point, naming the file
    max_input_bytes: int = bounded(at_least(1), default=64 * 2**30)
    sample: IngestSample = field(default_factory=IngestSample)
    # slice -> its routing by language (docs/languages.md); slices not listed are not routed
    languages: dict[str, IngestRouting] = field(default_factory=_default_routing)
    # identifier for routed documents without a source label (redrobe.text.langid.BACKENDS;
    # fasttext: lid.176, the model family of RedPajama's own language field)
    language_id: Literal["py3langid", "fasttext", "cld3", "lingua"] = "fasttext"

    def cross_checks(self) -> list[str]:
        inputs = [f"inputs[{i}].{p}" for i, item in enumerate(self.inputs)
                  for p in item.validate()]  # list items are not walked by _validate_tree
        routed = [f"languages.{name}.{p}" for name, routing in self.languages.items()
                  for p in routing.validate()]  # mapping values are not walked either
        routed += [f"languages.{name}: {SLICE_NAME.message}"
                   for name in self.languages if not _is_slice_name(name)]
        return (_check(self.mode == "sample" or bool(self.paths or self.inputs), "paths",
                       "must list at least one file or glob (or ingest.inputs) when mode is 'files'")
                + inputs + routed)


@dataclass(frozen=True)
class GopherQualityParams(Validated):
    """Gopher quality rules (Rae et al. 2021, App. A; datatrove defaults)."""
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = bounded(PROBABILITY, default=0.1)
    max_bullet_lines_ratio: float = bounded(PROBABILITY, default=0.9)
    max_ellipsis_lines_ratio: float = bounded(PROBABILITY, default=0.3)
    # keep if >= 80 % of words contain a letter
    max_non_alpha_words_ratio: float = bounded(PROBABILITY, default=0.8)
    min_stop_words: int = bounded(at_least(0), default=2)

    def cross_checks(self) -> list[str]:
        return (_check(0 <= self.min_words <= self.max_words, "min_words",
                       "must be >= 0 and <= max_words")
                + _check(0 <= self.min_mean_word_length <= self.max_mean_word_length,
                         "min_mean_word_length", "must be >= 0 and <= max_mean_word_length"))


@dataclass(frozen=True)
class GopherRepetitionParams(Validated):
    """Gopher repetition rules (Rae et al. 2021, Table A1)."""
    dup_line_frac: float = bounded(PROBABILITY, default=0.3)
    dup_para_frac: float = bounded(PROBABILITY, default=0.3)
    dup_line_char_frac: float = bounded(PROBABILITY, default=0.2)
    dup_para_char_frac: float = bounded(PROBABILITY, default=0.2)
    # n-gram size -> the largest share of characters it may cover
    top_n_grams: dict[str, float] = bounded(each_value(PROBABILITY), factory=lambda: {
        "2": 0.20, "3": 0.18, "4": 0.16})
    dup_n_grams: dict[str, float] = bounded(each_value(PROBABILITY), factory=lambda: {
        "5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10})

    def cross_checks(self) -> list[str]:
        # the keys name n-gram sizes: params.yaml mapping keys are strings
        return [f"{name}.{n}: key must be an n-gram size (an integer >= 1)"
                for name in ("top_n_grams", "dup_n_grams") for n in getattr(self, name)
                if not (n.isdigit() and int(n) >= 1)]


@dataclass(frozen=True)
class C4Params(Validated):
    """C4 rules (Raffel et al. 2020, §2.2; datatrove C4QualityFilter defaults)."""
    min_words_per_line: int = bounded(at_least(0), default=3)
    min_sentences: int = bounded(at_least(0), default=5)
    max_word_length: int = bounded(at_least(1), default=1000)
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    filter_javascript_lines: bool = True
    filter_policy_lines: bool = True


@dataclass(frozen=True)
class CodeParams(Validated):
    """RedPajama-1T github rules (docs/references.md, "RedPajama-1T slices")."""
    max_line_length: int = bounded(at_least(1), default=1000)
    max_mean_line_length: float = bounded(POSITIVE, default=100.0)
    min_alnum_fraction: float = bounded(PROBABILITY, default=0.25)
    min_alpha_per_token: float = bounded(at_least(0), default=1.5)


@dataclass(frozen=True)
class FineWebParams(Validated):
    """FineWeb quality rules (Penedo et al. 2024, App. E.4 Table 2; datatrove
    FineWebQualityFilter defaults). A document is removed when its share of lines ending
    in punctuation is <= line_punct_thr, its share of lines <= short_line_length chars is
    >= short_line_thr, its duplicated-line chars are >= char_duplicates_ratio of its
    chars, or its newlines per word exceed new_line_ratio."""
    line_punct_thr: float = bounded(PROBABILITY, default=0.12)
    line_punct_exclude_zero: bool = False   # datatrove: keep docs with no punctuated line at all
    short_line_length: int = bounded(at_least(0), default=30)
    short_line_thr: float = bounded(PROBABILITY, default=0.67)
    char_duplicates_ratio: float = bounded(PROBABILITY, default=0.01)
    new_line_ratio: float = bounded(at_least(0), default=0.3)


#: prefix of a ``clean.rule_sets`` / preset entry naming an expression: ``expr:<name>``
EXPRESSION_PREFIX = "expr:"

# The RedPajama-V2 dataset card's example filter (docs/references.md, "RedPajama-V2 quality
# signals"), one expression per rule so each removal is counted under its own reason. The
# card's bullet rule divides by ccnet_nlines; mean() over the per-line signal is the same ratio.
RPV2_EXAMPLE_EXPRESSIONS = {
    "rpv2_word_count": "rps_doc_word_count < 50 or rps_doc_word_count > 100000",
    "rpv2_mean_word_length": "rps_doc_mean_word_length < 3 or rps_doc_mean_word_length > 10",
    "rpv2_symbol_word_ratio": "rps_doc_symbol_to_word_ratio > 0.1",
    "rpv2_bullet_lines": "mean(rps_lines_start_with_bulletpoint) > 0.9",
    "rpv2_top_2gram": "rps_doc_frac_chars_top_2gram > 0.2",
}


#: the rule sets whose thresholds ``clean.language_thresholds`` may set per language
LANGUAGE_SECTIONS = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
# Scripts written without spaces are cut into one word per character (redrobe.text.languages):
# a mean word length near 1 is normal there. FineWeb-2's Chinese config (cmn_Hani) uses 1..5.
_CHARACTER_WORDS = {"gopher_quality": {"min_mean_word_length": 1.0, "max_mean_word_length": 5.0}}


def _default_language_thresholds() -> dict[str, dict[str, dict[str, Any]]]:
    return {code: {s: dict(v) for s, v in _CHARACTER_WORDS.items()}
            for code in ("zh", "yue", "wuu", "ja", "th", "lo", "km", "my")}


def _is_language_code(code: str) -> bool:
    return 2 <= len(code) <= 3 and code.isascii() and code.isalpha() and code.islower()


@dataclass(frozen=True)
class Clean(Validated):
    """Normalization, rule sets per slice, presets, signal expressions, thresholds.

    An entry of ``rule_sets.<slice>`` (or of a preset) resolves in this order:
    ``expr:<name>`` is the expression ``expressions.<name>``; a preset name expands to
    its list (presets hold rule-set names and ``expr:`` entries, not other presets); any
    other name is a rule set (RULE_SET_NAMES). Presets are looked up before rule sets,
    so redefining the preset ``c4`` changes every slice that lists ``c4``.

    ``language_rules``: the rule sets and signals judge each document with its
    identified language's words, stop words and sentence ends (redrobe.text.languages);
    ``language_thresholds.<code>.<rule set>``: thresholds for that language, deep-merged
    over the rule set's section (:meth:`for_language`).
    """
    normalization: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFC"
    rule_sets: dict[str, list[str]] = field(default_factory=lambda: {
        "common_crawl": ["gopher_quality", "gopher_repetition", "c4"],
        "c4": ["gopher_quality", "gopher_repetition", "c4"],
        "wikipedia": ["gopher_quality", "gopher_repetition", "c4"],
        "arxiv": ["gopher_repetition"],
        "stackexchange": ["gopher_quality", "gopher_repetition"],
        "books": ["gopher_repetition"],
        "github": ["code"],
    })
    presets: dict[str, list[str]] = field(default_factory=lambda: {
        "gopher": ["gopher_quality", "gopher_repetition"],
        "c4": ["c4"],
        "fineweb": ["fineweb"],
        "redpajama_v2_example": [EXPRESSION_PREFIX + n for n in RPV2_EXAMPLE_EXPRESSIONS],
    })
    # name -> condition over the signals (the language: redrobe.expressions); true removes
    # the document (reason expr_<name>)
    expressions: dict[str, str] = field(default_factory=lambda: dict(RPV2_EXAMPLE_EXPRESSIONS))
    store_signals: bool = True     # quality_signals + language columns on kept/removed docs
    gopher_quality: GopherQualityParams = field(default_factory=GopherQualityParams)
    gopher_repetition: GopherRepetitionParams = field(default_factory=GopherRepetitionParams)
    c4: C4Params = field(default_factory=C4Params)
    code: CodeParams = field(default_factory=CodeParams)
    fineweb: FineWebParams = field(default_factory=FineWebParams)
    language_rules: bool = True
    # ISO 639 code -> rule set (LANGUAGE_SECTIONS) -> the keys of its section to change
    language_thresholds: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=_default_language_thresholds)
    # names of the rule sets (redrobe.text.rules.RULE_SETS; a test keeps them equal)
    RULE_SET_NAMES: typing.ClassVar[tuple[str, ...]] = ("gopher_quality", "gopher_repetition", "c4",
                                                        "code", "fineweb")

    def resolve(self, entries: list[str]) -> list[str]:
        """Rule-set names and ``expr:<name>`` entries, presets expanded, in order.

        Raises ValueError naming every entry that resolves to nothing or repeats."""
        resolved: list[str] = []
        problems = []
        for entry in entries:
            expanded = (self.presets.get(entry, [entry]) if not entry.startswith(EXPRESSION_PREFIX)
                        else [entry])
            for name in expanded:
                problems += self._entry_problems(name)
                if name in resolved:
                    problems.append(f"{name!r} is listed twice (after expanding presets)")
                resolved.append(name)
        if problems:
            raise ValueError("; ".join(problems))
        return resolved

    def for_language(self, code: str) -> Clean:
        """These params with ``language_thresholds.<code>`` merged into the rule sets'
        sections (deep: ``top_n_grams: {'2': 0.3}`` changes one n-gram size); ``self``
        when the language has no overrides. Valid params give valid sections."""
        problems: list[str] = []
        sections = self._language_sections(code, problems)
        if problems:
            raise ConfigError(problems, f"clean.language_thresholds.{code}")
        return dataclasses.replace(self, **sections) if sections else self

    def _language_sections(self, code: str, problems: list[str]) -> dict[str, Any]:
        """The rule sets' sections with ``code``'s overrides merged in; problems (a bad
        key or value) are appended with their key path under ``language_thresholds``."""
        sections = {}
        for name, values in self.language_thresholds.get(code, {}).items():
            path = f"language_thresholds.{code}.{name}"
            if name not in LANGUAGE_SECTIONS:
                problems.append(f"{path}: not a rule set with thresholds "
                                f"(one of: {', '.join(LANGUAGE_SECTIONS)})")
                continue
            base, known = getattr(self, name), len(problems)
            merged = merge_profile(as_dict(base), values) if isinstance(values, dict) else values
            section = _build(type(base), merged, f"{path}.", problems)
            if len(problems) == known:   # values are checked once their types are right
                problems += [f"{path}.{p}" for p in section.validate()]
            sections[name] = section
        return sections

    def _entry_problems(self, name: str) -> list[str]:
        if name.startswith(EXPRESSION_PREFIX):
            expr = name[len(EXPRESSION_PREFIX):]
            return [] if expr in self.expressions else [
                f"{name!r}: no expression {expr!r} under clean.expressions"]
        if name in self.RULE_SET_NAMES:
            return []
        return [f"unknown rule set or preset {name!r} (rule sets: {sorted(self.RULE_SET_NAMES)}; "
                f"presets: {sorted(self.presets)}; or expr:<name>)"]

    def cross_checks(self) -> list[str]:
        problems = []
        for key, entries in self.presets.items():  # entries are taken literally: no nesting
            problems += [f"presets.{key}: {p}" for e in entries for p in self._entry_problems(e)]
            problems += _check(len(set(entries)) == len(entries), f"presets.{key}",
                               "lists an entry twice")
        for key, entries in self.rule_sets.items():
            try:
                self.resolve(entries)
            except ValueError as exc:
                problems.append(f"rule_sets.{key}: {exc}")
        for name, source in self.expressions.items():
            problems += _check(name.isidentifier(), f"expressions.{name}",
                               "name must be an identifier (letters, digits, _)")
            try:
                parse_signal_expression(source)
            except ValueError as exc:
                problems.append(f"expressions.{name}: {exc}")
        for code in self.language_thresholds:
            problems += _check(_is_language_code(code), f"language_thresholds.{code}", "must be an "
                               "ISO 639 language code (2 or 3 lower-case letters, e.g. de, zh, yue)")
            self._language_sections(code, problems)
        return problems


@dataclass(frozen=True)
class MinHashParams(Validated):
    """RedPajama-V2 MinHash signatures (docs/references.md, "Deduplication parameters"),
    banded 16 x 8 (a pair at Jaccard 0.85 is a candidate with probability 0.994) and
    verified at Jaccard 0.8."""
    enabled: bool = True
    ngram: int = bounded(at_least(1), default=13)
    num_perm: int = bounded(at_least(1), default=128)
    bands: int = bounded(at_least(1), default=16)
    rows: int = bounded(at_least(1), default=8)
    seed: int = bounded(SEED, default=42)
    verify: bool = True            # link an LSH candidate pair only if its exact Jaccard >= threshold
    threshold: float = bounded(in_range(0, 1, "(]"), default=0.8)   # SlimPajama's Jaccard threshold

    def cross_checks(self) -> list[str]:
        return _check(self.bands * self.rows <= self.num_perm, "bands",
                      "bands * rows must be <= num_perm")


@dataclass(frozen=True)
class DedupSemantic(Validated):
    """SemDeDup with all-MiniLM-L6-v2: k-means clusters, cosine pairs inside.

    Recipe: docs/references.md, "Deduplication parameters".

    ``slices`` are the slices whose documents are embedded (prose by default: on code the
    shared license headers dominate what MiniLM reads, see benchmarks/semantic_choice.py);
    ``text_view`` picks per slice what is embedded (``head``: the first ``max_words``
    words; ``strip_header``: leading comment/docstring/license blocks removed first).
    """
    enabled: bool = True           # costs a model load + CPU encoding (docs/performance.md)
    # cosine; NeMo Curator / SemDeDup near-duplicate regime
    threshold: float = bounded(in_range(0, 1, "(]"), default=0.9)
    slices: list[str] = field(default_factory=lambda: ["books", "wikipedia", "c4", "common_crawl",
                                                       "arxiv", "stackexchange"])
    text_view: dict[str, Literal["head", "strip_header"]] = field(
        default_factory=lambda: {"github": "strip_header"})   # slices not listed: head
    # MiniLM reads at most 256 word pieces anyway
    max_words: int = bounded(at_least(1), default=256)
    batch_size: int = bounded(at_least(1), default=32)           # encoder batch
    # torch intra-op threads for encoding; 0 = torch default
    threads: int = bounded(at_least(0), default=0)
    # where the encoder runs: auto = a CUDA GPU when torch sees one. GPU and CPU embeddings
    # differ in the last bits, so near-threshold pairs can differ: cpu keeps runs identical
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # k-means k = ceil(embedded docs / docs_per_cluster)
    docs_per_cluster: int = bounded(at_least(1), default=2000)
    kmeans_iters: int = bounded(at_least(1), default=20)
    # k-means trains on this many embeddings (all when fewer) ...
    kmeans_sample: int = bounded(at_least(1), default=20000)
    # ... or on this many per centroid when more (FAISS's minimum: 39)
    kmeans_points_per_cluster: int = bounded(at_least(1), default=39)
    # similarity blocks are block_docs x block_docs
    block_docs: int = bounded(at_least(1), default=1024)
    embedding_dtype: Literal["float16", "float32"] = "float16"   # on-disk embeddings
    seed: int = bounded(SEED, default=42)


@dataclass(frozen=True)
class Dedup(Validated):
    """Exact (normalized-content hash) and MinHash-LSH deduplication (docs/references.md,
    "Deduplication parameters")."""
    exact: bool = True
    cross_slice: bool = True       # duplicates are found across slices, as SlimPajama does
    minhash: MinHashParams = field(default_factory=MinHashParams)
    semantic: DedupSemantic = field(default_factory=DedupSemantic)
    # keys (a digest or a band key, 48 bytes each) per partition of the global steps: a
    # task's memory is bounded by this, whatever the corpus size (redrobe.dedup.plan)
    partition_keys: int = bounded(at_least(1), default=250_000)


@dataclass(frozen=True)
class QualityAudit(Validated):
    """Human audit of kept/removed decisions: sample, then gate on the Wilson bound."""
    # with 0 errors the 95 % Wilson lower bound reaches 0.997 only from n = 1277 reviewed
    # documents on
    sample_size: int = bounded(at_least(1), default=1300)
    per_stratum_min: int = bounded(at_least(0), default=5)
    # characters of text shown to the reviewer
    excerpt_chars: int = bounded(at_least(1), default=1000)
    # audited label accuracy to reach (99.7 %): the project's bar
    target: float = bounded(in_range(0, 1, "()"), default=0.997)


def _is_interval(bounds: list[float]) -> bool:
    return len(bounds) == 2 and bounds[0] <= bounds[1]


@dataclass(frozen=True)
class Quality(Validated):
    """Great Expectations suites over the ingest, clean and dedup outputs; the audit."""
    min_chars: int = 1
    max_chars: int = 2_000_000
    min_docs_per_slice: int = 1
    max_removal_rate: dict[str, float] = bounded(each_value(PROBABILITY),
                                                 factory=lambda: {"clean": 0.9, "dedup": 0.6})
    #: [low, high] of document-level RedPajama-V2 signals stored by clean (.inf: no bound)
    signal_ranges: dict[str, list[float]] = bounded(
        each_value(Bound(_is_interval, "must be [low, high] with low <= high")), infinite=True,
        factory=lambda: {
            "rps_doc_word_count": [0.0, float("inf")],
            "rps_doc_mean_word_length": [0.0, float("inf")],
            "rps_doc_frac_unique_words": [0.0, 1.0],
            "rps_doc_frac_no_alph_words": [0.0, 1.0],
            "redrobe_lang_score": [0.0, 1.0]})
    #: stage columns a shard may carry beside id, text, source, meta (others fail the schema)
    extra_columns: list[str] = field(default_factory=lambda: ["quality_signals", "language",
                                                               "language_score"])
    audit: QualityAudit = field(default_factory=QualityAudit)

    def cross_checks(self) -> list[str]:
        return _check(self.min_chars <= self.max_chars, "min_chars", "must be <= max_chars")


@dataclass(frozen=True)
class Tokenize(Validated):
    # 260 = 4 special tokens + the 256 byte symbols every byte-level BPE starts from
    vocab_size: int = bounded(in_range(260, 65_535), default=8192)
    min_frequency: int = bounded(at_least(1), default=2)
    # cap on training-split documents fed to the trainer
    max_train_docs: int = bounded(at_least(1), default=100_000)


@dataclass(frozen=True)
class Bucket(Validated):
    """Difficulty score and quantile buckets (redrobe.curriculum.difficulty)."""
    # bucket files are named bucket-NN: two digits keep them in curriculum order
    num_buckets: int = bounded(in_range(1, 99), default=4)
    score: Literal["unigram_surprisal", "length", "rare_word_rate", "compression_ratio",
                   "reference_ppl"] = "unigram_surprisal"
    # rare_word_rate: the tail token mass called rare
    rare_mass: float = bounded(in_range(0, 1, "()"), default=0.1)
    # reference_ppl: bigram weight vs the unigram back-off
    reference_lambda: float = bounded(in_range(0, 1, "[)"), default=0.9)


@dataclass(frozen=True)
class Curriculum(Validated):
    """Sampling schedule over the buckets (redrobe.train.data): stepwise phases easy ->
    hard, smooth competence-based pacing (Platanios et al. 2019), or shuffled."""
    schedule: Literal["stepwise", "smooth", "shuffled"] = "stepwise"
    # share of each batch's rows from easier buckets
    replay: float = bounded(in_range(0, 1, "[)"), default=0.1)
    # smooth: c0, the easiest share available at step 1
    competence_start: float = bounded(in_range(0, 1, "(]"), default=0.1)
    # smooth: progress at which all data is available
    pacing_end: float = bounded(in_range(0, 1, "(]"), default=0.8)


@dataclass(frozen=True)
class Model(Validated):
    """LlamaForCausalLM shape. The default trains in a few minutes on 2 CPU cores."""
    hidden_size: int = bounded(at_least(1), default=256)
    num_layers: int = bounded(at_least(1), default=4)
    num_heads: int = bounded(at_least(1), default=4)
    num_kv_heads: int = bounded(at_least(1), default=4)
    intermediate_size: int = bounded(at_least(1), default=688)
    max_seq_len: int = bounded(at_least(2), default=256)
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    # Architecture variants (redrobe.model.variants): one MLP module shared by every
    # layer ("all") or by consecutive groups of ffn_share_group layers ("groups").
    ffn_sharing: Literal["none", "all", "groups"] = "none"
    ffn_share_group: int = bounded(at_least(1), default=2)
    # "sliding_window": token t attends only to positions t-window+1 .. t.
    attention: Literal["full", "sliding_window"] = "full"
    window: int = bounded(at_least(1), default=64)

    def cross_checks(self) -> list[str]:
        if bound_problems(self):  # the divisibility checks below need positive sizes
            return []
        return (_check(self.hidden_size % self.num_heads == 0, "hidden_size",
                       "must be divisible by num_heads")
                + _check(self.num_heads % self.num_kv_heads == 0, "num_kv_heads",
                         "must divide num_heads"))


@dataclass(frozen=True)
class Distributed(Validated):
    """Multi-process training (redrobe.train.deepspeed); launch with deepspeed/torchrun."""
    backend: Literal["none", "deepspeed"] = "none"
    # ZeRO (Rajbhandari et al. 2020): 1 optimizer, 2 +grads, 3 +params
    zero_stage: int = bounded(Bound(lambda v: 0 <= v <= 3, "must be in 0..3"), default=2)
    offload_optimizer: bool = False   # ZeRO-Offload: optimizer state and step on the CPU
    offload_params: bool = False      # ZeRO-3 only: parameters live on the CPU between uses

    def cross_checks(self) -> list[str]:
        return _check(not self.offload_params or self.zero_stage == 3, "offload_params",
                      "needs zero_stage 3")


@dataclass(frozen=True)
class OptimizerParams(Validated):
    """AdamW and its learning-rate schedule (linear warmup to ``lr``, cosine decay to
    ``min_lr`` at the last of ``steps``): the settings shared by every section that trains,
    pretrain, lora, evaluate.math and the tables' ``lm`` (redrobe.tables.lm.LMSettings).

    A section inherits these fields, so their params.yaml keys stay in the section
    (``pretrain.lr``, ``lora.min_lr``), and redeclares the ones whose default differs;
    a redeclared field keeps the bounds declared here. The defaults here are pretrain's.
    ``TrainConfig.from_params`` (redrobe.train.loop) builds the training config from it."""
    steps: int = bounded(at_least(1), default=200)
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1     # on matrices only (redrobe.train.loop.configure_optimizer)

    def cross_checks(self) -> list[str]:
        return (_check(self.warmup_steps < self.steps, "warmup_steps", "must be < steps")
                + _check(0.0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]"))

    def optimizer_settings(self) -> dict[str, Any]:
        """The TrainConfig keyword arguments this section sets: the fields above, plus
        grad_clip, beta1 and beta2 where the section has them (TrainConfig's defaults, clip
        1.0 and betas 0.9/0.95, otherwise)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name in _OPTIMIZER_FIELDS}


#: the fields OptimizerParams.optimizer_settings passes on (the optional ones are not in
#: every section: adding e.g. evaluate.math.grad_clip would add a params.yaml key)
_OPTIMIZER_FIELDS = frozenset({f.name for f in dataclasses.fields(OptimizerParams)}
                              | {"grad_clip", "beta1", "beta2"})


@dataclass(frozen=True)
class Pretrain(OptimizerParams):
    # steps, lr, min_lr, warmup_steps, weight_decay: OptimizerParams (its defaults)
    batch_size: int = bounded(at_least(1), default=8)
    grad_accum: int = bounded(at_least(1), default=1)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int = bounded(at_least(0), default=50)
    # per validation slice and evaluation (a forward pass each)
    eval_batches: int = bounded(at_least(1), default=2)
    threads: int = bounded(at_least(0), default=0)   # 0: all cores
    # save every N steps and after the last; 0: no checkpoints
    checkpoint_every: int = bounded(at_least(0), default=50)
    keep_checkpoints: int = bounded(at_least(1), default=3)   # newest checkpoints kept per run
    resume: Literal["auto", "never"] = "auto"   # auto: newest valid checkpoint with these params
    gradient_checkpointing: bool = False        # recompute activations in backward (less memory)
    compile: Literal["auto", True, False] = "auto"   # auto: torch.compile on CUDA only
    fused: bool = True              # fused LLaMA forward + chunked cross-entropy (model.fused)
    keep_memory: bool = True        # CPU: glibc keeps freed memory for the next step (train.host)
    # FLOP/s for MFU; 0: measure once at the start of the run
    peak_flops: float = bounded(at_least(0), default=0.0)
    distributed: Distributed = field(default_factory=Distributed)
    curriculum: Curriculum = field(default_factory=Curriculum)


@dataclass(frozen=True)
class Lora(OptimizerParams):
    slice: str = "books"              # adaptation task: the training split of this slice
    r: int = bounded(at_least(1), default=8)
    alpha: int = 16
    dropout: float = bounded(in_range(0, 1, "[)"), default=0.05)
    target_modules: list[str] = bounded(not_empty("must name a module"),
                                        factory=lambda: ["q_proj", "v_proj"])
    batch_size: int = bounded(at_least(1), default=8)
    # OptimizerParams fields, with lora's defaults
    steps: int = 60
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 6
    weight_decay: float = 0.01        # LoRA paper (Hu et al. 2021) Table 11, GPT-2 E2E
    grad_clip: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # validation loss on the slice's held-out documents
    eval_every: int = bounded(at_least(0), default=20)
    eval_batches: int = bounded(at_least(1), default=4)
    threads: int = bounded(at_least(0), default=0)   # 0: all cores
    # QLoRA (Dettmers et al. 2023): "4bit" loads the frozen base as NF4 through
    # bitsandbytes (the `gpu` extra) and needs a CUDA GPU; "none" trains on the full base.
    quantization: Literal["none", "4bit"] = "none"


@dataclass(frozen=True)
class EvaluateMath(OptimizerParams):
    """Arithmetic word problems (redrobe.evaluate.math_task): LoRA-adapt, then exact match."""
    enabled: bool = True
    train_problems: int = bounded(at_least(1), default=256)
    test_problems: int = bounded(at_least(1), default=32)
    batch_size: int = bounded(at_least(1), default=8)
    # OptimizerParams fields, with the math task's defaults
    steps: int = 40
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 4
    weight_decay: float = 0.01
    r: int = bounded(at_least(1), default=8)
    alpha: int = 16
    dropout: float = bounded(in_range(0, 1, "[)"), default=0.05)
    target_modules: list[str] = bounded(not_empty("must name a module"), factory=lambda: [
        "q_proj", "v_proj", "up_proj", "down_proj"])
    max_new_tokens: int = bounded(at_least(1), default=6)   # an answer is at most 3 digits
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"


@dataclass(frozen=True)
class EvaluateHumanEval(Validated):
    """HumanEval pass@1 (redrobe.evaluate.humaneval), completions run in a sandbox."""
    enabled: bool = True
    # the first N of the 164 problems; 0: all
    max_problems: int = bounded(at_least(0, " (0: all)"), default=20)
    max_new_tokens: int = bounded(at_least(1), default=128)
    timeout_s: float = bounded(POSITIVE, default=10.0)       # wall clock per program
    cpu_s: int = bounded(at_least(1), default=10)            # RLIMIT_CPU per program
    memory_mb: int = bounded(at_least(64), default=1024)     # RLIMIT_AS per program
    max_processes: int = bounded(at_least(1), default=16)    # RLIMIT_NPROC per program
    # true: where no bubblewrap jail can run, run the programs anyway with resource limits
    # only (no file system, network or process isolation; docs/security.md). false: refuse
    allow_unisolated: bool = False


@dataclass(frozen=True)
class EvaluateAttention(Validated):
    """Attention maps (redrobe.evaluate.attention): one PNG per head + the head mean."""
    prompt: str = bounded(not_empty("must not be empty"),
                          default="The cat sat on the mat because it was tired.")
    layer: int = -1                   # counts from 0; negative: from the last layer
    # empty: every head
    heads: list[int] = bounded(every_item(at_least(0)), factory=list)


def _is_model_name(name: str) -> bool:
    # '/' and ':' would break the registry's model URIs (models:/<name>/<version>)
    return bool(name.strip()) and "/" not in name and ":" not in name


@dataclass(frozen=True)
class Evaluate(Validated):
    max_tokens_per_slice: int = bounded(at_least(1), default=32_768)
    batch_size: int = bounded(at_least(1), default=8)
    gen_prompt: str = "The"
    gen_tokens: int = bounded(at_least(1), default=64)
    threads: int = bounded(at_least(0), default=0)   # 0: all cores
    # Model registry (redrobe.evaluate.gates): when the gates pass, the base model is
    # registered as a version of `model_name` with alias `candidate`, and `production`
    # when its mean bits/byte is below the production version's by > min_improvement.
    register: bool = True
    model_name: str = bounded(Bound(_is_model_name, "must be a non-empty registered model name "
                                                    "without '/' or ':'"), default="redrobe-llama")
    # 8.0: a uniform guess over the 256 byte values
    max_bits_per_byte: float = bounded(POSITIVE, default=8.0)
    min_improvement: float = bounded(at_least(0), default=0.0)   # bits/byte
    math: EvaluateMath = field(default_factory=EvaluateMath)
    humaneval: EvaluateHumanEval = field(default_factory=EvaluateHumanEval)
    attention: EvaluateAttention = field(default_factory=EvaluateAttention)


@dataclass(frozen=True)
class Tracking(Validated):
    experiment: str = "redrobe"


@dataclass(frozen=True)
class Params(Validated):
    shared: Shared = field(default_factory=Shared)
    ingest: Ingest = field(default_factory=Ingest)
    clean: Clean = field(default_factory=Clean)
    dedup: Dedup = field(default_factory=Dedup)
    quality: Quality = field(default_factory=Quality)
    tokenize: Tokenize = field(default_factory=Tokenize)
    bucket: Bucket = field(default_factory=Bucket)
    model: Model = field(default_factory=Model)
    pretrain: Pretrain = field(default_factory=Pretrain)
    lora: Lora = field(default_factory=Lora)
    evaluate: Evaluate = field(default_factory=Evaluate)
    tracking: Tracking = field(default_factory=Tracking)
    # per paper table (redrobe.tables): settings checked by the table's own dataclass
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cross_checks(self) -> list[str]:
        return _check(self.lora.slice in self.shared.slices, "lora.slice",
                      f"must be one of shared.slices {self.shared.slices}")


SECTIONS = tuple(f.name for f in dataclasses.fields(Params))


# ----------------------------------------------------------------------------- loading

def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; raise ConfigError listing every problem."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: file not found"], str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: an integer of more than 4300 digits; RecursionError: nesting too deep
        raise ConfigError([f"{path}: not valid YAML: {type(exc).__name__}: {exc}"],
                          str(path)) from exc
    return params_from_dict(raw, source=str(path))


def params_from_dict(raw: Any, source: str = "params.yaml") -> Params:
    problems: list[str] = []
    params = _build(Params, raw, "", problems)
    if not problems:
        problems.extend(_validate_tree(params, ""))
    if problems:
        raise ConfigError(problems, source)
    return params


def build_section(cls: type, raw: Any, path: str) -> Any:
    """Build one settings dataclass from a mapping; raise ConfigError naming each bad key."""
    problems: list[str] = []
    section = _build(cls, raw, path + ".", problems)
    if not problems:
        problems.extend(_validate_tree(section, path + "."))
    if problems:
        raise ConfigError(problems, path)
    return section


def merge_profile(base: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a params profile (nested mapping) over a params mapping."""
    merged = dict(base)
    for key, value in profile.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_profile(merged[key], value)
        else:
            merged[key] = value
    return merged


def as_dict(obj: Any) -> Any:
    """Plain-dict view of a config dataclass (for logging params to MLflow)."""
    return dataclasses.asdict(obj)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become comma-joined strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = ",".join(map(str, v))
        else:
            out[key] = v
    return out


def _check(ok: bool, key: str, message: str) -> list[str]:
    return [] if ok else [f"{key}: {message}"]


def _validate_tree(obj: Any, path: str) -> list[str]:
    problems = []
    if hasattr(obj, "validate"):
        problems += [f"{path}{p}" for p in obj.validate()]
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            problems += _validate_tree(value, f"{path}{f.name}.")
    return problems


def _build(cls: Any, raw: Any, path: str, problems: list[str]) -> Any:
    where = path.rstrip(".") or "<top level>"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping, got {type(raw).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # YAML keys need not be strings ({1: x, a: y}): sort by their text, never compare types
    for key in sorted(set(raw) - set(fields), key=str):
        problems.append(f"{path}{key}: unknown key (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        if name in raw:
            kwargs[name] = _coerce(hints[name], raw[name], f"{path}{name}", problems,
                                   infinite=f.metadata.get(_INFINITE, False))
    try:
        return cls(**kwargs)
    except TypeError as exc:  # only reachable with earlier problems recorded
        problems.append(f"{where}: {exc}")
        return cls()


def _coerce(tp: Any, value: Any, path: str, problems: list[str], infinite: bool = False) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path + ".", problems)
    if origin is Literal:
        if value not in get_args(tp):
            problems.append(f"{path}: must be one of {list(get_args(tp))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return value
        (item,) = get_args(tp)
        return [_coerce(item, v, f"{path}[{i}]", problems, infinite) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return value
        _, item = get_args(tp)
        return {str(k): _coerce(item, v, f"{path}.{k}", problems, infinite)
                for k, v in value.items()}
    if tp is float:
        return _coerce_float(value, path, problems, infinite)
    if tp in (int, str, bool) and (not isinstance(value, tp) or
                                   (tp is int and isinstance(value, bool))):
        problems.append(f"{path}: expected {tp.__name__}, got {value!r}")
    return value


def _coerce_float(value: Any, path: str, problems: list[str], infinite: bool) -> Any:
    """A float setting: ints become floats; .nan never passes, .inf only where declared."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{path}: expected float, got {value!r}")
        return value
    try:
        number = float(value)
    except OverflowError:   # an int with hundreds of digits (not printed: it is huge)
        problems.append(f"{path}: must be a finite number, got an integer too large for a float")
        return value
    if math.isnan(number) or (math.isinf(number) and not infinite):
        allowed = "a number or .inf/-.inf" if infinite else "a finite number"
        problems.append(f"{path}: must be {allowed}, got {value!r}")
    return number
