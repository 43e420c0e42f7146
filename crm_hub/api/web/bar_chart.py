"""Horizontal bar charts as inline SVG, drawn on the server (the reports page's funnel and
campaigns): no JavaScript, no CDN.

Each bar group is one labelled row (a funnel stage, a campaign) with one bar per series
(people; reached and converted). Every number is written beside its bar, so the chart reads
without colour; ``<title>``/``<desc>`` describe it and pages show the same numbers as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

__all__ = ["BarGroup", "bar_chart"]

_W = 640
_LABEL_W = 190  # left column: the row's label
_VALUE_W = 120  # right column: the value text of the longest bar
_BAR_H, _BAR_GAP, _GROUP_GAP, _TOP = 18, 4, 14, 8
_MAX_LABEL = 26


@dataclass(frozen=True, slots=True)
class BarGroup:
    """One row: ``label``, one value per series, and ``note`` written after the last value."""

    label: str
    values: tuple[int, ...]
    note: str = ""


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def bar_chart(chart_id: str, title: str, series: tuple[str, ...], groups: list[BarGroup]) -> str:
    """An ``<svg id=chart_id>``: per group, one bar per series; "" when there is nothing."""
    if not groups:
        return ""
    top = max(1, max(v for g in groups for v in g.values))
    plot_w = _W - _LABEL_W - _VALUE_W
    group_h = len(series) * (_BAR_H + _BAR_GAP) - _BAR_GAP
    height = _TOP * 2 + len(groups) * (group_h + _GROUP_GAP) - _GROUP_GAP
    ids = f"{chart_id}-title {chart_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart hbars" id="{escape(chart_id)}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-labelledby="{escape(ids)}">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(_describe(series, groups))}</desc>',
    ]
    for row, group in enumerate(groups):
        y0 = _TOP + row * (group_h + _GROUP_GAP)
        parts.append(
            f'<text class="label" x="{_LABEL_W - 8}" y="{y0 + group_h / 2 + 5:.1f}" '
            f'text-anchor="end">{escape(_short(group.label))}</text>'
        )
        for k, (name, value) in enumerate(zip(series, group.values, strict=True)):
            y = y0 + k * (_BAR_H + _BAR_GAP)
            width = plot_w * value / top
            text = f"{value:,}" + (
                f" · {group.note}" if group.note and k == len(series) - 1 else ""
            )
            parts.append(
                f'<rect class="bar series-{k}" x="{_LABEL_W}" y="{y}" width="{width:.1f}" '
                f'height="{_BAR_H}"><title>{escape(group.label)}: {value:,} {escape(name)}'
                "</title></rect>"
                f'<text class="value" x="{_LABEL_W + width + 6:.1f}" y="{y + _BAR_H - 4}">'
                f"{escape(text)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _describe(series: tuple[str, ...], groups: list[BarGroup]) -> str:
    rows = (
        f"{g.label}: "
        + ", ".join(f"{v:,} {name}" for name, v in zip(series, g.values, strict=True))
        + (f" ({g.note})" if g.note else "")
        for g in groups
    )
    return "; ".join(rows) + "."
