"""What the pages read beyond the JSON routes: visits and spend per month, a customer's segments.

Both go through :mod:`crm_hub.api.policy`: orders of other branches are left out for a branch
token (``branch_rows``), and spend is summed only for roles that see ``money``.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, select

from crm_hub.api.policy import Principal, branch_rows, sees
from crm_hub.api.web.chart import MonthPoint
from crm_hub.store.schema import master_links, orders, segment_memberships, segments

__all__ = ["customer_segments", "monthly_points", "segment_names"]

_MAX_MONTHS = 24


def monthly_points(
    conn: Connection, principal: Principal, master_id: str, currency: str | None
) -> list[MonthPoint]:
    """Visits (orders of any channel) and, for money roles, spend in ``currency`` per month.

    Months run from the first to the last month with an order (gaps filled with zeros), the last
    24 at most.
    """
    query = (
        select(orders.c.placed_at, orders.c.currency, orders.c.total)
        .join(
            master_links,
            and_(
                master_links.c.source == orders.c.source,
                master_links.c.source_id == orders.c.customer_source_id,
            ),
        )
        .where(
            master_links.c.master_id == master_id,
            orders.c.deleted.is_(False),
            orders.c.placed_at.is_not(None),
            branch_rows(principal, orders.c.branch),
        )
    )
    visits: Counter[str] = Counter()
    spend: dict[str, Decimal] = {}
    money = sees(principal, "money")
    for row in conn.execute(query):
        month = row.placed_at.strftime("%Y-%m")
        visits[month] += 1
        if money and row.total is not None and (currency is None or row.currency == currency):
            spend[month] = spend.get(month, Decimal(0)) + Decimal(row.total)
    if not visits:
        return []
    months = _month_range(min(visits), max(visits))[-_MAX_MONTHS:]
    return [
        MonthPoint(m, visits.get(m, 0), spend.get(m, Decimal(0)) if money else None) for m in months
    ]


def _month_range(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def customer_segments(conn: Connection, master_id: str) -> list[dict[str, Any]]:
    """The segments the customer is in now, with the time each was entered, by name."""
    rows = conn.execute(
        select(segment_memberships.c.segment, segment_memberships.c.entered_at)
        .where(segment_memberships.c.master_id == master_id)
        .order_by(segment_memberships.c.segment)
    )
    return [dict(r._mapping) for r in rows]


def segment_names(conn: Connection) -> list[dict[str, Any]]:
    """Defined segments with their description, by name."""
    rows = conn.execute(select(segments.c.name, segments.c.description).order_by(segments.c.name))
    return [dict(r._mapping) for r in rows]
