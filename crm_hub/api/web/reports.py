"""What the manager page (``/ui/reports``) shows: the analytics stage's funnel and campaign
reports, filtered and trimmed by :mod:`crm_hub.api.policy`.

The funnel is kept per month and branch (``report_funnel``); a branch token reads its branch's
rows only (``report_rows``) and they are summed into the chosen period. Campaigns are chain-wide
(``report_campaigns`` has no branch): everyone who sees reports gets their counts, and only
:func:`~crm_hub.api.policy.sees_chain_money` roles get revenue, cost and cost per acquisition.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from crm_hub.analytics.compute import PERIODS, read_report, regroup_funnel
from crm_hub.analytics.lifecycle import FUNNEL_COUNTS
from crm_hub.api.policy import Principal, report_rows, sees_chain_money
from crm_hub.api.web.bar_chart import BarGroup, bar_chart
from crm_hub.store.schema import report_funnel

__all__ = ["PERIODS", "reports_view"]

FUNNEL_STAGES = {
    "leads": "Form leads",
    "first_orders": "First order",
    "repeat_customers": "Repeat customer",
    "regulars": "Regular",
}
_RATES = ("lead_to_order_rate", "order_to_repeat_rate", "repeat_to_regular_rate")
_MAX_PERIODS = 24
_CHART_CAMPAIGNS = 12
_CHAIN_MONEY = ("revenue", "currency", "cost", "cost_currency", "cost_per_acquisition")


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f} %"


def _funnel(conn: Connection, principal: Principal, period: str) -> dict[str, Any]:
    query = select(report_funnel).where(report_rows(principal, report_funnel.c.branch))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    periods = regroup_funnel(rows, period=period)[-_MAX_PERIODS:]
    totals = {count: sum(p[count] for p in periods) for count in FUNNEL_COUNTS}
    leads = totals["leads"]
    groups = [
        BarGroup(label, (totals[count],), _percent(totals[count] / leads) if leads else "")
        for count, label in FUNNEL_STAGES.items()
        if periods
    ]
    chart = bar_chart("funnel-chart", "Sales funnel: people at each stage", ("people",), groups)
    first, last = (periods[0]["period"], periods[-1]["period"]) if periods else ("", "")
    return {"periods": periods, "totals": totals, "chart": chart, "first": first, "last": last}


def _campaigns(conn: Connection, principal: Principal) -> dict[str, Any]:
    money = sees_chain_money(principal)
    rows = read_report(conn, "campaigns")
    if not money:
        rows = [{k: v for k, v in row.items() if k not in _CHAIN_MONEY} for row in rows]
    rows.sort(key=lambda r: (-r["reached"], r["channel"], r["campaign_id"]))
    groups = [
        BarGroup(f"{r['campaign_id']} ({r['channel']})", (r["reached"], r["converted"]),
                 _percent(r["conversion_rate"]))
        for r in rows[:_CHART_CAMPAIGNS]
    ]  # fmt: skip
    chart = bar_chart(
        "campaigns-chart", "Campaigns: people reached and converted", ("reached", "converted"),
        groups,
    )  # fmt: skip
    return {"rows": rows, "chart": chart, "money": money, "charted": len(groups)}


def reports_view(conn: Connection, principal: Principal, period: str) -> dict[str, Any]:
    """The page's context: ``funnel`` and ``campaigns`` as this principal may see them."""
    return {
        "funnel": _funnel(conn, principal, period),
        "campaigns": _campaigns(conn, principal),
        "stages": FUNNEL_STAGES,
        "rates": _RATES,
        "percent": _percent,
        "money_text": _money_text,
    }


def _money_text(value: Decimal | None, currency: str | None) -> str:
    return "" if value is None else f"{value:,.2f} {currency or ''}".strip()
