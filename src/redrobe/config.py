"""Typed, validated view of params.yaml.

Each top-level section of params.yaml maps to a frozen dataclass below; nested
mappings map to nested dataclasses. :func:`load_params` reads the file and reports
*every* problem at once (unknown keys, wrong types, out-of-range values), each with
its params.yaml key path, e.g. ``clean.gopher_quality.min_words: must be >= 0``.

Run ``redrobe params-check`` to validate a params file without running a stage.
"""

from __future__ import annotations

import dataclasses
import typing
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


# ----------------------------------------------------------------------------- sections

@dataclass(frozen=True)
class Shared:
    seed: int = 1234
    batch_docs: int = 256          # documents held in memory at once by a data stage
    workers: int = 1               # worker processes (tasks in flight) for per-shard data stages
    executor: Literal["local", "ray"] = "local"  # where shard maps run (redrobe.parallel)
    ray_address: str = ""          # executor ray: "" starts a local Ray; or auto / ray://host:10001
    val_fraction: float = 0.05     # held-out validation share per slice (hash of id)
    min_val_docs: int = 1          # ... but at least this many validation docs per slice
    slices: list[str] = field(default_factory=lambda: ["books", "wikipedia", "c4", "common_crawl", "github"])

    def validate(self) -> list[str]:
        return (_check(self.batch_docs >= 1, "batch_docs", "must be >= 1")
                + _check(self.workers >= 1, "workers", "must be >= 1")
                + _check(0.0 < self.val_fraction < 0.5, "val_fraction", "must be in (0, 0.5)")
                + _check(self.min_val_docs >= 0, "min_val_docs", "must be >= 0")
                + _check(bool(self.slices), "slices", "must name at least one slice"))


@dataclass(frozen=True)
class IngestSample:
    """Kept documents per slice from the pinned sample distributions
    (docs/references.md, "Real text available offline")."""
    books: int = 60
    wikipedia: int = 120
    c4: int = 300
    common_crawl: int = 200
    github: int = 300

    def validate(self) -> list[str]:
        return [p for f in dataclasses.fields(self)
                for p in _check(getattr(self, f.name) >= 0, f.name, "must be >= 0")]


@dataclass(frozen=True)
class IngestInput:
    """One ``ingest.inputs`` entry (files mode): see redrobe.sources.inputs for the formats."""
    path: str = ""                       # local path/glob or fsspec URL (s3://, memory://, ...)
    format: Literal["auto", "redpajama", "warc", "wet", "mediawiki", "latex", "stackexchange",
                    "code", "gutenberg"] = "auto"   # auto: by file name
    slice: str = ""                      # "" -> the format's RedPajama slice
    site: str = ""                       # stackexchange: site domain for question URLs

    def validate(self) -> list[str]:
        return (_check(bool(self.path.strip()), "path", "must name a file, glob or URL")
                + _check(self.slice == "" or _is_slice_name(self.slice), "slice",
                         "must be a slice name (lower-case letters, digits, _ -) or empty"))


def _is_slice_name(name: str) -> bool:
    return name[:1].isalnum() and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class Ingest:
    mode: Literal["sample", "files"] = "sample"
    paths: list[str] = field(default_factory=list)  # globs of RedPajama JSONL/Parquet shards
    inputs: list[IngestInput] = field(default_factory=list)  # any format (files mode)
    default_slice: str = "common_crawl"  # slice for records without red_pajama_subset
    shard_docs: int = 1000               # documents per raw shard
    max_doc_chars: int = 2_000_000       # longer documents are removed (reason: too_long)
    sample: IngestSample = field(default_factory=IngestSample)

    def validate(self) -> list[str]:
        inputs = [f"inputs[{i}].{p}" for i, item in enumerate(self.inputs)
                  for p in item.validate()]  # list items are not walked by _validate_tree
        return (_check(self.mode == "sample" or bool(self.paths or self.inputs), "paths",
                       "must list at least one file or glob (or ingest.inputs) when mode is 'files'")
                + inputs
                + _check(_is_slice_name(self.default_slice),
                         "default_slice", "must be a slice name (lower-case letters, digits, _ -)")
                + _check(self.shard_docs >= 1, "shard_docs", "must be >= 1")
                + _check(self.max_doc_chars >= 1, "max_doc_chars", "must be >= 1"))


@dataclass(frozen=True)
class GopherQualityParams:
    """Gopher quality rules (Rae et al. 2021, App. A; datatrove defaults)."""
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    max_non_alpha_words_ratio: float = 0.8   # keep if >= 80 % of words contain a letter
    min_stop_words: int = 2

    def validate(self) -> list[str]:
        return (_check(0 <= self.min_words <= self.max_words, "min_words",
                       "must be >= 0 and <= max_words")
                + _check(0 <= self.min_mean_word_length <= self.max_mean_word_length,
                         "min_mean_word_length", "must be >= 0 and <= max_mean_word_length")
                + [f"{n}: must be in [0, 1]" for n in ("max_symbol_word_ratio",
                   "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
                   "max_non_alpha_words_ratio") if not 0.0 <= getattr(self, n) <= 1.0]
                + _check(self.min_stop_words >= 0, "min_stop_words", "must be >= 0"))


@dataclass(frozen=True)
class GopherRepetitionParams:
    """Gopher repetition rules (Rae et al. 2021, Table A1)."""
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_n_grams: dict[str, float] = field(default_factory=lambda: {"2": 0.20, "3": 0.18, "4": 0.16})
    dup_n_grams: dict[str, float] = field(default_factory=lambda: {
        "5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10})

    def validate(self) -> list[str]:
        problems = [f"{n}: must be in [0, 1]" for n in ("dup_line_frac", "dup_para_frac",
                    "dup_line_char_frac", "dup_para_char_frac")
                    if not 0.0 <= getattr(self, n) <= 1.0]
        for name in ("top_n_grams", "dup_n_grams"):
            for n, limit in getattr(self, name).items():
                problems += _check(n.isdigit() and int(n) >= 1, f"{name}.{n}",
                                   "key must be an n-gram size (an integer >= 1)")
                problems += _check(0.0 <= limit <= 1.0, f"{name}.{n}", "must be in [0, 1]")
        return problems


@dataclass(frozen=True)
class C4Params:
    """C4 rules (Raffel et al. 2020, §2.2; datatrove C4QualityFilter defaults)."""
    min_words_per_line: int = 3
    min_sentences: int = 5
    max_word_length: int = 1000
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    filter_javascript_lines: bool = True
    filter_policy_lines: bool = True

    def validate(self) -> list[str]:
        return (_check(self.min_words_per_line >= 0, "min_words_per_line", "must be >= 0")
                + _check(self.min_sentences >= 0, "min_sentences", "must be >= 0")
                + _check(self.max_word_length >= 1, "max_word_length", "must be >= 1"))


@dataclass(frozen=True)
class CodeParams:
    """RedPajama-1T github rules (docs/references.md, "RedPajama-1T slices")."""
    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alnum_fraction: float = 0.25
    min_alpha_per_token: float = 1.5

    def validate(self) -> list[str]:
        return (_check(self.max_line_length >= 1, "max_line_length", "must be >= 1")
                + _check(self.max_mean_line_length > 0, "max_mean_line_length", "must be > 0")
                + _check(0.0 <= self.min_alnum_fraction <= 1.0, "min_alnum_fraction",
                         "must be in [0, 1]")
                + _check(self.min_alpha_per_token >= 0, "min_alpha_per_token", "must be >= 0"))


@dataclass(frozen=True)
class FineWebParams:
    """FineWeb quality rules (Penedo et al. 2024, App. E.4 Table 2; datatrove
    FineWebQualityFilter defaults). A document is removed when its share of lines ending
    in punctuation is <= line_punct_thr, its share of lines <= short_line_length chars is
    >= short_line_thr, its duplicated-line chars are >= char_duplicates_ratio of its
    chars, or its newlines per word exceed new_line_ratio."""
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False   # datatrove: keep docs with no punctuated line at all
    short_line_length: int = 30
    short_line_thr: float = 0.67
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3

    def validate(self) -> list[str]:
        return ([f"{n}: must be in [0, 1]" for n in ("line_punct_thr", "short_line_thr",
                 "char_duplicates_ratio") if not 0.0 <= getattr(self, n) <= 1.0]
                + _check(self.short_line_length >= 0, "short_line_length", "must be >= 0")
                + _check(self.new_line_ratio >= 0, "new_line_ratio", "must be >= 0"))


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


@dataclass(frozen=True)
class Clean:
    """Normalization, rule sets per slice, presets, signal expressions, thresholds.

    An entry of ``rule_sets.<slice>`` (or of a preset) resolves in this order:
    ``expr:<name>`` is the expression ``expressions.<name>``; a preset name expands to
    its list (presets hold rule-set names and ``expr:`` entries, not other presets); any
    other name is a rule set (RULE_SET_NAMES). Presets are looked up before rule sets,
    so redefining the preset ``c4`` changes every slice that lists ``c4``.
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

    def _entry_problems(self, name: str) -> list[str]:
        if name.startswith(EXPRESSION_PREFIX):
            expr = name[len(EXPRESSION_PREFIX):]
            return [] if expr in self.expressions else [
                f"{name!r}: no expression {expr!r} under clean.expressions"]
        if name in self.RULE_SET_NAMES:
            return []
        return [f"unknown rule set or preset {name!r} (rule sets: {sorted(self.RULE_SET_NAMES)}; "
                f"presets: {sorted(self.presets)}; or expr:<name>)"]

    def validate(self) -> list[str]:
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
        return problems


@dataclass(frozen=True)
class MinHashParams:
    """RedPajama-V2 MinHash parameters, 14 x 9 bands verified at Jaccard 0.8
    (docs/references.md, "Deduplication parameters")."""
    enabled: bool = True
    ngram: int = 13
    num_perm: int = 128
    bands: int = 14
    rows: int = 9
    seed: int = 42
    verify: bool = True            # link an LSH candidate pair only if its exact Jaccard >= threshold
    threshold: float = 0.8         # SlimPajama's Jaccard threshold

    def validate(self) -> list[str]:
        return (_check(self.bands * self.rows <= self.num_perm, "bands",
                       "bands * rows must be <= num_perm")
                + _check(0.0 < self.threshold <= 1.0, "threshold", "must be in (0, 1]")
                + _check(self.ngram >= 1, "ngram", "must be >= 1")
                + _check(self.num_perm >= 1, "num_perm", "must be >= 1")
                + _check(self.bands >= 1, "bands", "must be >= 1")
                + _check(self.rows >= 1, "rows", "must be >= 1")
                + _check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)"))


@dataclass(frozen=True)
class DedupSemantic:
    """SemDeDup with all-MiniLM-L6-v2: k-means clusters, cosine pairs inside.

    Recipe: docs/references.md, "Deduplication parameters".

    ``slices`` are the slices whose documents are embedded (prose by default: on code the
    shared license headers dominate what MiniLM reads, see benchmarks/semantic_choice.py);
    ``text_view`` picks per slice what is embedded (``head``: the first ``max_words``
    words; ``strip_header``: leading comment/docstring/license blocks removed first).
    """
    enabled: bool = True           # costs a model load + CPU encoding (README, performance)
    threshold: float = 0.9         # cosine; NeMo Curator / SemDeDup near-duplicate regime
    slices: list[str] = field(default_factory=lambda: ["books", "wikipedia", "c4", "common_crawl",
                                                       "arxiv", "stackexchange"])
    text_view: dict[str, Literal["head", "strip_header"]] = field(
        default_factory=lambda: {"github": "strip_header"})   # slices not listed: head
    max_words: int = 256           # MiniLM reads at most 256 word pieces anyway
    batch_size: int = 32           # encoder batch
    threads: int = 0               # torch intra-op threads for encoding; 0 = torch default
    docs_per_cluster: int = 2000   # k-means k = ceil(embedded docs / docs_per_cluster)
    kmeans_iters: int = 20
    kmeans_sample: int = 20000     # k-means trains on at most this many embeddings
    block_docs: int = 1024         # similarity blocks are block_docs x block_docs
    embedding_dtype: Literal["float16", "float32"] = "float16"   # on-disk embeddings
    seed: int = 42

    def validate(self) -> list[str]:
        return (_check(0.0 < self.threshold <= 1.0, "threshold", "must be in (0, 1]")
                + _check(self.max_words >= 1, "max_words", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.threads >= 0, "threads", "must be >= 0")
                + _check(self.docs_per_cluster >= 1, "docs_per_cluster", "must be >= 1")
                + _check(self.kmeans_iters >= 1, "kmeans_iters", "must be >= 1")
                + _check(self.kmeans_sample >= 1, "kmeans_sample", "must be >= 1")
                + _check(self.block_docs >= 1, "block_docs", "must be >= 1")
                + _check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)"))


@dataclass(frozen=True)
class Dedup:
    """Exact (normalized-content hash) and MinHash-LSH deduplication (docs/references.md,
    "Deduplication parameters")."""
    exact: bool = True
    cross_slice: bool = True       # duplicates are found across slices, as SlimPajama does
    minhash: MinHashParams = field(default_factory=MinHashParams)
    semantic: DedupSemantic = field(default_factory=DedupSemantic)


@dataclass(frozen=True)
class QualityAudit:
    """Human audit of kept/removed decisions: sample, then gate on the Wilson bound."""
    sample_size: int = 1300          # with 0 errors the 95 % Wilson lower bound reaches
    per_stratum_min: int = 5         # 0.997 only from n = 1277 reviewed documents on
    excerpt_chars: int = 1000        # characters of text shown to the reviewer
    target: float = 0.997            # audited label accuracy to reach (99.7 %): the project's bar

    def validate(self) -> list[str]:
        return (_check(self.sample_size >= 1, "sample_size", "must be >= 1")
                + _check(self.per_stratum_min >= 0, "per_stratum_min", "must be >= 0")
                + _check(self.excerpt_chars >= 1, "excerpt_chars", "must be >= 1")
                + _check(0.0 < self.target < 1.0, "target", "must be in (0, 1)"))


@dataclass(frozen=True)
class Quality:
    """Great Expectations suites over the ingest, clean and dedup outputs; the audit."""
    min_chars: int = 1
    max_chars: int = 2_000_000
    min_docs_per_slice: int = 1
    max_removal_rate: dict[str, float] = field(default_factory=lambda: {"clean": 0.9, "dedup": 0.6})
    #: [low, high] of document-level RedPajama-V2 signals stored by clean (.inf: no bound)
    signal_ranges: dict[str, list[float]] = field(default_factory=lambda: {
        "rps_doc_word_count": [0.0, float("inf")],
        "rps_doc_mean_word_length": [0.0, float("inf")],
        "rps_doc_frac_unique_words": [0.0, 1.0],
        "rps_doc_frac_no_alph_words": [0.0, 1.0],
        "redrobe_lang_score": [0.0, 1.0]})
    #: stage columns a shard may carry beside id, text, source, meta (others fail the schema)
    extra_columns: list[str] = field(default_factory=lambda: ["quality_signals", "language"])
    audit: QualityAudit = field(default_factory=QualityAudit)

    def validate(self) -> list[str]:
        return (_check(self.min_chars <= self.max_chars, "min_chars", "must be <= max_chars")
                + [f"max_removal_rate.{k}: must be in [0, 1]"
                   for k, v in self.max_removal_rate.items() if not 0.0 <= v <= 1.0]
                + [f"signal_ranges.{k}: must be [low, high] with low <= high"
                   for k, v in self.signal_ranges.items() if len(v) != 2 or not v[0] <= v[1]])


@dataclass(frozen=True)
class Tokenize:
    vocab_size: int = 8192
    min_frequency: int = 2
    max_train_docs: int = 100_000   # cap on training-split documents fed to the trainer

    def validate(self) -> list[str]:
        # 260 = 4 special tokens + the 256 byte symbols every byte-level BPE starts from
        return (_check(260 <= self.vocab_size <= 65_535, "vocab_size", "must be in [260, 65535]")
                + _check(self.min_frequency >= 1, "min_frequency", "must be >= 1")
                + _check(self.max_train_docs >= 1, "max_train_docs", "must be >= 1"))


@dataclass(frozen=True)
class Bucket:
    """Difficulty score and quantile buckets (redrobe.curriculum.difficulty)."""
    num_buckets: int = 4
    score: Literal["unigram_surprisal", "length", "rare_word_rate", "compression_ratio",
                   "reference_ppl"] = "unigram_surprisal"
    rare_mass: float = 0.1          # rare_word_rate: the tail token mass called rare
    reference_lambda: float = 0.9   # reference_ppl: bigram weight vs the unigram back-off

    def validate(self) -> list[str]:
        # bucket files are named bucket-NN: two digits keep them in curriculum order
        return (_check(1 <= self.num_buckets <= 99, "num_buckets", "must be in [1, 99]")
                + _check(0.0 < self.rare_mass < 1.0, "rare_mass", "must be in (0, 1)")
                + _check(0.0 <= self.reference_lambda < 1.0, "reference_lambda",
                         "must be in [0, 1)"))


@dataclass(frozen=True)
class Curriculum:
    """Sampling schedule over the buckets (redrobe.train.data): stepwise phases easy ->
    hard, smooth competence-based pacing (Platanios et al. 2019), or shuffled."""
    schedule: Literal["stepwise", "smooth", "shuffled"] = "stepwise"
    replay: float = 0.1             # share of each batch's rows from easier buckets
    competence_start: float = 0.1   # smooth: c0, the easiest share available at step 1
    pacing_end: float = 0.8         # smooth: progress at which all data is available

    def validate(self) -> list[str]:
        return (_check(0.0 <= self.replay < 1.0, "replay", "must be in [0, 1)")
                + _check(0.0 < self.competence_start <= 1.0, "competence_start",
                         "must be in (0, 1]")
                + _check(0.0 < self.pacing_end <= 1.0, "pacing_end", "must be in (0, 1]"))


@dataclass(frozen=True)
class Model:
    """LlamaForCausalLM shape. The default trains in a few minutes on 2 CPU cores."""
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 688
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    # Architecture variants (redrobe.model.variants): one MLP module shared by every
    # layer ("all") or by consecutive groups of ffn_share_group layers ("groups").
    ffn_sharing: Literal["none", "all", "groups"] = "none"
    ffn_share_group: int = 2
    # "sliding_window": token t attends only to positions t-window+1 .. t.
    attention: Literal["full", "sliding_window"] = "full"
    window: int = 64

    def validate(self) -> list[str]:
        sizes = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
                 "ffn_share_group", "window")
        problems = [f"{k}: must be >= 1" for k in sizes if getattr(self, k) < 1]
        problems += _check(self.max_seq_len >= 2, "max_seq_len", "must be >= 2")
        if problems:  # the divisibility checks below need positive sizes
            return problems
        return (_check(self.hidden_size % self.num_heads == 0, "hidden_size",
                       "must be divisible by num_heads")
                + _check(self.num_heads % self.num_kv_heads == 0, "num_kv_heads",
                         "must divide num_heads"))


@dataclass(frozen=True)
class Distributed:
    """Multi-process training (redrobe.train.deepspeed); launch with deepspeed/torchrun."""
    backend: Literal["none", "deepspeed"] = "none"
    zero_stage: int = 2               # ZeRO (Rajbhandari et al. 2020): 1 optimizer, 2 +grads, 3 +params
    offload_optimizer: bool = False   # ZeRO-Offload: optimizer state and step on the CPU
    offload_params: bool = False      # ZeRO-3 only: parameters live on the CPU between uses

    def validate(self) -> list[str]:
        return (_check(0 <= self.zero_stage <= 3, "zero_stage", "must be in 0..3")
                + _check(not self.offload_params or self.zero_stage == 3, "offload_params",
                         "needs zero_stage 3"))


@dataclass(frozen=True)
class Pretrain:
    steps: int = 200
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int = 50
    eval_batches: int = 2   # per validation slice and evaluation (a forward pass each)
    threads: int = 0   # 0: all cores
    checkpoint_every: int = 50      # save every N steps and after the last; 0: no checkpoints
    keep_checkpoints: int = 3       # newest checkpoints kept per run
    resume: Literal["auto", "never"] = "auto"   # auto: newest valid checkpoint with these params
    gradient_checkpointing: bool = False        # recompute activations in backward (less memory)
    compile: Literal["auto", True, False] = "auto"   # auto: torch.compile on CUDA only
    fused: bool = True              # fused LLaMA forward + chunked cross-entropy (model.fused)
    keep_memory: bool = True        # CPU: glibc keeps freed memory for the next step (train.host)
    peak_flops: float = 0.0         # FLOP/s for MFU; 0: measure once at the start of the run
    distributed: Distributed = field(default_factory=Distributed)
    curriculum: Curriculum = field(default_factory=Curriculum)

    def validate(self) -> list[str]:
        return (_check(self.steps >= 1, "steps", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
                + _check(self.warmup_steps < self.steps, "warmup_steps", "must be < steps")
                + _check(0.0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]")
                + _check(self.eval_every >= 0, "eval_every", "must be >= 0")
                + _check(self.eval_batches >= 1, "eval_batches", "must be >= 1")
                + _check(self.threads >= 0, "threads", "must be >= 0")
                + _check(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0")
                + _check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
                + _check(self.peak_flops >= 0, "peak_flops", "must be >= 0"))


@dataclass(frozen=True)
class Lora:
    slice: str = "books"              # adaptation task: the training split of this slice
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    steps: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 6
    weight_decay: float = 0.01        # LoRA paper (Hu et al. 2021) Table 11, GPT-2 E2E
    grad_clip: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: int = 20              # validation loss on the slice's held-out documents
    eval_batches: int = 4
    threads: int = 0                  # 0: all cores
    # QLoRA (Dettmers et al. 2023): "4bit" loads the frozen base as NF4 through
    # bitsandbytes (the `gpu` extra) and needs a CUDA GPU; "none" trains on the full base.
    quantization: Literal["none", "4bit"] = "none"

    def validate(self) -> list[str]:
        return (_check(self.r >= 1, "r", "must be >= 1")
                + _check(self.quantization in ("none", "4bit"), "quantization",
                         "must be none or 4bit")
                + _check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
                + _check(self.steps >= 1, "steps", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.warmup_steps < self.steps, "warmup_steps", "must be < steps")
                + _check(0.0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]")
                + _check(self.eval_every >= 0, "eval_every", "must be >= 0")
                + _check(self.eval_batches >= 1, "eval_batches", "must be >= 1")
                + _check(self.threads >= 0, "threads", "must be >= 0")
                + _check(bool(self.target_modules), "target_modules", "must name a module"))


@dataclass(frozen=True)
class EvaluateMath:
    """Arithmetic word problems (redrobe.evaluate.math_task): LoRA-adapt, then exact match."""
    enabled: bool = True
    train_problems: int = 256
    test_problems: int = 32
    steps: int = 40
    batch_size: int = 8
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 4
    weight_decay: float = 0.01
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "v_proj", "up_proj", "down_proj"])
    max_new_tokens: int = 6           # an answer is at most 3 digits
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    def validate(self) -> list[str]:
        return (_check(self.train_problems >= 1, "train_problems", "must be >= 1")
                + _check(self.test_problems >= 1, "test_problems", "must be >= 1")
                + _check(self.steps >= 1, "steps", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.warmup_steps < self.steps, "warmup_steps", "must be < steps")
                + _check(0.0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]")
                + _check(self.r >= 1, "r", "must be >= 1")
                + _check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
                + _check(bool(self.target_modules), "target_modules", "must name a module")
                + _check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1"))


@dataclass(frozen=True)
class EvaluateHumanEval:
    """HumanEval pass@1 (redrobe.evaluate.humaneval), completions run in a sandbox."""
    enabled: bool = True
    max_problems: int = 20            # the first N of the 164 problems; 0: all
    max_new_tokens: int = 128
    timeout_s: float = 10.0           # wall clock per program
    cpu_s: int = 10                   # RLIMIT_CPU per program
    memory_mb: int = 1024             # RLIMIT_AS per program
    max_processes: int = 16           # RLIMIT_NPROC per program

    def validate(self) -> list[str]:
        return (_check(self.max_problems >= 0, "max_problems", "must be >= 0 (0: all)")
                + _check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
                + _check(self.timeout_s > 0, "timeout_s", "must be > 0")
                + _check(self.cpu_s >= 1, "cpu_s", "must be >= 1")
                + _check(self.memory_mb >= 64, "memory_mb", "must be >= 64")
                + _check(self.max_processes >= 1, "max_processes", "must be >= 1"))


@dataclass(frozen=True)
class EvaluateAttention:
    """Attention maps (redrobe.evaluate.attention): one PNG per head + the head mean."""
    prompt: str = "The cat sat on the mat because it was tired."
    layer: int = -1                   # counts from 0; negative: from the last layer
    heads: list[int] = field(default_factory=list)  # empty: every head

    def validate(self) -> list[str]:
        return (_check(bool(self.prompt.strip()), "prompt", "must not be empty")
                + _check(all(h >= 0 for h in self.heads), "heads", "must be >= 0"))


@dataclass(frozen=True)
class Evaluate:
    max_tokens_per_slice: int = 32_768
    batch_size: int = 8
    gen_prompt: str = "The"
    gen_tokens: int = 64
    threads: int = 0                  # 0: all cores
    # Model registry (redrobe.evaluate.gates): when the gates pass, the base model is
    # registered as a version of `model_name` with alias `candidate`, and `production`
    # when its mean bits/byte is below the production version's by > min_improvement.
    register: bool = True
    model_name: str = "redrobe-llama"
    max_bits_per_byte: float = 8.0    # 8.0: a uniform guess over the 256 byte values
    min_improvement: float = 0.0      # bits/byte
    math: EvaluateMath = field(default_factory=EvaluateMath)
    humaneval: EvaluateHumanEval = field(default_factory=EvaluateHumanEval)
    attention: EvaluateAttention = field(default_factory=EvaluateAttention)

    def validate(self) -> list[str]:
        return (_check(self.max_tokens_per_slice >= 1, "max_tokens_per_slice", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.gen_tokens >= 1, "gen_tokens", "must be >= 1")
                + _check(self.threads >= 0, "threads", "must be >= 0")
                + _check(bool(self.model_name.strip()) and "/" not in self.model_name
                         and ":" not in self.model_name, "model_name",
                         "must be a non-empty registered model name without '/' or ':'")
                + _check(self.max_bits_per_byte > 0, "max_bits_per_byte", "must be > 0")
                + _check(self.min_improvement >= 0, "min_improvement", "must be >= 0"))


@dataclass(frozen=True)
class Tracking:
    experiment: str = "redrobe"


@dataclass(frozen=True)
class Params:
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

    def validate(self) -> list[str]:
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
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"], str(path)) from exc
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
    names = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - names):
        problems.append(f"{path}{key}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names & set(raw):
        kwargs[name] = _coerce(hints[name], raw[name], f"{path}{name}", problems)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # only reachable with earlier problems recorded
        problems.append(f"{where}: {exc}")
        return cls()


def _coerce(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
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
        return [_coerce(item, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return value
        _, item = get_args(tp)
        return {str(k): _coerce(item, v, f"{path}.{k}", problems) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (not isinstance(value, tp) or
                                          (tp is int and isinstance(value, bool))):
        problems.append(f"{path}: expected {tp.__name__}, got {value!r}")
    return value
