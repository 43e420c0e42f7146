"""The sales funnel (form lead → first order → repeat customer → regular) and retention cohorts
by month of first order.

Funnel: a lead is a person's first web-form response; the later stages count the orders placed
at or after it. Rows are per month of the lead and branch (the form's branch, else the first
order's). Cohorts: people grouped by the month of their first order ever and its branch; for
each month since, how many ordered again. Counts are additive over branches and months, so a
reader may sum rows (rates are recomputed from the sums).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import date
from typing import Any

from sqlalchemy import Connection

from crm_hub.analytics._inputs import first_orders, form_responses, month_key, order_months
from crm_hub.analytics.campaigns import rate

__all__ = ["UNASSIGNED", "cohort_rows", "funnel_rates", "funnel_rows"]

UNASSIGNED = "unassigned"
FUNNEL_COUNTS = ("leads", "first_orders", "repeat_customers", "regulars")


def funnel_rates(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its three stage-to-stage conversion rates (re)computed from its counts."""
    return {
        **row,
        "lead_to_order_rate": rate(row["first_orders"], row["leads"]),
        "order_to_repeat_rate": rate(row["repeat_customers"], row["first_orders"]),
        "repeat_to_regular_rate": rate(row["regulars"], row["repeat_customers"]),
    }


def funnel_rows(
    conn: Connection, form_sources: Collection[str], *, regular_orders: int
) -> list[dict[str, Any]]:
    """One row per (month of lead, branch), in the shape of ``report_funnel``."""
    from crm_hub.analytics._inputs import orders_of

    leads: dict[str, tuple[Any, str | None]] = {}
    for response in form_responses(conn, form_sources):  # oldest first
        if response.master_id not in leads:
            leads[response.master_id] = (response.at, response.branch)
        elif leads[response.master_id][1] is None and response.branch:
            leads[response.master_id] = (leads[response.master_id][0], response.branch)
    history = orders_of(conn, leads)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for master_id, (at, branch) in leads.items():
        after = [o for o in history.get(master_id, []) if o.placed_at >= at]
        where = branch or (after[0].branch if after else None) or UNASSIGNED
        row = counts[month_key(at), where]
        for stage, reached in enumerate((True, len(after) >= 1, len(after) >= 2,
                                         len(after) >= regular_orders)):  # fmt: skip
            row[stage] += int(reached)
    return [
        funnel_rates(
            {
                "period": period,
                "branch": branch,
                **dict(zip(FUNNEL_COUNTS, row, strict=True)),
                "regular_orders": regular_orders,
            }  # fmt: skip
        )
        for (period, branch), row in sorted(counts.items())
    ]


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])


def cohort_rows(conn: Connection, *, today: date) -> list[dict[str, Any]]:
    """One row per (cohort month, branch, months since), up to ``today``'s month."""
    firsts = first_orders(conn)
    last = f"{today.year:04d}-{today.month:02d}"
    sizes: dict[tuple[str, str], int] = defaultdict(int)
    cohort_of: dict[str, tuple[str, str]] = {}
    for master_id, first in firsts.items():
        key = (month_key(first.placed_at), first.branch or UNASSIGNED)
        cohort_of[master_id] = key
        sizes[key] += 1
    active: dict[tuple[str, str, int], int] = defaultdict(int)
    for master_id, month in order_months(conn):
        found = cohort_of.get(master_id)
        if found is not None and found[0] <= month <= last:
            active[(*found, _months_between(found[0], month))] += 1
    rows = []
    for (cohort, branch), size in sorted(sizes.items()):
        for since in range(max(_months_between(cohort, last), 0) + 1):
            count = active.get((cohort, branch, since), 0)
            rows.append({"cohort": cohort, "branch": branch, "months_since": since,
                         "cohort_size": size, "active": count,
                         "retention": rate(count, size)})  # fmt: skip
    return rows
