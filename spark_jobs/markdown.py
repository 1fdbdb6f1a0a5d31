"""Markdown tables for previews, shared by the KPI job and the IO manager (no Spark import)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(rows: Iterable[Sequence[object]], columns: Sequence[object]) -> str:
    """A GitHub-style markdown table (Dagster renders it as the asset's preview); None is empty."""
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ("" if v is None else str(v).replace("|", "\\|") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
