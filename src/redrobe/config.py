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
    workers: int = 1               # local worker processes for per-shard data stages
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
    """Kept documents per slice from the pinned sample distributions (REFERENCES §6)."""
    books: int = 60
    wikipedia: int = 120
    c4: int = 300
    common_crawl: int = 200
    github: int = 300

    def validate(self) -> list[str]:
        return [p for f in dataclasses.fields(self)
                for p in _check(getattr(self, f.name) >= 0, f.name, "must be >= 0")]


@dataclass(frozen=True)
class Ingest:
    mode: Literal["sample", "files"] = "sample"
    paths: list[str] = field(default_factory=list)  # globs of RedPajama JSONL/Parquet shards
    default_slice: str = "common_crawl"  # slice for records without red_pajama_subset
    shard_docs: int = 1000               # documents per raw shard
    max_doc_chars: int = 2_000_000       # longer documents are removed (reason: too_long)
    sample: IngestSample = field(default_factory=IngestSample)

    def validate(self) -> list[str]:
        return (_check(self.mode == "sample" or bool(self.paths), "paths",
                       "must list at least one file or glob when mode is 'files'")
                + _check(self.default_slice[:1].isalnum()
                         and set(self.default_slice) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-"),
                         "default_slice", "must be a slice name (lower-case letters, digits, _ -)")
                + _check(self.shard_docs >= 1, "shard_docs", "must be >= 1")
                + _check(self.max_doc_chars >= 1, "max_doc_chars", "must be >= 1"))


@dataclass(frozen=True)
class GopherQuality:
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
class GopherRepetition:
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
class C4Rules:
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
class CodeRules:
    """RedPajama-1T github rules (REFERENCES §1)."""
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
class Clean:
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
    gopher_quality: GopherQuality = field(default_factory=GopherQuality)
    gopher_repetition: GopherRepetition = field(default_factory=GopherRepetition)
    c4: C4Rules = field(default_factory=C4Rules)
    code: CodeRules = field(default_factory=CodeRules)
    # names of the rule sets (redrobe.text.rules.RULE_SETS; a test keeps them equal)
    RULE_SET_NAMES: typing.ClassVar[tuple[str, ...]] = ("gopher_quality", "gopher_repetition", "c4", "code")

    def validate(self) -> list[str]:
        known = self.RULE_SET_NAMES
        return [f"rule_sets.{s}: unknown rule set {r!r} (known: {sorted(known)})"
                for s, rules in self.rule_sets.items() for r in rules if r not in known]


@dataclass(frozen=True)
class MinHashParams:
    """RedPajama-V2 MinHash parameters (REFERENCES §4): 9 bands x 13 rows ~ Jaccard 0.8."""
    enabled: bool = True
    ngram: int = 13
    num_perm: int = 128
    bands: int = 9
    rows: int = 13
    seed: int = 42

    def validate(self) -> list[str]:
        return (_check(self.bands * self.rows <= self.num_perm, "bands",
                       "bands * rows must be <= num_perm")
                + _check(self.ngram >= 1, "ngram", "must be >= 1")
                + _check(self.num_perm >= 1, "num_perm", "must be >= 1")
                + _check(self.bands >= 1, "bands", "must be >= 1")
                + _check(self.rows >= 1, "rows", "must be >= 1")
                + _check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)"))


@dataclass(frozen=True)
class Dedup:
    """Exact (normalized-content hash) and MinHash-LSH deduplication (REFERENCES §4)."""
    exact: bool = True
    cross_slice: bool = True       # duplicates are found across slices, as SlimPajama does
    minhash: MinHashParams = field(default_factory=MinHashParams)


@dataclass(frozen=True)
class Quality:
    """Great Expectations gate over the deduplicated shards."""
    min_chars: int = 1
    max_chars: int = 2_000_000
    min_docs_per_slice: int = 1
    max_removal_rate: dict[str, float] = field(default_factory=lambda: {"clean": 0.9, "dedup": 0.6})

    def validate(self) -> list[str]:
        return (_check(self.min_chars <= self.max_chars, "min_chars", "must be <= max_chars")
                + [f"max_removal_rate.{k}: must be in [0, 1]"
                   for k, v in self.max_removal_rate.items() if not 0.0 <= v <= 1.0])


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
    num_buckets: int = 4
    score: Literal["unigram_surprisal"] = "unigram_surprisal"

    def validate(self) -> list[str]:
        # bucket files are named bucket-NN: two digits keep them in curriculum order
        return _check(1 <= self.num_buckets <= 99, "num_buckets", "must be in [1, 99]")


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

    def validate(self) -> list[str]:
        sizes = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")
        problems = [f"{k}: must be >= 1" for k in sizes if getattr(self, k) < 1]
        problems += _check(self.max_seq_len >= 2, "max_seq_len", "must be >= 2")
        if problems:  # the divisibility checks below need positive sizes
            return problems
        return (_check(self.hidden_size % self.num_heads == 0, "hidden_size",
                       "must be divisible by num_heads")
                + _check(self.num_heads % self.num_kv_heads == 0, "num_kv_heads",
                         "must divide num_heads"))


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

    def validate(self) -> list[str]:
        return (_check(self.steps >= 1, "steps", "must be >= 1")
                + _check(self.batch_size >= 1, "batch_size", "must be >= 1")
                + _check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
                + _check(self.warmup_steps < self.steps, "warmup_steps", "must be < steps")
                + _check(0.0 <= self.min_lr <= self.lr, "min_lr", "must be in [0, lr]")
                + _check(self.eval_every >= 0, "eval_every", "must be >= 0")
                + _check(self.eval_batches >= 1, "eval_batches", "must be >= 1")
                + _check(self.threads >= 0, "threads", "must be >= 0"))


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

    def validate(self) -> list[str]:
        return (_check(self.r >= 1, "r", "must be >= 1")
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


def _build(cls: type, raw: Any, path: str, problems: list[str]) -> Any:
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
