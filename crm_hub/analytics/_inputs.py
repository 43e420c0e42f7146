"""What the reports read: canonical rows resolved to active masters (SQLAlchemy Core).

A person is an active master; a source record reaches it through ``master_links``. Orders count
when placed, not deleted and not cancelled; events count when they name a campaign.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Subquery, and_, func, or_, select

from crm_hub.store.schema import events, master_links, masters, orders, source_customers

__all__ = [
    "CANCELLED_STATUSES",
    "FirstOrder",
    "FormResponse",
    "Order",
    "first_orders",
    "form_responses",
    "month_key",
    "order_months",
    "orders_of",
    "touches",
]

# Order statuses that are not a sale (lower case, as the mappings write them).
CANCELLED_STATUSES = ("canceled", "cancelled", "void", "voided", "refunded", "failed")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Order:
    """One counted order of a person."""

    placed_at: datetime
    total: Decimal | None
    currency: str | None
    branch: str | None


@dataclass(frozen=True, slots=True)
class FirstOrder:
    """A person's first counted order ever and how many they placed."""

    placed_at: datetime
    branch: str | None
    orders_count: int


def month_key(moment: datetime) -> str:
    """``YYYY-MM`` of a UTC time."""
    return f"{moment.year:04d}-{moment.month:02d}"


def _links() -> Subquery:
    return (
        select(master_links.c.source, master_links.c.source_id, master_links.c.master_id)
        .join(masters, masters.c.master_id == master_links.c.master_id)
        .where(masters.c.status == "active")
        .subquery("links")
    )


def _counted_orders(links: Subquery) -> Any:
    return (
        select(
            links.c.master_id,
            orders.c.id,
            orders.c.placed_at,
            orders.c.total,
            orders.c.currency,
            orders.c.branch,
        )
        .join(
            links,
            and_(
                links.c.source == orders.c.source,
                links.c.source_id == orders.c.customer_source_id,
            ),
        )
        .where(
            orders.c.deleted.is_(False),
            orders.c.placed_at.is_not(None),
            or_(orders.c.status.is_(None), func.lower(orders.c.status).not_in(CANCELLED_STATUSES)),
        )
    )


def first_orders(conn: Connection) -> dict[str, FirstOrder]:
    """Every person with an order: their first order (time, branch) and order count."""
    counted = _counted_orders(_links()).subquery("counted")
    ranked = select(
        counted.c.master_id,
        counted.c.placed_at,
        counted.c.branch,
        func.row_number()
        .over(partition_by=counted.c.master_id, order_by=(counted.c.placed_at, counted.c.id))
        .label("rank"),
        func.count().over(partition_by=counted.c.master_id).label("orders_count"),
    ).subquery("ranked")
    query = select(
        ranked.c.master_id, ranked.c.placed_at, ranked.c.branch, ranked.c.orders_count
    ).where(ranked.c.rank == 1)
    return {
        row.master_id: FirstOrder(row.placed_at, row.branch, row.orders_count)
        for row in conn.execute(query)
    }


def orders_of(conn: Connection, master_ids: Iterable[str]) -> dict[str, list[Order]]:
    """The counted orders of these people, oldest first."""
    ids = sorted(set(master_ids))
    found: dict[str, list[Order]] = defaultdict(list)
    base = _counted_orders(_links())
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        links = base.selected_columns.master_id
        for row in conn.execute(base.where(links.in_(chunk))):
            found[row.master_id].append(Order(row.placed_at, row.total, row.currency, row.branch))
    for placed in found.values():
        placed.sort(key=lambda order: order.placed_at)
    return dict(found)


def order_months(conn: Connection) -> Iterator[tuple[str, str]]:
    """Distinct (master id, ``YYYY-MM``) pairs of counted orders."""
    counted = _counted_orders(_links()).subquery("counted")
    if conn.dialect.name == "postgresql":
        month = func.to_char(func.timezone("UTC", counted.c.placed_at), "YYYY-MM")
    else:  # SQLite keeps UTC times as ISO text
        month = func.substr(counted.c.placed_at, 1, 7)
    query = select(counted.c.master_id, month.label("month")).group_by(counted.c.master_id, month)
    for row in conn.execute(query):
        yield row.master_id, row.month


def touches(conn: Connection) -> dict[tuple[str, str, str], datetime]:
    """Campaign e-mail events: (master id, campaign id, kind) → first time it happened.

    An event names its person by (source, customer_source_id) or, failing a link, by e-mail.
    """
    links = _links()
    by_record = (
        select(links.c.master_id, events.c.campaign_id, events.c.kind, events.c.occurred_at)
        .join(
            links,
            and_(
                links.c.source == events.c.source,
                links.c.source_id == events.c.customer_source_id,
            ),
        )
        .where(
            events.c.deleted.is_(False),
            events.c.campaign_id.is_not(None),
            events.c.occurred_at.is_not(None),
        )
        .subquery()
    )
    by_email = (
        select(links.c.master_id, events.c.campaign_id, events.c.kind, events.c.occurred_at)
        .join(source_customers, source_customers.c.email == events.c.email)
        .join(
            links,
            and_(
                links.c.source == source_customers.c.source,
                links.c.source_id == source_customers.c.source_id,
            ),
        )
        .where(
            events.c.deleted.is_(False),
            source_customers.c.deleted.is_(False),
            events.c.email.is_not(None),
            events.c.campaign_id.is_not(None),
            events.c.occurred_at.is_not(None),
        )
        .subquery()
    )
    first: dict[tuple[str, str, str], datetime] = {}
    for sub in (by_record, by_email):
        query = select(
            sub.c.master_id, sub.c.campaign_id, sub.c.kind, func.min(sub.c.occurred_at)
        ).group_by(sub.c.master_id, sub.c.campaign_id, sub.c.kind)
        for master_id, campaign_id, kind, at in conn.execute(query):
            key = (master_id, campaign_id, (kind or "").lower())
            at = _aware(at, conn)
            if key not in first or at < first[key]:
                first[key] = at
    return first


@dataclass(frozen=True, slots=True)
class FormResponse:
    """A web-form response of a person."""

    master_id: str
    at: datetime
    branch: str | None
    attributes: dict[str, Any]


def form_responses(conn: Connection, sources: Collection[str]) -> list[FormResponse]:
    """Every response of the form sources, oldest first (time: created or updated, earliest)."""
    if not sources:
        return []
    links = _links()
    query = (
        select(
            links.c.master_id,
            source_customers.c.created_at,
            source_customers.c.updated_at,
            source_customers.c.branch,
            source_customers.c.attributes,
        )
        .join(
            links,
            and_(
                links.c.source == source_customers.c.source,
                links.c.source_id == source_customers.c.source_id,
            ),
        )
        .where(
            source_customers.c.deleted.is_(False), source_customers.c.source.in_(sorted(sources))
        )
    )
    found: list[FormResponse] = []
    for row in conn.execute(query):
        times = [t for t in (row.created_at, row.updated_at) if t is not None]
        if not times:
            continue
        attributes = row.attributes if isinstance(row.attributes, dict) else {}
        found.append(FormResponse(row.master_id, min(times), row.branch or None, attributes))
    found.sort(key=lambda response: (response.at, response.master_id))
    return found


def _aware(value: Any, conn: Connection) -> datetime:
    """func.min loses the column type: turn what the driver gave back into an aware UTC time."""
    from crm_hub.store.schema import UtcDateTime

    result = UtcDateTime().process_result_value(value, conn.dialect)
    assert result is not None
    return result
