"""Inline SVG charts rendered on the server: no JavaScript charting library, works offline.

:func:`monthly_chart` draws bars for visits per month and, when given, a line for spend per
month on a second scale. The SVG carries a ``<title>`` and ``<desc>``; pages also render the
numbers as a table, so screen readers get the data rather than a picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape

__all__ = ["MonthPoint", "monthly_chart"]

_W, _H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 56, 16, 36


@dataclass(frozen=True, slots=True)
class MonthPoint:
    """One month: ``month`` as ``YYYY-MM``, its visit count and spend (None: not shown)."""

    month: str
    visits: int
    spend: Decimal | None = None


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def monthly_chart(points: list[MonthPoint], *, currency: str | None, show_spend: bool) -> str:
    """An ``<svg>`` with visit bars (and a spend line when ``show_spend``); empty → a note."""
    title = "Visits per month" + (" and spend" if show_spend else "")
    if not points:
        return ""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w / len(points)
    bar_w = max(2.0, min(40.0, step * 0.6))
    top_visits = max(1, max(p.visits for p in points))
    spends = [p.spend or Decimal(0) for p in points]
    top_spend = max(spends) if show_spend and spends else Decimal(0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="visits-chart" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(_describe(points, currency, show_spend))}</desc>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
        'class="axis"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" class="tick" text-anchor="end">{top_visits}</text>',
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" class="tick" text-anchor="end">0</text>',
    ]
    label_every = max(1, len(points) // 12)
    line: list[str] = []
    dots: list[str] = []
    for i, point in enumerate(points):
        x = _LEFT + step * i + (step - bar_w) / 2
        height = plot_h * point.visits / top_visits
        parts.append(
            f'<rect class="bar" x="{_fmt(x)}" y="{_fmt(_TOP + plot_h - height)}" '
            f'width="{_fmt(bar_w)}" height="{_fmt(height)}">'
            f"<title>{escape(point.month)}: {point.visits} visits</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text class="tick" x="{_fmt(x + bar_w / 2)}" y="{_H - _BOTTOM + 16}" '
                f'text-anchor="middle">{escape(point.month)}</text>'
            )
        if show_spend and top_spend > 0:
            y = _TOP + plot_h - float(plot_h * (point.spend or Decimal(0)) / top_spend)
            line.append(f"{_fmt(x + bar_w / 2)},{_fmt(y)}")
            dots.append(
                f'<circle class="spend-dot" cx="{_fmt(x + bar_w / 2)}" cy="{_fmt(y)}" r="4">'
                f"<title>{escape(point.month)}: "
                f"{escape(_money(point.spend or Decimal(0), currency))}</title></circle>"
            )
    if line:
        parts.append(f'<polyline class="spend" fill="none" points="{" ".join(line)}"/>')
        parts.extend(dots)
        parts.append(
            f'<text x="{_LEFT + plot_w + 6}" y="{_TOP + 4}" class="tick spend-tick">'
            f"{escape(_money(top_spend, currency))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _money(value: Decimal, currency: str | None) -> str:
    return f"{value:,.2f} {currency or ''}".strip()


def _describe(points: list[MonthPoint], currency: str | None, show_spend: bool) -> str:
    visits = sum(p.visits for p in points)
    text = f"{visits} visits from {points[0].month} to {points[-1].month}"
    if show_spend:
        total = sum((p.spend or Decimal(0) for p in points), Decimal(0))
        text += f"; spend {_money(total, currency)}"
    return text + "."
