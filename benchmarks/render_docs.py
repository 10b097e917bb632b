"""Render docs/performance.md from the benchmark results in benchmarks/results/*.json.

    .venv/bin/python benchmarks/render_docs.py            # (re)write docs/performance.md
    .venv/bin/python benchmarks/render_docs.py --check    # exit 1 when the page is stale
    make docs                                             # the same as the first line

The page is never edited by hand: every number in it comes from a results file, and
the prose around the numbers lives here, next to the code that formats them. Each
results file gets one section (``## <stem>: <title>``); a file without a renderer of
its own (a new benchmark) gets a generic section listing its scalar values, so it
never silently lacks one. The commands to rerun each benchmark are read from the
docstring of ``benchmarks/<stem>.py``. Every benchmark script calls :func:`render`
after writing its JSON, so the page follows the results; ``--check`` and
tests/test_performance_docs.py catch a page that does not.

Output is deterministic: sections in file-name order, generic keys sorted, fixed
float formatting, and nothing from the clock, the machine or git.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import statistics
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "performance.md"
FALLBACK_NOTE = "The renderer for this file failed"
MACHINE_KEYS = ("command", "machine", "hostname", "platform", "cpu", "cpus", "cores", "threads",
                "precision", "python", "torch", "transformers", "datatrove_version", "spacy_version",
                "commit", "git_commit", "date", "load_average", "load_average_at_start")

Json = dict[str, Any]


# ---------------------------------------------------------------- formatting


def num(x: Any, sig: int = 3) -> str:
    """A number with about `sig` significant digits, never in exponent form; None as a dash."""
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 10 ** (sig - 1):
        return f"{int(x):,}"
    if x == 0:
        return "0"
    decimals = max(0, sig - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def plain(x: float) -> str:
    """A setting as written (0.8, not 0.800)."""
    return f"{x:g}"


def fixed(x: float | None, decimals: int) -> str:
    return "—" if x is None else f"{x:.{decimals}f}"


def pct(x: float | None, decimals: int = 1) -> str:
    return "—" if x is None else f"{x * 100:.{decimals}f} %"


def times(x: float, decimals: int = 2) -> str:
    return f"{x:.{decimals}f}×"


def gain(new: float, old: float) -> str:
    """Relative change of `new` over `old` in whole percent, signed."""
    return f"{(new / old - 1) * 100:+.0f} %"


def span(values: Iterable[float], fmt: Callable[[float], str]) -> str:
    """'a–b' over the formatted minimum and maximum, or one value when they print alike."""
    vals = sorted(values)
    lo, hi = fmt(vals[0]), fmt(vals[-1])
    return lo if lo == hi else f"{lo}–{hi}"


def para(text: str) -> str:
    """One prose paragraph, wrapped at 100 columns (never inside a word)."""
    return textwrap.fill(" ".join(text.split()), width=100, break_long_words=False,
                         break_on_hyphens=False)


def bullets(items: Iterable[str]) -> str:
    return "\n".join(textwrap.fill(" ".join(i.split()), width=100, initial_indent="- ",
                                   subsequent_indent="  ", break_long_words=False,
                                   break_on_hyphens=False) for i in items)


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; `align` gives l/r per column (default: first left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def ordered(keys: Iterable[str], preferred: Iterable[str]) -> list[str]:
    """`preferred` keys that are present, in that order, then the others sorted."""
    keys = list(keys)
    first = [k for k in preferred if k in keys]
    return first + sorted(k for k in keys if k not in first)


def suffix_of(d: Json, prefix: str) -> str:
    """The rest of the first key of `d` that starts with `prefix` (a threshold in a key name)."""
    return next(k[len(prefix):] for k in sorted(d) if k.startswith(prefix))


def join_blocks(blocks: Iterable[str]) -> str:
    return "\n\n".join(b.strip("\n") for b in blocks if b)


# ---------------------------------------------------------------- generic parts


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Scalars (and lists of scalars) of nested dicts under dotted keys; lists of objects counted."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key in sorted(data, key=str):
            out.update(flatten(data[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list):
        if all(not isinstance(x, (dict, list)) for x in data):
            return {prefix: " / ".join(num(x, 4) for x in data)}
        return {prefix: f"(a list of {len(data)} entries)"}
    return {prefix: num(data, 4)}


def run_info(data: Json) -> str:
    """The machine, versions and command the results file records, if any."""
    found: dict[str, Any] = {}
    for scope in (data, data.get("config") if isinstance(data.get("config"), dict) else {}):
        found.update({k: scope[k] for k in MACHINE_KEYS if k in scope and k not in found})
    if not found:
        return ""
    parts = [f"{k} `{str(found[k]).strip()}`" if k == "command" else f"{k} {machine_value(found[k])}"
             for k in MACHINE_KEYS if k in found]
    return para("Recorded with these results: " + "; ".join(parts) + ".")


def machine_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {machine_value(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return " / ".join(num(x) for x in value)
    return num(value)


def generic_section(data: Json) -> str:
    rows = [[f"`{k}`", v] for k, v in flatten(data).items()]
    note = para("This results file has no renderer of its own in `benchmarks/render_docs.py` "
                "yet; these are its values, nested keys flattened.")
    return join_blocks([note, table(["key", "value"], rows, "lr")])


# ---------------------------------------------------------------- rerun commands


def docstring_commands(script: Path) -> list[str]:
    """The indented example command lines of a script's docstring (continuations joined)."""
    if not script.exists():
        return []
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    commands: list[str] = []
    indent = None
    for line in doc.splitlines():
        depth = len(line) - len(line.lstrip())
        if depth and script.name in line:
            commands.append(line.strip())
            indent = depth
        elif commands and indent is not None and depth > indent and line.strip():
            commands[-1] += " " + line.strip()
        else:
            indent = None
    return commands


def rerun_block(stems: list[str], scripts: Path) -> str:
    lines = []
    for stem in stems:
        cmds = docstring_commands(scripts / f"{stem}.py")
        lines += [f"# {stem}"] + (cmds or [f"# (no benchmarks/{stem}.py docstring command found)"])
    return "```bash\n" + "\n".join(lines) + "\n```"


# ---------------------------------------------------------------- sections


def architecture(d: Json) -> str:
    m, variants, base = d["model"], d["variants"], d["variants"][0]
    names = " and ".join(f"`{v['variant']}`" for v in variants[1:])
    intro = para(
        f"`benchmarks/architecture.py` compares the `{base['variant']}` model with {names}. "
        "All start from the same seed and train with redrobe's own loop on the same token "
        "windows, so losses are compared at equal tokens.")
    setup = para(
        f"Data: {d['data']}. Model: hidden {m['hidden_size']}, {m['num_layers']} layers, "
        f"{m['num_heads']} heads, intermediate {m['intermediate_size']}, sequence length "
        f"{m['max_seq_len']}, batch {d['batch_size']}, {d['steps']} steps "
        f"({num(base['tokens'])} tokens per variant), {d['threads']} threads. The whole run took "
        f"{num(d['seconds'])} s.")
    inits = [v["initial_val_loss"] for v in variants]
    after = para(
        f"Each variant trained on {num(base['tokens'])} tokens; the initial validation loss was "
        f"{span(inits, lambda x: fixed(x, 2))}. On a shared machine the tokens/s column reflects "
        "the load during each run as much as the variant. FFN sharing does not reduce the FLOPs "
        "per token (every layer still runs an MLP): it saves memory and parameters, not compute.")
    return join_blocks([intro, setup, architecture_variants(d), after, architecture_attention(d),
                        architecture_reading()])


def architecture_variants(d: Json) -> str:
    rows = []
    for v in d["variants"]:
        p = v["parameters"]
        params = f"{num(p['total'])} / {num(p['non_embedding'])}"
        if v["ffn_saving_formula"]:
            params += f" (−{num(v['ffn_saving_formula'])} by formula, {fixed(v['params_ratio'], 3)}×)"
        delta = "—" if v is d["variants"][0] else f"{v['val_loss_delta']:+.3f}"
        rows.append([v["variant"], params, num(v["tokens_per_s"], 4), fixed(v["final_train_loss"], 3),
                     fixed(v["final_val_loss"], 3), delta])
    header = ["variant", "params (total / non-emb.)", "tokens/s", "final train loss",
              "final val loss", "Δ val vs default"]
    return table(header, rows, "llrrrr")


def architecture_attention(d: Json) -> str:
    att = d["attention"]
    intro = para(
        "The attention op alone (forward + backward, one sequence): full causal SDPA against "
        "the blockwise window kernel, with the attention FLOPs per layer, "
        "`4 × width × (query, key) pairs`. \"Dense\" counts the full T×T matrix; \"kept\" only "
        "what the mask keeps, which is what an ideal kernel would compute.")
    rows = [[f"{a['seq_len']} (window {a['window']})", fixed(a["full_seconds"], 3),
             fixed(a["window_seconds"], 3), times(a["speedup"]),
             f"{mega(a['full_flops']['computed'])} → {mega(a['window_flops']['computed'])}",
             f"{mega(a['full_flops']['kept'])} → {mega(a['window_flops']['kept'])} "
             f"({times(a['flops_ratio_kept'], 1)})"] for a in att]
    header = ["seq len", "full causal SDPA (s)", "blockwise window (s)", "speed ratio",
              "FLOPs/layer, dense: full → window", "kept: full → window (ratio)"]
    last = att[-1]
    dense = last["full_flops"]["computed"] / last["window_flops"]["computed"]
    slower = [a["window_seconds"] / a["full_seconds"] for a in att]
    speed = (f"**slower in wall time** than PyTorch's fused causal SDPA kernel, by "
             f"{span(slower, lambda x: times(x, 1))}" if min(slower) > 1 else
             f"between {span([1 / s for s in slower], lambda x: times(x, 2))} the speed of PyTorch's "
             "fused causal SDPA kernel")
    after = para(
        f"At T = {last['seq_len']} the window kernel multiplies {times(dense, 0)} fewer entries "
        f"than dense attention. On CPU, however, it is {speed} over these lengths: it makes one "
        "SDPA call per block, each with a materialized mask, and the backward pass goes through "
        "a `cat`. A fused local-attention kernel (FlashAttention's `window_size` on GPU, or "
        "`flex_attention` with a sliding-window `BlockMask`) is what would turn the FLOP saving "
        "into speed; neither is measured here.")
    return join_blocks([intro, table(header, rows), after])


def architecture_reading() -> str:
    return "How to read these results:\n\n" + bullets([
        "FFN sharing removes 3·d·f parameters per shared layer (d the hidden size, f the "
        "intermediate size).",
        "At short sequences the sliding window saves almost nothing in the whole training "
        "step, because attention is a small share of the FLOPs; the saving shows once T is "
        "several times `window`.",
        "The blockwise kernel is a Python loop of SDPA calls; at these lengths its overhead "
        "outweighs the FLOPs it saves on CPU.",
        "The machine was shared with other jobs, so single timings are noisy: read the "
        "ratios from one run."])


def mega(x: float) -> str:
    return f"{num(x / 1e6)} M"


DT_SETS = {"gopher_quality": "Gopher quality", "gopher_repetition": "Gopher repetition", "c4": "C4",
           "chain": "chain (quality → repetition → C4)"}


def clean_vs_datatrove(d: Json) -> str:
    intro = para(
        "`benchmarks/clean_vs_datatrove.py` runs our Gopher quality, Gopher repetition and C4 "
        "rule sets (`src/redrobe/text/gopher.py`, `c4.py`) and datatrove "
        f"{d['datatrove_version']}'s `GopherQualityFilter`, `GopherRepetitionFilter` and "
        "`C4QualityFilter` (default thresholds on both sides) on the **same documents**, and "
        "reports throughput per core, the speedup and per-document decision agreement.")
    setup = para(
        "datatrove lives in its own virtualenv, `.venv-bench`, never in the project's `.venv` "
        "(it needs spaCy and pins that the project does not want): `--setup` builds it from "
        "`benchmarks/requirements-datatrove.txt`. The documents are the prose slices of the "
        "ingest output (`data/raw`: run `dvc repro ingest` first), at most `--max-docs` per "
        "slice and `--max-mb` in all, NFC-normalized as the clean stage does. The script runs "
        "itself under `.venv-bench` (`--datatrove-worker`) for datatrove's decision and CPU "
        "time per document and filter, then times ours in-process. Both sides pin themselves "
        "to one core with BLAS/OpenMP threads at 1 and are timed in process CPU time, because "
        "the machine is shared. Every filter runs on every document (so agreement is per rule "
        "set); the **chain** figure is what a quality → repetition → C4 pipeline spends: per "
        "document, the filters up to the first that removes it (ours also pays the Unicode "
        "normalization).")
    wall = para(
        f"Measured: {num(d['documents'])} documents, {num(d['mb'])} MB, one core each, CPU time. "
        f"Wall time of the whole run: ours {num(d['wall_seconds']['ours'])} s, datatrove "
        f"{num(d['wall_seconds']['datatrove'])} s.")
    return join_blocks([intro, setup, wall, dt_throughput(d), dt_agreement(d), dt_by_design(d),
                        dt_slices(d), dt_speed_work()])


def dt_throughput(d: Json) -> str:
    tp, rows = d["throughput"], []
    for key in ordered(d["speedup"], DT_SETS):
        ours, theirs = tp["ours"][key], tp["datatrove"][key]
        speedup = times(d["speedup"][key], 1)
        if key == "chain":
            speedup = f"**{speedup}** (target ≥ {times(d['target_speedup'], 0)})"
        rows.append([DT_SETS.get(key, key), num(ours["mb_per_s"]), num(theirs["mb_per_s"]),
                     num(ours["docs_per_s"]), num(theirs["docs_per_s"]), speedup])
    header = ["rule set", "ours MB/s", "datatrove MB/s", "ours docs/s", "datatrove docs/s", "speedup"]
    return table(header, rows)


def dt_causes(causes: Json) -> str:
    """'23 × datatrove `rule`' per cause key 'datatrove removes: rule'."""
    parts = []
    for key in sorted(causes):
        side, _, rule = key.partition(" removes: ")
        parts.append(f"{causes[key]} × {side} `{rule}`")
    return ", ".join(parts) or "—"


def dt_agreement(d: Json) -> str:
    agr = d["agreement"]
    rows = [[DT_SETS.get(k, k), pct(agr[k]["agreement"]), pct(agr[k]["agreement_excluding_by_design"]),
             f"{agr[k]['disagreements_by_design']} / {agr[k]['disagreements_other']}",
             dt_causes(agr[k]["disagreement_causes"])] for k in ordered(agr, DT_SETS)]
    header = ["rule set", "agreement", "excluding by-design rules", "disagreements by design / other",
              "causes"]
    kept = pct(agr["c4"]["kept_text_identical"]) if "c4" in agr else "—"
    after = para(
        f"Identical keep/drop decisions per document above. Where both keep a document, C4's "
        f"edited text (the kept lines) is identical in {kept}. \"Excluding by-design rules\" "
        "leaves out the documents whose removing side used a rule whose definition differs on "
        "purpose (`by_design` in the JSON, listed below).")
    return join_blocks([table(header, rows, "lrrrl"), after])


def dt_by_design(d: Json) -> str:
    groups: dict[str, list[str]] = {}
    for rule, why in d["by_design"].items():
        groups.setdefault(why, []).append(rule)
    items = [f"{why}: " + ", ".join(f"`{r}`" for r in sorted(rules)) for why, rules in sorted(groups.items())]
    quality = d["agreement"].get("gopher_quality", {}).get("disagreement_causes", {})
    note = ""
    if len(quality) == 1:
        (cause, n), = quality.items()
        note = para(
            f"With spaCy tokens every punctuation mark is a word, so verse, plays and some "
            f"punctuation-heavy pages fall under the alpha-word rule: all {n} Gopher-quality "
            f"disagreements are {cause.replace(' removes: ', ' removing for `')}`. Rules whose "
            "definitions agree (stop words, end-ellipsis lines, duplicate lines and paragraphs, "
            "lorem ipsum, curly bracket, line filters) produced no disagreement.")
    return join_blocks(["By-design differences (from the JSON):", bullets(items), note])


def dt_slices(d: Json) -> str:
    rows = [[name, num(s["docs"]), num(s["mb"]), num(s["kept_ours"]), num(s["kept_datatrove"]),
             pct(s["chain_agreement"])] for name, s in sorted(d["slices"].items())]
    header = ["slice", "docs", "MB", "kept by ours", "kept by datatrove", "chain agreement"]
    return join_blocks(["Per slice (chain):", table(header, rows)])


def dt_speed_work() -> str:
    return para(
        "Speed work in `src/redrobe/text`: RedPajama-V2 `normalized_words` deletes ASCII "
        "punctuation with `bytes.translate` on the UTF-8 bytes and splits once; `NgramIndex` "
        "builds word ids in one C-level pass and follows only the positions of repeated "
        "n-grams from n to n + 1, so each step sorts a shrinking subset; the Gopher "
        "paragraph/line splits use `str.split` where it equals the regex; C4 drops lines that "
        "cannot end in terminal punctuation before its per-line Python loop and matches the "
        "policy phrases with one regex. The Gopher stop-word rule requires *distinct* stop "
        "words, as Gopher (Rae et al., App. A) and datatrove do.")


CURRICULUM_LABELS = {"shuffled": "shuffled (baseline)", "stepwise": "stepwise",
                     "stepwise_replay": "stepwise + replay", "smooth_replay": "smooth + replay"}


def curriculum(d: Json) -> str:
    c, buckets = d["config"], d["bucket_tokens"]
    total = sum(buckets.values())
    intro = para(
        f"Same tiny LLaMA (hidden {c['hidden']}, {c['layers']} layers, seq {c['seq']}, batch "
        f"{c['batch']}, {c['steps']} steps = {num(d['tokens_per_run'])} tokens, seeded "
        "identically); only the data order differs. Validation on every slice's held-out "
        f"documents ({c['eval_batches']} batches per slice). Buckets: `{d['buckets']}`, "
        f"{len(buckets)} `{d['score']}` buckets of "
        + " / ".join(mega(v) for v in buckets.values())
        + f" tokens ({mega(total)} training tokens). Replay share {plain(c['replay'])}, "
        f"{c['threads']} thread(s).")
    means = d["mean_final_val"]
    rows = [[CURRICULUM_LABELS.get(k, k), curriculum_val(d["runs"][k]), fixed(d["ratio_vs_shuffled"][k], 3),
             curriculum_shares(d["runs"][k])] for k in ordered(means, CURRICULUM_LABELS)]
    header = ["schedule", "val loss", "ratio vs shuffled",
              "windows from " + " / ".join(sorted(buckets))]
    lead = para(f"Final overall validation loss, mean ± sd over {c['seeds']} seeds:")
    return join_blocks([intro, lead, table(header, rows, "lrrr"), curriculum_reading(d),
                        curriculum_by_bucket(d)])


def curriculum_val(runs: list[Json]) -> str:
    vals = [r["final_val"] for r in runs]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3f} ± {sd:.3f}"


def curriculum_shares(runs: list[Json]) -> str:
    keys = sorted(runs[0]["bucket_share"])
    return " / ".join(f"{statistics.mean(r['bucket_share'][k] for r in runs) * 100:.0f}" for k in keys) + " %"


def curriculum_reading(d: Json) -> str:
    runs, means = d["runs"], d["mean_final_val"]
    best = min(means, key=means.get)
    base = runs["shuffled"]
    beats = [f"{CURRICULUM_LABELS.get(k, k)} is lower in {lower_in(runs[k], base)} of {len(base)}"
             for k in ordered(runs, CURRICULUM_LABELS) if k != "shuffled"]
    sds = [statistics.stdev(r["final_val"] for r in rs) for rs in runs.values() if len(rs) > 1]
    gaps = [abs(v - means["shuffled"]) for v in means.values()]
    smooth = runs["smooth_replay"]
    first_share = statistics.mean(r["bucket_share"][min(r["bucket_share"])] for r in smooth)
    epoch = d["tokens_per_run"] / sum(d["bucket_tokens"].values())
    parts = [
        f"At {num(d['tokens_per_run'])} tokens ({pct(epoch, 0)} of one epoch) the lowest mean "
        f"validation loss is that of {CURRICULUM_LABELS.get(best, best)}. Seed by seed against the "
        "shuffled baseline, " + "; ".join(beats) + " seeds.",
        f"Smooth competence pacing spends {pct(first_share, 0)} of its windows in the easiest "
        "bucket, so it sees little of the hard data.",
        f"Seed-to-seed spread (sd up to {max(sds):.3f}) against gaps between schedule means of "
        f"up to {max(gaps):.3f}: treat these as indicative, not as significant results.",
    ]
    if "stepwise_replay" in runs and "stepwise" in runs:
        diff = means["stepwise_replay"] - means["stepwise"]
        helped = lower_in(runs["stepwise_replay"], runs["stepwise"])
        parts.insert(1, f"Replay changes the step-wise curriculum's loss by {diff:+.3f} on average "
                        f"(lower in {helped} of {len(runs['stepwise'])} seeds): without it the model "
                        "can forget the easy buckets it saw first.")
    return para(" ".join(parts))


def lower_in(runs: list[Json], base: list[Json]) -> int:
    """Seeds in which `runs` ends with a lower validation loss than `base`."""
    return sum(r["final_val"] < b["final_val"] for r, b in zip(runs, base))


def curriculum_by_bucket(d: Json) -> str:
    runs = d["runs"]
    keys = sorted(next(iter(runs.values()))[0]["val_by_bucket"])
    rows = [[CURRICULUM_LABELS.get(k, k)] + [fixed(statistics.mean(r["val_by_bucket"][b] for r in runs[k]), 3)
                                             for b in keys] for k in ordered(runs, CURRICULUM_LABELS)]
    return join_blocks(["Validation loss per difficulty bucket (mean over seeds):",
                        table(["schedule", *keys], rows)])


def minhash(d: Json) -> str:
    tp, acc = d["throughput"], d["accuracy"]
    band = "×".join(str(x) for x in tp["datasketch_bands_rows"])
    intro = para(
        "Process CPU time, one thread, both sides in the same run. Both start from the raw "
        "text and pay the RedPajama-V2 normalization; datasketch runs `MinHash` + "
        "`MinHashLSH` query and insert per document, ours computes signatures in batches, "
        "band keys and the sorted-key bucketing the dedup stage uses.")
    rows = [["documents/s", num(tp["ours_docs_per_s"]), num(tp["datasketch_docs_per_s"])],
            ["MB/s", num(tp["ours_mb_per_s"]), num(tp["datasketch_mb_per_s"])],
            ["ratio", f"**{times(tp['ratio'], 1)}**", times(1.0, 0)]]
    head = [f"throughput, {num(tp['documents'])} real documents ({num(tp['mb'])} MB of `{tp['source']}`)",
            f"ours (numpy, {'×'.join(str(x) for x in tp['ours_bands_rows'])})",
            f"datasketch (`MinHashLSH`, {band})"]
    acc_intro = para(
        f"Accuracy on {num(acc['families'])} real base documents of `{acc['source']}` with planted "
        f"copies over a range of target Jaccard similarities ({num(acc['documents'])} documents, "
        f"{num(acc['family_pairs'])} within-family pairs, true Jaccard from string sets). A pair "
        "is found when it shares an LSH band bucket; clustered when it ends in one connected "
        "component (what the dedup stage removes on), also with verification (only candidate "
        "pairs above the Jaccard threshold linked, as `dedup.minhash.verify` does).")
    return join_blocks([intro, table(head, rows), acc_intro, minhash_accuracy(acc),
                        minhash_buckets(acc), minhash_scurve(acc)])


def minhash_bandings(acc: Json) -> list[tuple[str, Json]]:
    ours = [(f"ours {k.replace('x', '×')}", v) for k, v in sorted(acc["ours"].items())]
    others = [(f"{k.split('_')[0]} {k.split('_', 1)[1].replace('x', '×')}", acc[k])
              for k in sorted(acc) if k.startswith("datasketch_")]
    return ours + others


def minhash_accuracy(acc: Json) -> str:
    sample = acc["ours"][sorted(acc["ours"])[0]]
    j_recall = suffix_of(sample, "pair_recall_at_j_ge_")
    j_prec = suffix_of(sample, "pair_precision_vs_j_ge_")
    rows = [[label, fixed(v[f"pair_recall_at_j_ge_{j_recall}"], 3),
             fixed(v[f"cluster_recall_at_j_ge_{j_recall}"], 3),
             fixed(v[f"pair_precision_vs_j_ge_{j_prec}"], 3),
             fixed(v["pair_precision_with_verify"], 3),
             fixed(v[f"verified_cluster_recall_at_j_ge_{j_recall}"], 3), num(v["candidate_pairs"])]
            for label, v in minhash_bandings(acc)]
    header = ["banding", f"pair recall, J ≥ {j_recall}", f"cluster recall, J ≥ {j_recall}",
              f"pair precision vs J ≥ {j_prec}", "with verify: precision", "with verify: cluster recall",
              "candidate pairs"]
    return table(header, rows)


def minhash_buckets(acc: Json) -> str:
    bands = minhash_bandings(acc)
    buckets = sorted(bands[0][1]["by_true_jaccard"])
    rows = []
    for b in buckets:
        cells = [fixed(v["by_true_jaccard"][b]["pair_recall"], 3) for _, v in bands]
        cells += [fixed(v["by_true_jaccard"][b]["cluster_recall"], 3) for _, v in bands]
        rows.append([b, num(bands[0][1]["by_true_jaccard"][b]["pairs"]), *cells])
    header = ["true J", "pairs"] + [f"pair recall: {lab}" for lab, _ in bands] + \
             [f"cluster recall: {lab}" for lab, _ in bands]
    return join_blocks(["Recall per true-Jaccard bucket:", table(header, rows)])


def minhash_scurve(acc: Json) -> str:
    curve = acc["s_curve"]
    bandings = sorted(next(iter(curve.values())))
    rows = [[j] + [fixed(curve[j][b], 3) for b in bandings] for j in sorted(curve)]
    table_md = table(["J"] + [f"P(share a band), {b.replace('x', '×')}" for b in bandings], rows)
    sample = acc["ours"][sorted(acc["ours"])[0]]
    j = suffix_of(sample, "pair_recall_at_j_ge_")
    text = []
    for b in bandings:
        if j in curve:
            bands, rows_ = b.split("x")
            text.append(f"with {bands}×{rows_} a single pair at J = {j} shares a band with "
                        f"probability 1 − (1 − {j}^{rows_})^{bands} = {fixed(curve[j][b], 2)}")
    best_key = max(acc["ours"], key=lambda k: acc["ours"][k][f"verified_cluster_recall_at_j_ge_{j}"])
    best = acc["ours"][best_key]
    bands, rows_ = best_key.split("x")
    after = para(
        "The S-curves: " + "; ".join(text) + ". Pair recall at high Jaccard is bounded by the "
        "banding for any MinHash implementation; transitive links (clusters) and a wider "
        f"banding recover it. The best of ours here: `bands: {bands}, rows: {rows_}` with "
        f"`verify: true`, cluster recall {fixed(best[f'verified_cluster_recall_at_j_ge_{j}'], 3)} "
        f"at J ≥ {j} and pair precision {fixed(best['pair_precision_with_verify'], 3)} on this corpus.")
    return join_blocks([table_md, after])


PIPELINE_MEMORY = {"raw_shards_mib": "raw shards (input size)", "clean_peak_rss_mib": "peak RSS of `clean`",
                   "dedup_peak_rss_mib": "peak RSS of `dedup`"}


def pipeline_sizes(d: Json) -> str:
    """'4 times' from the memory keys x1 / x4."""
    return " / ".join(k[1:] for k in sorted(d["memory"]) if k != "x1") + " times"


def pipeline(d: Json) -> str:
    flow = " --flow" if d["launcher"] == "prefect flow" else ""
    launcher = "Prefect flow" if flow else f"`{d['launcher']}`"
    intro = para(
        f"Measured with `.venv/bin/python benchmarks/pipeline.py{flow}`, which copies the "
        f"repository to a temporary directory and runs `{d['profile']}` through the "
        f"{launcher} (the sample archives already downloaded, shared through "
        "`.cache/dists`), then a no-op `dvc repro`, then the peak memory of the data stages on "
        f"the corpus and on the corpus repeated {pipeline_sizes(d)}.")
    total = d["pipeline_seconds"]
    rows = [[f"`{s}`", num(t), pct(t / total, 0)] for s, t in d["stage_seconds"].items()]
    rows += [[f"**whole pipeline ({launcher})**", f"**{num(total)}**", ""],
             ["no-op `dvc repro` (nothing changed)", num(d["noop_repro_seconds"]), ""]]
    stages = table(["stage", "wall s", "share of the pipeline"], rows)
    mem = d["memory"]
    ratio = next(v for k, v in sorted(d.items()) if k.startswith("memory_ratio_"))
    sizes = sorted(mem)
    mrows = [[PIPELINE_MEMORY.get(k, k)] + [num(mem[s][k]) for s in sizes] + [times(ratio[k])]
             for k in ordered(mem[sizes[0]], PIPELINE_MEMORY)]
    memory = table(["MiB", *(f"corpus {s.replace('x', '×')}" for s in sizes), "ratio"], mrows)
    after = para(
        "Where the time goes: `clean` stores the RedPajama-V2 signals "
        "(`clean.store_signals: false` turns that off); `dedup` includes the semantic pass "
        "(encoding with all-MiniLM-L6-v2, so its peak RSS includes torch and that encoder); "
        "`quality` runs the Great Expectations suites per stage, mostly GE's fixed cost per "
        "checkpoint; `evaluate` includes the math task (a LoRA adaptation and its scoring) and "
        "HumanEval in the sandbox. Data stages stream shards in batches of "
        "`shared.batch_docs` documents, so their memory stays flat as the corpus grows; dedup "
        "keeps only ids, hashes and band keys per document, so its index grows with documents.")
    return join_blocks([intro, stages, memory, after])


EXECUTORS = {"local": "local pool", "ray": "Ray"}


def scaling(d: Json) -> str:
    corpus = d["corpus"]
    small, big = scaling_sizes(d)
    docs = " / ".join(f"{k}x = {num(corpus['docs'][str(k)])} documents" for k in (small, big))
    workers = " and ".join(str(w) for w in sorted({r["workers"] for r in d["runs"]}))
    intro = para(
        f"Clean on {workers} workers with the local pool and with Ray, at {small}x and {big}x "
        f"corpus, and dedup at both sizes, in {num(d['benchmark_s'])} s. The corpus is the real "
        f"sample: per slice the first {num(corpus['chars_per_slice'])} characters of whole "
        f"documents, as {corpus['shards_per_slice']} shards of equal size ({docs}); {big}x repeats "
        f"every shard's documents {big} times in the same shard (ids suffixed), so each shard is "
        f"{big} times longer. `shared.batch_docs` is {corpus['batch_docs']}, so even {small}x "
        "shards span several batches. Each run is a fresh process running the stage's `main`; the "
        "parent samples its process tree with psutil and keeps the peak RSS of the stage "
        "process (driver), of the largest single task worker, and of the whole tree summed "
        "(Ray's daemons included; RSS counts shared pages in every process, so the sum is an upper bound).")
    return join_blocks([intro, scaling_times(d), scaling_memory(d)])


def scaling_sizes(d: Json) -> tuple[int, int]:
    sizes = sorted(int(k) for k in d["corpus"]["docs"])
    return sizes[0], sizes[-1]


def scaling_runs(d: Json, stage: str) -> dict[tuple[str, int], dict[int, Json]]:
    """{(executor, size): {workers: run}} for one stage, executors in their run order."""
    out: dict[tuple[str, int], dict[int, Json]] = {}
    for r in d["runs"]:
        if r["stage"] == stage:
            out.setdefault((r["executor"], r["size"]), {})[r["workers"]] = r
    return out


def scaling_times(d: Json) -> str:
    groups, rows, speed = scaling_runs(d, "clean"), [], {}
    workers = sorted({w for g in groups.values() for w in g})
    for (ex, size), g in groups.items():
        lo, hi = g[workers[0]]["stage_s"], g[workers[-1]]["stage_s"]
        speed[(ex, size)] = lo / hi
        rows.append([f"{EXECUTORS.get(ex, ex)}, {size}x ({num(g[workers[0]]['docs'])} docs)"]
                    + [num(g[w]["stage_s"]) + " s" for w in workers] + [fixed(lo / hi, 2)])
    header = ["clean", *(f"{w} worker{'s' if w > 1 else ''}" for w in workers), "speedup"]
    ray = [r["ray_start_s"] for r in d["runs"] if r["executor"] == "ray"]
    sizes = sorted({s for _, s in groups})
    local = [speed[("local", s)] for s in sizes if ("local", s) in speed]
    after = para(
        f"Ray's start, and the import of the stage in its workers, is timed apart "
        f"(`ray_start_s`, {span(ray, lambda x: num(x, 2))} s here), as a cluster starts once, not "
        "per stage. At the small size the stage is mostly fixed cost (imports, each worker "
        f"loading the language-ID model); the local pool's speedup goes "
        f"{' → '.join(fixed(s, 2) for s in local)} of the ideal {workers[-1]} from "
        f"{sizes[0]}x to {sizes[-1]}x. Ray adds its task round trips and daemons, which compete "
        "for the same cores here: it is there for more cores than one machine has, not to beat "
        "the pool on a laptop.") if ray and local else ""
    return join_blocks([table(header, rows), after])


SCALING_METRICS = {"driver_mb": "driver", "worker_mb": "largest worker", "tree_mb": "whole tree"}


def scaling_memory(d: Json) -> str:
    small, big = scaling_sizes(d)
    rows, growth = [], []
    for stage in dict.fromkeys(r["stage"] for r in d["runs"]):
        groups = scaling_runs(d, stage)
        for ex in dict.fromkeys(e for e, _ in groups):
            for w, lo in groups.get((ex, small), {}).items():
                hi = groups.get((ex, big), {}).get(w)
                if hi:
                    rows += scaling_memory_rows(stage, ex, w, lo, hi)
                    keys = ("driver_mb", "worker_mb") if stage == "clean" else ()
                    growth += [hi[k] / lo[k] for k in keys if lo[k]]
    header = ["peak RSS, MB", f"{small}x", f"{big}x", f"{big}x / {small}x"]
    after = para(
        f"As the shards grow {big} times, clean's driver and largest worker grow by at most "
        f"{times(max(growth))}: each task streams `batch_docs` documents at a time, and the few "
        "percent of RSS a worker gains is the allocator's. A Ray worker sits above a forked pool "
        "worker (Ray's own libraries), and Ray's daemons count per machine, not per task. "
        "Dedup's driver grows with documents, as its MinHash/LSH index is sized by documents.")
    return join_blocks([table(header, rows), after])


def scaling_memory_rows(stage: str, ex: str, w: int, small: Json, big: Json) -> list[list[str]]:
    rows = []
    for key, label in SCALING_METRICS.items():
        single = key == "tree_mb" and small["tree_mb"] == small["driver_mb"]
        if not small[key] or single:
            continue
        rows.append([f"{stage}, {EXECUTORS.get(ex, ex)}, {w} worker{'s' if w > 1 else ''}: {label}",
                     fixed(small[key], 1), fixed(big[key], 1), fixed(big[key] / small[key], 2)])
    return rows


def semantic(d: Json) -> str:
    text = para(
        f"The bare `SentenceTransformer.encode` of {d['documents']} real texts from "
        f"{d['source']} (the `head` views our pass embeds, batch {d['batch_size']}) ran at "
        f"{num(d['bare_encode_docs_per_s'])} docs/s; the whole semantic pass (read shards, views, "
        "encode, write .npy, k-means, blockwise pairs, union-find) at "
        f"{num(d['semantic_dedup_docs_per_s'])} docs/s: **ratio {fixed(d['ratio'], 2)}** (target ≥ "
        f"{plain(d['target'])}; best of {d['rounds']} alternating rounds, torch with "
        f"{d['threads']} threads). The pass found {d['dedup_stats']['pairs']} pair(s) and removed "
        f"{d['dedup_stats']['removed']} document(s).")
    scale = d.get("clustering_only")
    if scale:
        encode_min = scale["embeddings"] / d["bare_encode_docs_per_s"] / 60
        text += "\n\n" + para(
            f"Clustering and pair search alone on {num(scale['embeddings'])} stored embeddings "
            f"took {num(scale['seconds'])} s ({scale['kmeans_clusters']} k-means clusters, the "
            f"largest {num(scale['largest_kmeans_cluster'])}), against about {num(encode_min, 2)} "
            "minutes to encode that many documents at the bare rate: the encoder is the limit. "
            "`-S dedup.semantic.enabled=false` skips the pass.")
    return text


CODE_VIEWS = ("head", "strip_header")


def semantic_choice(d: Json) -> str:
    thr = plain(d["threshold"])
    intro = para(
        "What should MiniLM embed? Evidence for the `dedup.semantic` defaults: pairs at cosine "
        f"≥ {thr} on real code and prose when the encoder reads the first {d['max_words']} words "
        "(`head`) or the head after the leading comment/docstring/license blocks are stripped "
        "(`strip_header`). A pair counts as false when the two *whole* documents have a word "
        "5-gram Jaccard below the threshold in the column name, i.e. they are not "
        "near-duplicates past what MiniLM reads.")
    return join_blocks([intro, choice_code(d), choice_prose(d), choice_planted(d)])


def choice_code(d: Json) -> str:
    rows = []
    for corpus in ("github", "stdlib"):
        r = d.get(corpus)
        if not r:
            continue
        false_key = f"pairs_full_text_jaccard_below_{suffix_of(r['head'], 'pairs_full_text_jaccard_below_')}"
        swap = r["header_swap"]
        rows += [[f"{corpus} ({num(r['documents'])} files)", f"`{v}`", num(r[v]["pairs"]),
                  num(r[v][false_key]), num(r[v]["documents_in_pairs"]),
                  fixed(r[v]["median_full_text_jaccard"], 3),
                  f"{swap['found'][v]} / {swap['planted_pairs']}"] for v in CODE_VIEWS]
    header = ["code", "view", "pairs", "false pairs", "files in pairs", "median full-text Jaccard",
              "same code under another header found"]
    after = para(
        "On code the raw head is dominated by the license header, and the same code under "
        "another header is missed; `strip_header` finds it. After the header, MiniLM's word "
        "pieces are often template code, so many code pairs are not duplicates of the whole "
        "file: code is left to exact + MinHash dedup over the full file, and `strip_header` is "
        "the view used when github is added to `slices`.")
    return join_blocks([table(header, rows, "llrrrrr"), after])


def choice_prose(d: Json) -> str:
    real = d["prose_real"]
    rows = []
    for name, r in sorted(real.items()):
        false_key = f"pairs_full_text_jaccard_below_{suffix_of(r, 'pairs_full_text_jaccard_below_')}"
        rows.append([name, num(r["documents"]), num(r["pairs"]), num(r[false_key]),
                     num(r["documents_in_pairs"]), fixed(r["median_full_text_jaccard"], 3)])
    header = ["prose (`head`)", "documents", "pairs", "false pairs", "documents in pairs",
              "median full-text Jaccard"]
    total = sum(r["pairs"] for r in real.values())
    false = sum(r[k] for r in real.values() for k in r if k.startswith("pairs_full_text_jaccard_below_"))
    after = para(
        f"On the real prose slices {total} pair(s) reach the threshold, {false} of them false: "
        "the Lee news corpus behind c4 repeats several articles word for word and holds updated "
        "versions of the same story.")
    return join_blocks([table(header, rows), after])


PLANTED = {"replace_10pct": "10 % of the words replaced", "drop_every_8th": "every 8th word dropped",
           "shuffle_sentences": "sentences shuffled"}


def choice_planted(d: Json) -> str:
    p = d["prose_planted"]
    kinds = [k for k in ordered(p, PLANTED) if isinstance(p[k], dict) and "found" in p[k]]
    rows = [[PLANTED.get(k, k), f"{p[k]['found']} / {p[k]['planted']}", fixed(p[k]["median_cosine"], 3),
             fixed(p[k]["min_cosine"], 3)] for k in kinds]
    intro = para(
        f"Planted edited copies of {p['originals']} real c4/wikipedia documents (pairs among the "
        f"distinct originals themselves: {p['pairs_among_originals']}, the real repeats above). "
        "On documents longer than the encoder's window, shuffled sentences put different "
        "sentences first:")
    return join_blocks([intro, table(["edit", "found", "median cosine", "min cosine"], rows)])


SIGNAL_PARTS = {"document_signals": "document signals", "line_signals": "line signals",
                "language_id": "language id (prefix)"}


def signals(d: Json) -> str:
    intro = para(
        f"On `{d['corpus']}` ({num(d['documents'])} documents, {num(d['megabytes'])} MB; CPU "
        "seconds of one single-threaded process):")
    parts = [("`compute_signals` + `signals_to_json`", d["compute_signals_and_json"])]
    parts += [(SIGNAL_PARTS.get(k, k), d["parts"][k]) for k in ordered(d["parts"], SIGNAL_PARTS)]
    rows = [[name, num(r["seconds"]), num(r["docs_per_s"]), num(r["mb_per_s"])] for name, r in parts]
    ref = d["vs_plain_reference"]
    after = para(
        "Against a plain implementation of the same definitions (the reference in "
        f"`tests/text/test_rpv2.py`, checked equal first) on {ref['documents']} documents: "
        f"{times(ref['speedup'], 1)} faster ({num(ref['reference_s'])} s vs "
        f"{num(ref['redrobe_s_without_langid'])} s, language id excluded). The JSON column is "
        f"{num(d['json_bytes_per_text_byte'])} bytes per text byte, almost all of it the per-line "
        "spans (RedPajama-V2's format).")
    return join_blocks([intro, table(["part", "CPU s", "docs/s", "MB/s"], rows), after])


SIDES = {"ours": "**ours** (defaults: fused forward, freed memory kept)",
         "ours_compile": "ours + `compile=True`",
         "ours_unfused": "ours, `fused=False` (transformers' forward)",
         "ours_malloc_default": "ours, `keep_memory=False` (glibc default)",
         "trainer": "Trainer",
         "trainer_kept_memory": "Trainer in a process with the freed memory kept"}
MFU = "6(N+head)"


def train_vs_trainer(d: Json) -> str:
    c, p = d["config"], d["params"]
    intro = para(
        "Same model, same batches, same optimisation on every side: the pipeline LLaMA "
        f"(hidden {c['hidden']}, {c['layers']} layers, {c['heads']} heads, intermediate "
        f"{c['intermediate']}, vocab {c['vocab']}, untied head, seq {c['seq']}; "
        f"{mega(p['total'])} parameters: {mega(p['non_embedding'])} in the blocks, "
        f"{mega(p['embedding'])} input embedding, {mega(p['lm_head'])} lm_head), {c['precision']}, "
        f"batch {c['batch']} × {c['seq']} tokens per step, AdamW, warmup + cosine to min_lr, "
        f"gradient clipping. Tokens: {c['tokens']}. The Trainer gets the same windows in the same order. "
        "Each timed run is a fresh child process, so no side inherits another's allocator "
        "setting, thread pool or compiled kernels. Timing: from the end of step "
        f"{c['warmup_steps_excluded']} to the end of step {c['steps']}; the sides take turns; "
        f"best and median of {c['rounds']} rounds.")
    peak = para(
        f"The peak, measured in the same run (best of {' / '.join(str(s) for s in d['peak_sizes'])} "
        f"square fp32 matmuls on all threads), was {num(d['peak_flops'] / 1e9, 4)} GFLOP/s. MFU "
        "below counts 6 × (all parameters but the input embedding) × tokens, 6·(N+head), "
        "transformers' `num_parameters(exclude_embeddings=True)`.")
    return join_blocks([intro, peak, tvt_sides(d), "Reading:", tvt_reading(d), tvt_options(d),
                        tvt_profile(d)])


def tvt_sides(d: Json) -> str:
    sides, trainer = d["sides"], d["sides"]["trainer"]
    rows = []
    for k in ordered(sides, SIDES):
        s = sides[k]
        vs = f"{times(s['best']['tokens_per_s'] / trainer['best']['tokens_per_s'])} " \
             f"({times(s['median_tokens_per_s'] / trainer['median_tokens_per_s'])})"
        rounds = ", ".join(f"{r['tokens_per_s']:.0f}" for r in s["rounds"])
        rows.append([SIDES.get(k, k), f"{s['best']['tokens_per_s']:.0f}", f"{s['median_tokens_per_s']:.0f}",
                     vs, pct(d["mfu"][k][MFU]), rounds])
    header = ["side (each in its own process)", "best tok/s", "median tok/s", "vs Trainer, best (median)",
              "MFU, 6·(N+head)", "rounds, tok/s"]
    return table(header, rows, "lrrrrl")


def tvt_reading(d: Json) -> str:
    s, vs, mfu, t = d["sides"], d["vs_trainer"], d["mfu"], d["targets"]
    med = {k: s[k]["median_tokens_per_s"] / s["trainer"]["median_tokens_per_s"] for k in s}
    spread = max(max(r["tokens_per_s"] for r in v["rounds"]) / min(r["tokens_per_s"] for r in v["rounds"])
                 for v in s.values())
    f = d["flops_per_token"]
    head_share = 1 - f["6N"] / f[MFU]
    tokens = d["config"]["batch"] * d["config"]["seq"]
    matmul_s = f[MFU] * tokens / d["peak_flops"]
    steps = [r["s_per_step"] for r in s["ours"]["rounds"]]
    items = [
        f"**Speed: target {'met' if vs['ours'] >= t['speedup'] else 'not met'}.** Our loop is "
        f"{times(vs['ours'])} the Trainer by best round and {times(med['ours'])} by median; with "
        f"`compile=True` {times(vs['ours_compile'])} ({times(med['ours_compile'])}). The target is "
        f"{times(t['speedup'], 1)}. Rounds of one side vary by up to {gain(spread, 1)[1:]} on this "
        "shared machine.",
        f"**MFU: target {'met' if mfu['ours'][MFU] >= t['mfu_' + MFU] else 'not met'} under "
        f"6·(N+head).** Ours reaches {pct(mfu['ours'][MFU], 0)}, ours + compile "
        f"{pct(mfu['ours_compile'][MFU], 0)}, against a {pct(t['mfu_' + MFU], 0)} target. With "
        f"Kaplan's N (the lm_head excluded too) ours is {pct(mfu['ours']['6N'])} and the Trainer "
        f"{pct(mfu['trainer']['6N'])}: the lm_head carries {pct(head_share, 0)} of the matmul "
        f"FLOPs. The step profile has matmuls at {pct(d['options']['profile_ours']['matmul_share'], 0)} "
        "of self CPU time.",
        tvt_parts(d),
        f"**Where the rest goes.** The 6·(N+head) FLOPs of a step alone take "
        f"{matmul_s * 1000:.0f} ms at the measured peak, of a "
        f"{span((x * 1000 for x in steps), lambda x: f'{x:.0f}')} ms step (our rounds). "
        f"{times(t['speedup'], 1)} over the Trainer's {pct(mfu['trainer'][MFU], 0)} MFU would "
        f"need about {pct(t['speedup'] * mfu['trainer'][MFU], 0)}.",
    ]
    return bullets(items)


def tvt_parts(d: Json) -> str:
    s = {k: v["best"]["tokens_per_s"] for k, v in d["sides"].items()}
    mem = d.get("step_memory", {})
    text = (f"**What each part buys** (best rounds, same run). Keeping freed memory "
            f"(`redrobe.train.host.keep_freed_memory`) gives {gain(s['ours'], s['ours_malloc_default'])} "
            f"to our loop and {gain(s['trainer_kept_memory'], s['trainer'])} to the Trainer: glibc maps "
            "large allocations afresh each step. The fused forward (`redrobe.model.fused`) gives "
            f"{gain(s['ours'], s['ours_unfused'])} over transformers' forward; `compile=True` "
            f"{gain(s['ours_compile'], s['ours'])} and costs compilation time up front, so "
            "`compile: auto` stays CUDA-only.")
    if "memory_fused" in mem:
        fu, un = mem["memory_fused"], mem["memory_unfused"]
        text += (f" The fused forward's real gain is memory: at a {num(fu['vocab'])} vocabulary the "
                 f"measured steps need {num(fu['step_rss_mb'])} MB above the built model instead of "
                 f"{num(un['step_rss_mb'])} MB, because the logits are never materialized whole.")
    return text


OPTIONS = {"ours_eager": "eager attention", "ours_adamw_foreach": "AdamW `foreach`",
           "ours_adamw_for_loop": "AdamW for-loop"}


def tvt_options(d: Json) -> str:
    opts = d.get("options", {})
    keys = [k for k in ordered(opts, OPTIONS) if isinstance(opts[k], dict) and "vs_default" in opts[k]]
    rows = [[OPTIONS.get(k, k), f"{opts[k]['tokens_per_s']:.0f}", times(opts[k]["vs_default"])] for k in keys]
    opt = opts.get("optimizer_s_per_step", {})
    timing = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in sorted(opt.items()) if k != "step_s")
    after = para(f"Optimizer update alone, per step: {timing}.") if timing else ""
    return join_blocks(["Options of our side, same run (`options` in the JSON):",
                        table(["option", "tok/s", "vs default"], rows), after])


def tvt_profile(d: Json) -> str:
    prof = d.get("options", {}).get("profile_ours")
    if not prof:
        return ""
    rows = [[f"`{o['op']}`", pct(o["self_cpu_share"]), num(o["calls"])] for o in prof["top_ops"]]
    lead = para(f"Profile of our step ({prof['steps']} steps, top ops by self CPU time):")
    return join_blocks([lead, table(["op", "self CPU", "calls"], rows)])


RENDERERS: dict[str, tuple[str, Callable[[Json], str]]] = {
    "architecture": ("Architecture options", architecture),
    "clean_vs_datatrove": ("Clean rules vs datatrove", clean_vs_datatrove),
    "curriculum": ("Curriculum vs shuffled at equal tokens", curriculum),
    "minhash": ("MinHash vs datasketch", minhash),
    "pipeline": ("Whole pipeline: wall time and memory", pipeline),
    "scaling": ("Scaling: workers, Ray and memory", scaling),
    "semantic": ("Semantic dedup vs the bare encoder", semantic),
    "semantic_choice": ("What semantic dedup should embed", semantic_choice),
    "signals": ("Quality signals", signals),
    "train_vs_trainer": ("Training loop vs transformers `Trainer`, and MFU", train_vs_trainer),
}


# ---------------------------------------------------------------- page


def load_results(results: Path) -> dict[str, Json]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("*.json"))}


def title_of(stem: str) -> str:
    return RENDERERS[stem][0] if stem in RENDERERS else "results without a renderer"


def section(stem: str, data: Json) -> str:
    """`## stem: title`, the body, and the recorded run info; a generic body as the fallback."""
    try:
        body = RENDERERS[stem][1](data) if stem in RENDERERS else generic_section(data)
    except (KeyError, TypeError, ValueError, IndexError, StopIteration, ZeroDivisionError) as exc:
        print(f"render_docs: {stem}: {type(exc).__name__}: {exc}", file=sys.stderr)
        note = para(f"{FALLBACK_NOTE} ({type(exc).__name__}: {exc}); its raw values follow. "
                    "Update `benchmarks/render_docs.py`.")
        body = join_blocks([note, generic_section(data)])
    source = f"Source: `benchmarks/results/{stem}.json`."
    return join_blocks([f"## {stem}: {title_of(stem)}", source, body, run_info(data)])


def intro(stems: list[str], scripts: Path) -> str:
    rows = [[f"[`{s}.json`](../benchmarks/results/{s}.json)", title_of(s),
             f"`benchmarks/{s}.py`" if (scripts / f"{s}.py").exists() else "—"] for s in stems]
    return join_blocks([
        "# Performance",
        "<!-- Generated by benchmarks/render_docs.py from benchmarks/results/*.json "
        "(make docs). Do not edit by hand. -->",
        para("What the benchmarks measure: the data stages against reference implementations "
             "(our clean rules vs datatrove, our MinHash-LSH vs datasketch, semantic dedup vs "
             "the bare encoder, the quality signals), how the stages scale with workers and "
             "corpus size, the whole pipeline's wall time and memory, and training (our loop vs "
             "transformers' `Trainer` and MFU, architecture options, curriculum schedules)."),
        para("How to read the figures: each benchmark measures all its sides in one run, on "
             "the machine its section records, often shared with other jobs. The ratios "
             "between sides of one run are what to read; absolute times move with the load "
             "and do not compare across sections or machines. Timings are never asserted in "
             "tests."),
        para("This page is generated from `benchmarks/results/*.json` by "
             "`benchmarks/render_docs.py`; every benchmark script regenerates it after writing "
             "its results, `make docs` does so by hand, and `tests/test_performance_docs.py` "
             "fails when it is stale or a results file has no section."),
        table(["results", "section", "script"], rows, "lll"),
        para("To rerun a benchmark (from the repository root, project virtualenv active; the "
             "commands are those in each script's docstring):"),
        rerun_block(stems, scripts),
    ])


def render_text(results: Path = RESULTS, scripts: Path = BENCH) -> str:
    data = load_results(results)
    stems = sorted(data)
    return join_blocks([intro(stems, scripts), *(section(s, data[s]) for s in stems)]) + "\n"


def render(results: Path = RESULTS, output: Path = DOC, scripts: Path = BENCH) -> Path:
    """Write the page; benchmark scripts call this after writing their results."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_text(results, scripts), encoding="utf-8")
    print(f"-> {output}")
    return output


def check(results: Path = RESULTS, output: Path = DOC, scripts: Path = BENCH) -> list[str]:
    """Problems with the page on disk: results files without a section, or stale text."""
    current = output.read_text(encoding="utf-8") if output.exists() else ""
    headings = {line.split(":")[0][3:].strip() for line in current.splitlines() if line.startswith("## ")}
    problems = [f"{output.name} has no section for benchmarks/results/{p.name}"
                for p in sorted(results.glob("*.json")) if p.stem not in headings]
    if current != render_text(results, scripts):
        problems.append(f"{output} is stale: regenerate it with `make docs` "
                        "(.venv/bin/python benchmarks/render_docs.py)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the page differs from a fresh render")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--output", type=Path, default=DOC)
    args = ap.parse_args(argv)
    if not args.check:
        render(args.results, args.output)
        return 0
    problems = check(args.results, args.output)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
