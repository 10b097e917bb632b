"""The table runner and renderer: params resolution, variants, the generated dvc.yaml,
result files, Markdown/CSV, on a small table defined here (counts per slice)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from redrobe.codedeps import SOURCE, covered, import_closure, uncovered
from redrobe.config import ConfigError, params_from_dict
from redrobe.documents import Document
from redrobe.errors import InputError
from redrobe.tables import TABLES, get_spec, runner
from redrobe.tables.render import MISSING, cell, to_csv, to_markdown
from redrobe.tables.spec import CORPUS, Claim, Context, Table, TableSpec, Variant

from .conftest import write_corpus


@dataclass(frozen=True)
class CountSettings:
    slices: list[str] = field(default_factory=lambda: ["c4", "books"])
    min_chars: int = 0

    def validate(self) -> list[str]:
        return [] if self.min_chars >= 0 else ["min_chars: must be >= 0"]


def _variants(ctx: Context) -> list[Variant]:
    s = ctx.settings
    counts = [Variant(name, {"slice": name, "min_chars": s.min_chars}) for name in s.slices]
    return counts + [Variant("total", {}, after=tuple(s.slices))]


def _run(variant: Variant, ctx: Context) -> dict:
    if variant.name == "total":
        parts = [json.loads((ctx.artifacts(n) / "count.json").read_text()) for n in variant.after]
        return {"docs": sum(p["docs"] for p in parts)}
    docs = [d for d in ctx.documents(variant.params["slice"])
            if len(d.text) >= variant.params["min_chars"]]
    (ctx.artifacts(variant.name) / "count.json").write_text(json.dumps({"docs": len(docs)}))
    return {"docs": len(docs), "chars": sum(len(d.text) for d in docs)}


def _build(results: dict, ctx: Context) -> Table:
    rows = [{"slice": n, "docs": r["docs"], "chars": r.get("chars")} for n, r in results.items()]
    total = results["total"]["docs"]
    claim = Claim("c4 has more documents than books", results["c4"]["docs"] > results["books"]["docs"],
                  f"{results['c4']['docs']} vs {results['books']['docs']}")
    return Table("counts", "Documents per slice", ["slice", "docs", "chars"], rows, [claim],
                 [f"{total} documents in all"])


COUNTS = TableSpec(name="doc-counts", title="Documents per slice", paper="none (a test table)",
                   differences=["not a paper table"], settings=CountSettings, variants=_variants,
                   run_variant=_run, build=_build, needs=(CORPUS,))


@pytest.fixture
def counts_table(monkeypatch, tmp_path):
    """Register COUNTS as the only table; a params.yaml and a `test` scale profile in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDROBE_TRACKING", "off")
    monkeypatch.setattr(runner, "TABLES", {"doc-counts": "doc_counts"})
    monkeypatch.setattr(runner, "get_spec", lambda name: {"doc-counts": COUNTS}[name])
    Path("params.yaml").write_text(yaml.safe_dump({"shared": {"seed": 7}}))
    Path("profiles").mkdir()
    Path("profiles/tables-test.yaml").write_text(yaml.safe_dump(
        {"tables": {"doc_counts": {"min_chars": 5}}}))
    layout = runner.Layout(Path("data/tables"), "test")
    docs = [Document(f"c{i}", "word " * (i + 1), "c4") for i in range(5)] + \
           [Document("b0", "a long book text", "books"), Document("b1", "tiny", "books")]
    runner.prepare("params.yaml", layout)
    write_corpus(layout.corpus, docs)
    return layout


def test_every_registered_table_has_a_spec_with_its_name():
    for name in TABLES:
        spec = get_spec(name)
        assert spec.name == name and spec.key == name.replace("-", "_")
        assert spec.differences and spec.paper
    with pytest.raises(KeyError, match="unknown table 'nope'"):
        get_spec("nope")


def test_prepare_writes_merged_params_variants_and_a_dvc_file(counts_table):
    layout = counts_table
    merged = yaml.safe_load(layout.params.read_text())
    assert merged["shared"]["seed"] == 7 and merged["tables"]["doc_counts"]["min_chars"] == 5
    variants = yaml.safe_load(layout.variants.read_text())
    assert variants == {"doc_counts": {"c4": {"slice": "c4", "min_chars": 5},
                                       "books": {"slice": "books", "min_chars": 5}, "total": {}}}
    stages = yaml.safe_load(layout.dvc_file.read_text())["stages"]
    assert list(stages) == ["corpus", "tokenizer", "doc-counts-c4", "doc-counts-books",
                            "doc-counts-total", "doc-counts"]
    c4 = stages["doc-counts-c4"]
    assert c4["wdir"] == "../../.."
    assert c4["cmd"].endswith("--step variant --variant c4")
    assert {str(layout.variants): ["doc_counts.c4"]} in c4["params"]
    assert str(layout.corpus) in c4["deps"] and "data/tables/test/tokenizer" not in c4["deps"]
    total = stages["doc-counts-total"]
    assert "data/tables/test/doc-counts/work/artifacts/c4" in total["deps"]
    assert c4["deps"][0] == "src/redrobe/tables/doc_counts.py"   # its own module, not the others
    assert "src/redrobe/tables" not in c4["deps"]
    render = stages["doc-counts"]["deps"]
    assert render[0] == "src/redrobe/tables/doc_counts.py" and "src/redrobe/tables/render.py" in render
    assert render[-3:] == [
        f"data/tables/test/doc-counts/variants/{v}.json" for v in ("c4", "books", "total")]
    # rewriting with nothing changed leaves the files untouched (DVC sees no change)
    before = layout.dvc_file.stat().st_mtime_ns
    runner.prepare("params.yaml", layout)
    assert layout.dvc_file.stat().st_mtime_ns == before


def test_variants_then_render_write_results_markdown_csv_and_verdicts(counts_table):
    layout = counts_table
    for name in ("c4", "books", "total"):
        runner.run_variant(COUNTS, layout, name)
    c4 = json.loads(layout.result(COUNTS, "c4").read_text())
    assert c4["docs"] == 5 and c4["chars"] == sum(5 * (i + 1) for i in range(5))
    assert json.loads(layout.result(COUNTS, "books").read_text())["docs"] == 1   # "tiny" < 5 chars
    assert json.loads(layout.result(COUNTS, "total").read_text())["docs"] == 6
    table, markdown = runner.render(COUNTS, layout)
    assert "| slice | docs | chars |" in markdown and "| total | 6 | — |" in markdown
    assert "- **holds**: c4 has more documents than books (5 vs 1)" in markdown
    assert "## What differs from the paper" in markdown
    rows = list(csv.DictReader(io.StringIO(layout.output(COUNTS, "csv").read_text())))
    assert rows[-1] == {"slice": "total", "docs": "6", "chars": ""}
    summary = json.loads(layout.output(COUNTS, "json").read_text())
    assert summary["claims"][0]["verdict"] == "holds" and summary["rows"] == 3


def test_render_names_a_missing_variant_result(counts_table):
    with pytest.raises(InputError, match="c4.json: missing"):
        runner.render(COUNTS, counts_table)


def test_unknown_scale_and_bad_settings_are_named(counts_table):
    with pytest.raises(InputError, match=r"tables-huge.yaml.*known: test"):
        runner.resolve_params("params.yaml", "huge")
    Path("profiles/tables-bad.yaml").write_text(yaml.safe_dump(
        {"tables": {"doc_counts": {"min_chars": -1, "colour": "red"}}}))
    runner.resolve_params("params.yaml", "bad")   # the tables section is checked per table
    with pytest.raises(ConfigError) as err:
        runner.prepare("params.yaml", runner.Layout(Path("data/tables"), "bad"))
    assert "tables.doc_counts.colour: unknown key" in str(err.value)
    assert runner.main(["doc-counts", "--scale", "bad", "--no-dvc"]) == 2


def test_variant_names_and_order_are_checked():
    bad = TableSpec(name="x", title="x", paper="x", differences=["x"], settings=CountSettings,
                    variants=lambda ctx: [Variant("B-1", {})], run_variant=_run, build=_build)
    ctx = Context(params_from_dict({}), CountSettings(), "test", Path("."))
    with pytest.raises(ValueError, match="variant name 'B-1'"):
        runner.table_variants(bad, ctx)
    late = TableSpec(name="x", title="x", paper="x", differences=["x"], settings=CountSettings,
                     variants=lambda ctx: [Variant("a", {}, after=("b",)), Variant("b", {})],
                     run_variant=_run, build=_build)
    with pytest.raises(ValueError, match=r"runs after \['b'\]"):
        runner.table_variants(late, ctx)


def test_cells_and_csv():
    assert [cell(None), cell(True), cell(0.123456), cell(12), cell("a|b")] == \
        [MISSING, "yes", "0.1235", "12", "a\\|b"]
    table = Table("t", "T", ["a", "b"], [{"a": 1.5, "b": None}])
    assert to_csv(table) == "a,b\n1.5,\n"
    spec = TableSpec(name="t", title="T", paper="P", differences=[], settings=CountSettings,
                     variants=_variants, run_variant=_run, build=_build)
    assert "## Claims" not in to_markdown(table, spec, "tiny")


@pytest.mark.parametrize("scale", ["sample", "full", "tiny"])
def test_every_shipped_scale_profile_is_valid_for_every_table(scale, repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    assert runner.scales() == ["full", "sample", "tiny"]
    runner.prepare(repo_root / "params.yaml", runner.Layout(tmp_path, scale))
    variants = yaml.safe_load((tmp_path / scale / "variants.yaml").read_text())
    assert set(variants) == {name.replace("-", "_") for name in TABLES}


def _code(stage: dict) -> list[str]:
    return [d for d in stage["deps"] if d.startswith("src/")]


def test_generated_stages_depend_on_every_module_they_import(tmp_path):
    """The code deps are the import closure of what each step runs: a change to any module
    a variant imports (train/precision.py through tables/lm.py, errors, accounting...) reruns
    it; another table's module does not."""
    tables = [(get_spec(name), [Variant("v", {})]) for name in TABLES]
    stages = runner.dvc_stages(runner.Layout(tmp_path, "test"), tables)["stages"]
    t5, lora = _code(stages["t5-repeats-v"]), _code(stages["lora-rank-v"])
    slim = _code(stages["slimpajama-v"])
    assert "src/redrobe/train" in t5 and "src/redrobe/train" in lora   # through tables/lm.py
    assert not [d for d in t5 + lora if d.startswith("src/redrobe/stages/")]   # no stage glue
    assert "src/redrobe/errors.py" in lora   # lora_rank imports redrobe.errors itself
    assert {"src/redrobe/accounting.py", "src/redrobe/shardcache.py", "src/redrobe/errors.py",
            "src/redrobe/dedup"} <= set(slim)   # through redrobe.dedup.shards
    for name, module in TABLES.items():
        for stage in (f"{name}-v", name):
            code = _code(stages[stage])
            assert code[0] == f"src/redrobe/tables/{module}.py"
            others = {f"src/redrobe/tables/{m}.py" for m in TABLES.values() if m != module}
            assert not others & set(code), f"{stage} depends on another table: {others & set(code)}"
            missing = uncovered(import_closure(f"redrobe.tables.{module}", SOURCE), code)
            assert not missing, f"{stage}: {missing}"
    assert "src/redrobe/tables/lm.py" not in slim   # only the LM tables train models
    assert "src/redrobe/tables/render.py" in _code(stages["slimpajama"])
    assert "src/redrobe/tables/runner.py" not in t5   # the driver is not a dep
    tokenizer = _code(stages["tokenizer"])
    assert {"src/redrobe/tokenizer.py", "src/redrobe/tables/spec.py", "src/redrobe/curriculum"} \
        <= set(tokenizer)   # trained on the training split only


def test_corpus_stage_lists_the_code_deps_of_the_main_ingest_stage(repo_root, tmp_path):
    main = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["ingest"]["deps"]
    corpus = runner.dvc_stages(runner.Layout(tmp_path, "test"), [])["stages"]["corpus"]["deps"]
    closure = import_closure("redrobe.stages.ingest", SOURCE)
    assert not uncovered(closure, corpus)
    # every path dvc.yaml declares for ingest that ingest's code reaches: the same list
    reached = [d for d in main if d.startswith("src/") and any(covered(p, [d]) for p in closure)]
    assert set(corpus) == set(reached)
    assert {"src/redrobe/stages/ingest.py", "src/redrobe/stages/common.py", "src/redrobe/errors.py",
            "src/redrobe/accounting.py", "src/redrobe/sources"} <= set(corpus)
