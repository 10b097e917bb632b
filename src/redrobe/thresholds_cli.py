"""`redrobe language-thresholds`: derive a language's rule thresholds from reference text.

    redrobe language-thresholds --language de --english data/interim/clean \
        --reference de-wiki/*.txt [--params params.yaml] [--rule-sets gopher_quality fineweb]

Glue around :mod:`redrobe.text.thresholds` (FineWeb-2's quantile matching: each
threshold removes the same share of the language's reference documents as the English
threshold removes of English ones). Reference paths are files or directories of:

- ``.parquet`` documents (a ``text`` column; with a ``language`` column, e.g. the clean
  stage's outputs, only the rows identified as the wanted language are read),
- ``.jsonl`` / ``.jsonl.gz`` records with ``text`` (and optionally ``language``),
- ``.txt`` files, one document each.

Prints the overrides as YAML for ``clean.language_thresholds`` (stdout, or ``--output``)
and a table of the English and derived thresholds with the share of reference
documents each removes (stderr). Exit 2 on bad params or inputs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from redrobe.config import LANGUAGE_SECTIONS, ConfigError, load_params
from redrobe.text.languages import normalize_code
from redrobe.text.thresholds import derive_thresholds, format_table, overrides

SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".txt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redrobe language-thresholds", description=__doc__.splitlines()[0])
    p.add_argument("--language", required=True, help="ISO 639 code of the target language (de, zh, ...)")
    p.add_argument("--english", nargs="+", required=True, metavar="PATH", help="English reference text")
    p.add_argument("--reference", nargs="+", required=True, metavar="PATH",
                   help="reference text of the target language")
    p.add_argument("--params", default="params.yaml", help="params file (English thresholds, profiles)")
    p.add_argument("--rule-sets", nargs="+", default=list(LANGUAGE_SECTIONS), choices=LANGUAGE_SECTIONS)
    p.add_argument("--output", default="", help="write the YAML here instead of stdout")
    return p


def read_texts(paths: Sequence[str], language: str) -> list[str]:
    """The documents under ``paths`` (module docstring); rows labelled with another
    language are skipped."""
    return [text for path in paths for file in _files(Path(path)) for text in _read(file, language)]


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def _read(path: Path, language: str) -> Iterator[str]:
    if path.name.endswith(".parquet"):
        table = pq.read_table(path)
        texts = table.column("text").to_pylist()
        labels = (table.column("language").to_pylist() if "language" in table.column_names
                  else [None] * len(texts))
        yield from (text for text, label in zip(texts, labels)
                    if isinstance(text, str) and _wanted(label, language))
    elif path.name.endswith((".jsonl", ".jsonl.gz")):
        with (gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz")
              else path.open(encoding="utf-8")) as lines:
            for line in lines:
                record = json.loads(line) if line.strip() else {}
                if isinstance(record.get("text"), str) and _wanted(record.get("language"), language):
                    yield record["text"]
    else:
        yield path.read_text(encoding="utf-8")


def _wanted(label: object, language: str) -> bool:
    """A record without a language label is taken; a labelled one must be ``language``."""
    return label is None or (isinstance(label, str) and normalize_code(label) == language)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    language = normalize_code(args.language)
    try:
        clean = load_params(args.params).clean
        english, reference = read_texts(args.english, "en"), read_texts(args.reference, language)
        derived = derive_thresholds(english, reference, language, clean, args.rule_sets)
        found = overrides(derived)
        # the params must accept what was derived
        tables = {**clean.language_thresholds, language: found}
        replace(clean, language_thresholds=tables).for_language(language)
    except (ConfigError, OSError, ValueError, KeyError) as exc:
        print(f"redrobe language-thresholds: {exc}", file=sys.stderr)
        return 2
    print(f"{len(english)} English and {len(reference)} {language} reference documents\n"
          f"{format_table(derived, language)}", file=sys.stderr)
    text = yaml.safe_dump({language: found}, sort_keys=False, allow_unicode=True)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
