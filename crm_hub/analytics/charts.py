"""Charts of the reports: PNG (matplotlib, Agg) or a self-contained HTML page holding the PNG
and the table. Imported only by `crm-hub report --chart`: matplotlib is heavy.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crm_hub.errors import ConfigError

__all__ = ["write_chart"]

_STAGES = (
    ("leads", "Form leads"),
    ("first_orders", "First order"),
    ("repeat_customers", "Repeat customer"),
    ("regulars", "Regular"),
)


def write_chart(report: str, rows: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Draw ``rows`` of ``report`` (campaigns, funnel, cohorts) to ``path`` (.png or .html).

    Raises:
        ConfigError: the file name ends neither in .png nor .html, or its folder is missing.
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ConfigError(f"--chart {path}: name a .png or .html file")
    if not path.parent.exists():
        raise ConfigError(f"--chart {path}: folder {path.parent} does not exist")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = {"campaigns": _campaigns, "funnel": _funnel, "cohorts": _cohorts}[report](rows, plt)
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    png = buffer.getvalue()
    if suffix == ".png":
        path.write_bytes(png)
    else:
        path.write_text(_page(title, png, rows), encoding="utf-8")
    return path


def _funnel(rows: Sequence[dict[str, Any]], plt: Any) -> Any:
    totals = [sum(r[key] for r in rows) for key, _ in _STAGES]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    widest = max(totals[0], 1)
    for n, ((_, label), count) in enumerate(zip(_STAGES, totals, strict=True)):
        y = len(_STAGES) - 1 - n
        axes.barh(y, count, left=(widest - count) / 2, color=f"C{n}", height=0.8)
        share = f" ({count / totals[0]:.0%} of leads)" if totals[0] and n else ""
        axes.text(widest / 2, y, f"{label}: {count:,}{share}", ha="center", va="center")
    axes.set_xlim(0, widest)
    axes.axis("off")
    return figure


def _campaigns(rows: Sequence[dict[str, Any]], plt: Any) -> Any:
    names = [f"{r['campaign_id']} ({r['channel']})" for r in rows] or ["no campaigns"]
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(names)), 4.5))
    width = 0.27
    for n, key in enumerate(("reached", "engaged", "converted")):
        values = [r[key] for r in rows] or [0]
        axes.bar([i + (n - 1) * width for i in range(len(names))], values, width, label=key)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel("people")
    axes.legend()
    return figure


def _cohorts(rows: Sequence[dict[str, Any]], plt: Any) -> Any:
    cohorts = sorted({r["cohort"] for r in rows}) or ["none"]
    months = max((r["months_since"] for r in rows), default=0) + 1
    grid = [[float("nan")] * months for _ in cohorts]
    for r in rows:
        if r["retention"] is not None:
            grid[cohorts.index(r["cohort"])][r["months_since"]] = r["retention"]
    figure, axes = plt.subplots(
        figsize=(max(6.0, 0.7 * months + 2), max(3.0, 0.45 * len(cohorts) + 1.5))
    )
    image = axes.imshow(grid, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for y, line in enumerate(grid):
        for x, value in enumerate(line):
            if value == value:  # not NaN
                axes.text(x, y, f"{value:.0%}", ha="center", va="center", fontsize=8,
                          color="white" if value > 0.6 else "black")  # fmt: skip
    axes.set_xticks(range(months))
    axes.set_yticks(range(len(cohorts)), cohorts)
    axes.set_xlabel("months since first order")
    axes.set_ylabel("month of first order")
    figure.colorbar(image, ax=axes, label="retention")
    return figure


def _page(title: str, png: bytes, rows: Sequence[dict[str, Any]]) -> str:
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>"
                         for c in columns) + "</tr>"
        for r in rows
    )  # fmt: skip
    image = base64.b64encode(png).decode()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{image}'><table><tr>{head}</tr>{body}</table></body></html>\n"
    )
