"""Write a :class:`~redrobe.tables.spec.Table` as Markdown (for people) and CSV (for tools).

    markdown = to_markdown(table, spec, scale="sample")
    csv_text = to_csv(table)

Markdown shows numbers to four significant digits and missing values as an em dash;
the CSV keeps every number as computed and missing values empty.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from redrobe.tables.spec import Table, TableSpec

MISSING = "—"


def cell(value: Any) -> str:
    """One Markdown cell: 4 significant digits for floats, yes/no for booleans."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def to_markdown(table: Table, spec: TableSpec, scale: str) -> str:
    """The table, its claims with verdicts, notes, and what differs from the paper."""
    lines = [f"# {table.title}", "", f"Paper: {spec.paper}  ", f"Scale: `{scale}`", ""]
    lines += ["| " + " | ".join(table.columns) + " |",
              "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in table.columns) + " |"
              for row in table.rows]
    if table.claims:
        lines += ["", "## Claims", ""]
        lines += [f"- **{c.verdict}**: {c.text} ({c.detail})" for c in table.claims]
    if table.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in table.notes]
    if spec.differences:
        lines += ["", "## What differs from the paper", ""] + [f"- {d}" for d in spec.differences]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=table.columns, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in table.columns})
    return out.getvalue()


def claims_summary(table: Table) -> dict[str, Any]:
    """Verdicts as JSON (for the table's MLflow run and metrics file)."""
    return {"claims": [{"text": c.text, "verdict": c.verdict, "detail": c.detail}
                       for c in table.claims],
            "rows": len(table.rows)}
