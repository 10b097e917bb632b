"""`redrobe reproduce TABLE`: run a paper table's variants, then render it beside the paper.

    redrobe reproduce t5-repeats                         # sample scale, through DVC
    redrobe reproduce lora-rank --scale full             # params.yaml + profiles/tables-full.yaml
    redrobe reproduce rule-removal --scale tiny --no-dvc # in process (no git/DVC repo needed)

A scale names a params profile, ``profiles/tables-<scale>.yaml``, merged over
``--params``. Everything for one scale lives under ``<root>/<scale>/`` (root:
``data/tables``)::

    params.yaml       the merged params every step reads
    variants.yaml     {table key: {variant: its params}}: what DVC tracks per variant
    dvc.yaml          generated: corpus -> tokenizer -> one stage per variant -> the table
    corpus/           the ingest stage's raw shards at this scale
    tokenizer/        a BPE tokenizer trained on the corpus' training split
    <table>/variants/<variant>.json    one variant's result
    <table>/work/artifacts/<variant>/  files a variant leaves for the variants after it
    <table>.md, <table>.csv, <table>.json   the table, and its claims' verdicts

Through DVC (the default inside a DVC repo), ``dvc repro`` of the table's stage reruns
only the variants whose params, code or inputs changed. Every variant and every table is
an MLflow run (tags ``redrobe.table``, ``redrobe.variant``), and the table's Markdown,
CSV and verdicts are its artifacts. ``--step`` runs one step; the generated DVC stages
call it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from redrobe.codedeps import SOURCE, dvc_deps, import_closure
from redrobe.config import ConfigError, load_params, merge_profile, params_from_dict
from redrobe.documents import write_json
from redrobe.errors import InputError
from redrobe.tables import TABLES, get_spec
from redrobe.tables.render import claims_summary, to_csv, to_markdown
from redrobe.tables.spec import ARTIFACTS, CORPUS, TOKENIZER, Context, Table, TableSpec, Variant

PROFILES = Path("profiles")
VARIANT_NAME = re.compile(r"^[a-z0-9_-]+$")
#: the modules each generated step runs besides a table's own module: the import closure
#: of both is the stage's code deps (a change reruns it). The runner is the driver, not a
#: dep: a change to how it drives the steps reruns nothing, and nor does another table's.
STEP_MODULES = {
    "corpus": ("redrobe.stages.ingest",),
    "tokenizer": ("redrobe.tokenizer", "redrobe.tables.spec"),   # trained on the training split
    "variant": ("redrobe.tables.spec",),                          # the Context a variant reads
    "render": ("redrobe.tables.spec", "redrobe.tables.render"),
}


@dataclass(frozen=True)
class Layout:
    """The paths of one scale under the tables root."""

    root: Path
    scale: str

    @property
    def base(self) -> Path:
        return self.root / self.scale

    @property
    def params(self) -> Path:
        return self.base / "params.yaml"

    @property
    def variants(self) -> Path:
        return self.base / "variants.yaml"

    @property
    def dvc_file(self) -> Path:
        return self.base / "dvc.yaml"

    @property
    def corpus(self) -> Path:
        return self.base / "corpus"

    @property
    def corpus_meta(self) -> Path:
        """Ingest's removed and quarantined records and its metrics."""
        return self.base / "corpus-meta"

    @property
    def tokenizer(self) -> Path:
        return self.base / "tokenizer" / "tokenizer.json"

    def work(self, spec: TableSpec) -> Path:
        return self.base / spec.name / "work"

    def result(self, spec: TableSpec, variant: str) -> Path:
        return self.base / spec.name / "variants" / f"{variant}.json"

    def output(self, spec: TableSpec, suffix: str) -> Path:
        return self.base / f"{spec.name}.{suffix}"


# ----------------------------------------------------------------------------- params

def profile_path(scale: str) -> Path:
    return PROFILES / f"tables-{scale}.yaml"


def scales() -> list[str]:
    return sorted(p.stem[len("tables-"):] for p in PROFILES.glob("tables-*.yaml"))


def resolve_params(params_path: str | Path, scale: str) -> dict[str, Any]:
    """``params_path`` with the scale's profile merged over it (validated)."""
    profile = profile_path(scale)
    if not profile.is_file():
        raise InputError(f"{profile}: no such profile for --scale {scale} "
                         f"(known: {', '.join(scales()) or 'none'})")
    base = yaml.safe_load(Path(params_path).read_text(encoding="utf-8")) or {}
    merged = merge_profile(base, yaml.safe_load(profile.read_text(encoding="utf-8")) or {})
    params_from_dict(merged, source=f"{params_path} + {profile}")
    return merged


def context(spec: TableSpec, layout: Layout) -> Context:
    params = load_params(layout.params)
    return Context(params=params, settings=spec.load_settings(params), scale=layout.scale,
                   work=layout.work(spec),
                   corpus=layout.corpus if CORPUS in spec.needs else None,
                   tokenizer_path=layout.tokenizer if TOKENIZER in spec.needs else None)


def table_variants(spec: TableSpec, ctx: Context) -> list[Variant]:
    """The spec's variants, checked: slug names, known ``after`` names, no repeats."""
    found = list(spec.variants(ctx))
    names = [v.name for v in found]
    for v in found:
        if not VARIANT_NAME.match(v.name):
            raise ValueError(f"table {spec.name}: variant name {v.name!r} must match {VARIANT_NAME.pattern}")
        missing = [a for a in v.after if a not in names[:names.index(v.name)]]
        if missing:
            raise ValueError(f"table {spec.name}: variant {v.name} runs after {missing}, "
                             "which are not listed before it")
    if len(set(names)) != len(names):
        raise ValueError(f"table {spec.name}: repeated variant names {names}")
    return found


# ----------------------------------------------------------------------------- DVC file

def module_path(spec: TableSpec) -> str:
    """The table's own module, relative to the repo root (a DVC dep of its stages)."""
    return f"src/redrobe/tables/{TABLES[spec.name]}.py"


def code_deps(step: str, spec: TableSpec | None = None) -> list[str]:
    """The code deps of a generated stage: the import closure of the modules ``step`` runs
    (:data:`STEP_MODULES`, and ``spec``'s own module first), listed as dvc.yaml lists code."""
    own: list[str] = []
    modules = list(STEP_MODULES[step])
    if spec is not None:   # listed even before its file exists (a table being written)
        own, modules = [module_path(spec)], [f"redrobe.tables.{TABLES[spec.name]}", *modules]
    return own + [p for p in dvc_deps(import_closure(modules, SOURCE)) if p not in own]


def _stage_name(spec: TableSpec, variant: str | None = None) -> str:
    return spec.name if variant is None else f"{spec.name}-{variant}"


def dvc_stages(layout: Layout, tables: Sequence[tuple[TableSpec, list[Variant]]]) -> dict[str, Any]:
    """The generated dvc.yaml for ``tables`` (each spec with its checked variants): paths
    relative to the repo root (each stage's wdir)."""
    wdir = os.path.relpath(".", layout.base)
    base = f"redrobe reproduce {{table}} --scale {layout.scale} --root {layout.root}"
    params_file, variants_file = str(layout.params), str(layout.variants)
    stages: dict[str, Any] = {
        "corpus": {
            "wdir": wdir,
            "cmd": f"{base.format(table='-')} --step corpus",
            "deps": code_deps("corpus"),
            "params": [{params_file: ["shared", "ingest"]}],
            "outs": [str(layout.corpus), str(layout.corpus_meta)]},
        "tokenizer": {
            "wdir": wdir,
            "cmd": f"{base.format(table='-')} --step tokenizer",
            "deps": code_deps("tokenizer") + [str(layout.corpus)],
            "params": [{params_file: ["shared", "tokenize"]}],
            "outs": [str(layout.tokenizer.parent)]},
    }
    for spec, found in tables:
        code = code_deps("variant", spec)
        artifacts = layout.work(spec) / ARTIFACTS
        inputs = [str(layout.corpus)] * (CORPUS in spec.needs) + \
                 [str(layout.tokenizer.parent)] * (TOKENIZER in spec.needs)
        results = []
        producers = {name for v in found for name in v.after}   # whose artifacts others read
        for variant in found:
            result = str(layout.result(spec, variant.name))
            results.append(result)
            stages[_stage_name(spec, variant.name)] = {
                "wdir": wdir,
                "cmd": f"{base.format(table=spec.name)} --step variant --variant {variant.name}",
                "deps": code + inputs
                        + [str(artifacts / a) for a in variant.after],
                # a variant's params hold every value it reads besides `shared` (table
                # settings, rule thresholds...): a change reruns only the variants it touches
                "params": [{params_file: ["shared"]},
                           {variants_file: [f"{spec.key}.{variant.name}"]}],
                "outs": [result] + [str(artifacts / variant.name)] * (variant.name in producers)}
        stages[_stage_name(spec)] = {
            "wdir": wdir,
            "cmd": f"{base.format(table=spec.name)} --step render",
            "deps": code_deps("render", spec) + results,
            "params": [{params_file: ["tracking"]}],
            "outs": [{str(layout.output(spec, s)): {"cache": False}} for s in ("md", "csv", "json")]}
    return {"stages": stages}


def prepare(params_path: str | Path, layout: Layout) -> None:
    """Write the scale's merged params, every table's variants, and the DVC file."""
    merged = resolve_params(params_path, layout.scale)
    layout.base.mkdir(parents=True, exist_ok=True)
    header = (f"# generated by `redrobe reproduce --scale {layout.scale}` from {params_path} "
              f"+ {profile_path(layout.scale)}: edit those, not this file\n")
    _write_if_changed(layout.params, header + dump_yaml(merged))
    tables = [(spec, table_variants(spec, context(spec, layout)))
              for spec in map(get_spec, TABLES)]
    variants = {spec.key: {v.name: v.params for v in found} for spec, found in tables}
    _write_if_changed(layout.variants, header + dump_yaml(variants))
    _write_if_changed(layout.dvc_file, header + dump_yaml(dvc_stages(layout, tables),
                                                           sort_keys=False))


class _PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: a list shared by two variants is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: Any, sort_keys: bool = True) -> str:
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=sort_keys)


def _write_if_changed(path: Path, text: str) -> None:
    """Rewrite only on change, so DVC sees an untouched file as unchanged."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- steps

def build_corpus(layout: Layout, cache_dir: str) -> None:
    """The ingest stage at this scale: raw shards under ``<scale>/corpus``."""
    from redrobe.stages import ingest

    meta = layout.corpus_meta
    code = ingest.main(["--params", str(layout.params), "--cache-dir", cache_dir,
                        "--output", str(layout.corpus), "--removed", str(meta / "removed"),
                        "--quarantine", str(meta / "quarantine"),
                        "--metrics", str(meta / "ingest.json")])
    if code:
        raise InputError(f"ingest for the {layout.scale} tables corpus failed (exit {code})")


def build_tokenizer(layout: Layout) -> None:
    """A BPE tokenizer (params.tokenize) trained on the corpus' training split."""
    from redrobe.documents import atomic_dir
    from redrobe.tokenizer import train_bpe

    params = load_params(layout.params)
    ctx = Context(params=params, settings=None, scale=layout.scale, work=layout.base,
                  corpus=layout.corpus)
    texts = (d.text for d in ctx.documents() if not ctx.is_validation(d))
    tokenizer = train_bpe(texts, params.tokenize.vocab_size, params.tokenize.min_frequency)
    with atomic_dir(layout.tokenizer.parent) as out:
        tokenizer.save(str(out / layout.tokenizer.name))


def run_variant(spec: TableSpec, layout: Layout, name: str) -> dict[str, Any]:
    """Run one variant as an MLflow run; write its result JSON."""
    from redrobe import tracking

    ctx = context(spec, layout)
    variants = {v.name: v for v in table_variants(spec, ctx)}
    if name not in variants:
        raise InputError(f"table {spec.name} has no variant {name!r} (known: {', '.join(variants)})")
    variant = variants[name]
    ctx.artifacts(name).mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tracking.stage_run(f"reproduce:{spec.name}:{name}",
                            {"table": spec.name, "variant": name, "scale": layout.scale,
                             "params": variant.params}, ctx.params.tracking.experiment) as tracker:
        tracker.set_tags({"redrobe.table": spec.name, "redrobe.variant": name,
                          "redrobe.scale": layout.scale})
        result = spec.run_variant(variant, ctx)
        result = {**result, "seconds": round(time.time() - started, 3)}
        path = layout.result(spec, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
        tracker.log_metrics(result)
        tracker.log_artifact(path, "table")
    return result


def render(spec: TableSpec, layout: Layout) -> tuple[Table, str]:
    """Build the table from the variants' results; write .md, .csv, .json; log them."""
    from redrobe import tracking

    ctx = context(spec, layout)
    results = {}
    for variant in table_variants(spec, ctx):
        path = layout.result(spec, variant.name)
        if not path.is_file():
            raise InputError(f"{path}: missing; run the variant first "
                             f"(redrobe reproduce {spec.name} --step variant --variant {variant.name})")
        results[variant.name] = json.loads(path.read_text(encoding="utf-8"))
    table = spec.build(results, ctx)
    markdown = to_markdown(table, spec, layout.scale)
    summary = {"table": spec.name, "scale": layout.scale,
               "seconds": round(sum(r.get("seconds", 0.0) for r in results.values()), 3),
               **claims_summary(table)}
    layout.output(spec, "md").write_text(markdown, encoding="utf-8")
    layout.output(spec, "csv").write_text(to_csv(table), encoding="utf-8")
    write_json(layout.output(spec, "json"), summary)
    with tracking.stage_run(f"reproduce:{spec.name}", {"table": spec.name, "scale": layout.scale},
                            ctx.params.tracking.experiment) as tracker:
        tracker.set_tags({"redrobe.table": spec.name, "redrobe.scale": layout.scale,
                          **{f"claim.{i}": c.verdict for i, c in enumerate(table.claims)}})
        tracker.log_metrics({"claims_hold": sum(c.holds is True for c in table.claims),
                             "claims": len(table.claims), "variant_seconds": summary["seconds"]})
        for suffix in ("md", "csv", "json"):
            tracker.log_artifact(layout.output(spec, suffix), "table")
    return table, markdown


# ----------------------------------------------------------------------------- drivers

def in_dvc_repo() -> bool:
    return Path(".dvc").is_dir()


def reproduce(name: str, scale: str = "sample", *, params_path: str | Path = "params.yaml",
              root: str | Path = "data/tables", use_dvc: bool | None = None,
              cache_dir: str = ".cache/dists") -> str:
    """Run table ``name`` at ``scale`` and return its Markdown.

    ``use_dvc``: None = through DVC when the working directory is a DVC repo.
    """
    spec = get_spec(name)
    layout = Layout(Path(root), scale)
    prepare(params_path, layout)
    if use_dvc is None:
        use_dvc = in_dvc_repo()
    if use_dvc:
        target = f"{layout.dvc_file}:{_stage_name(spec)}"
        # the stages call `redrobe`: find this interpreter's one even without an activated venv
        env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                      os.environ.get("PATH", "")])}
        subprocess.run([sys.executable, "-m", "dvc", "repro", target], check=True, env=env)
        return layout.output(spec, "md").read_text(encoding="utf-8")
    if CORPUS in spec.needs or TOKENIZER in spec.needs:
        build_corpus(layout, cache_dir)
    if TOKENIZER in spec.needs:
        build_tokenizer(layout)
    for variant in table_variants(spec, context(spec, layout)):
        run_variant(spec, layout, variant.name)
    return render(spec, layout)[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="redrobe reproduce",
                                description="reproduce a paper table at a given scale")
    p.add_argument("table", help=f"one of: {', '.join(TABLES)} ('-' for the shared steps)")
    p.add_argument("--scale", default="sample", help="profiles/tables-<scale>.yaml (sample, full, tiny)")
    p.add_argument("--params", default="params.yaml", help="base params file")
    p.add_argument("--root", default="data/tables", help="output root")
    p.add_argument("--cache-dir", default=".cache/dists", help="downloaded sample distributions")
    p.add_argument("--no-dvc", action="store_true", help="run every step in this process")
    p.add_argument("--step", choices=("corpus", "tokenizer", "variant", "render"),
                   help="run one step only (what the generated DVC stages call)")
    p.add_argument("--variant", help="with --step variant: which one")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    layout = Layout(Path(args.root), args.scale)
    try:
        if args.step == "corpus":
            build_corpus(layout, args.cache_dir)
        elif args.step == "tokenizer":
            build_tokenizer(layout)
        elif args.step == "variant":
            run_variant(get_spec(args.table), layout, args.variant or "")
        elif args.step == "render":
            print(render(get_spec(args.table), layout)[1])
        else:
            print(reproduce(args.table, args.scale, params_path=args.params, root=args.root,
                            use_dvc=False if args.no_dvc else None, cache_dir=args.cache_dir))
    except ConfigError as exc:
        print(f"redrobe reproduce: error: {exc}", file=sys.stderr)
        return 2
    except (InputError, KeyError, ValueError) as exc:
        print(f"redrobe reproduce: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"redrobe reproduce: error: dvc repro failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


__all__ = ["Layout", "build_parser", "dvc_stages", "main", "prepare", "render",
           "reproduce", "resolve_params", "run_variant"]
