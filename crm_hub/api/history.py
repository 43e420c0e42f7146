"""A customer's rows: orders with their lines, the timeline, segment members.

Canonical rows reach a master through ``master_links`` on ``(source, customer_source_id)``.
Every query takes the principal's branch filter from the policy and pages by keyset, newest
first: ``(time, kind rank, row id)``; rows without a time sort last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    and_,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
)

from crm_hub.api.policy import Principal, branch_rows, can_use, customer_rows, sees
from crm_hub.store.schema import (
    UtcDateTime,
    events,
    invoices,
    master_links,
    order_lines,
    orders,
    payments,
    profiles,
    segment_memberships,
    segments,
)

__all__ = ["list_orders", "list_timeline", "segment_exists", "segment_members"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONEY_ORDER_FIELDS = ("currency", "total")
_MONEY_LINE_FIELDS = ("unit_price", "discount", "amount", "currency")


def _links(master_id: str) -> Any:
    return select(master_links.c.source, master_links.c.source_id).where(
        master_links.c.master_id == master_id
    )


def _owned(table: Any, master_id: str) -> Any:
    """Rows of ``table`` whose customer is linked to ``master_id``."""
    links = _links(master_id).subquery()
    return and_(
        table.c.source == links.c.source,
        table.c.customer_source_id == links.c.source_id,
    ), links


def _at(value: datetime | None) -> str:
    return (value or _EPOCH).astimezone(UTC).isoformat()


def _key_time(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def list_orders(
    conn: Connection, principal: Principal, master_id: str, after: list[Any] | None, limit: int
) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """A page of the customer's orders (with lines), newest first, branch-filtered."""
    joined, links = _owned(orders, master_id)
    placed = func.coalesce(orders.c.placed_at, literal(_EPOCH, UtcDateTime()))
    query = (
        select(
            orders.c.id,
            orders.c.source,
            orders.c.source_id,
            orders.c.branch,
            orders.c.channel,
            orders.c.status,
            orders.c.placed_at,
            orders.c.currency,
            orders.c.total,
        )  # fmt: skip
        .select_from(orders.join(links, joined))
        .where(orders.c.deleted.is_(False), branch_rows(principal, orders.c.branch))
    )
    if after is not None:
        query = query.where(
            tuple_(placed, orders.c.id)
            < tuple_(literal(_key_time(after[0]), UtcDateTime()), literal(int(after[1])))
        )
    rows = conn.execute(query.order_by(placed.desc(), orders.c.id.desc()).limit(limit + 1)).all()
    page = [dict(r._mapping) for r in rows[:limit]]
    next_key = [_at(page[-1]["placed_at"]), page[-1]["id"]] if len(rows) > limit else None
    money = sees(principal, "money")
    lines = _lines(conn, [(o["source"], o["source_id"]) for o in page])
    for order in page:
        order["lines"] = [
            {k: v for k, v in line.items() if money or k not in _MONEY_LINE_FIELDS}
            for line in lines.get((order["source"], order["source_id"]), [])
        ]
        if not money:
            for field in _MONEY_ORDER_FIELDS:
                order.pop(field)
        order.pop("id")
    return page, next_key


def _lines(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
    if not keys:
        return {}
    rows = conn.execute(
        select(
            order_lines.c.source,
            order_lines.c.order_source_id,
            order_lines.c.line_no,
            order_lines.c.product,
            order_lines.c.sku,
            order_lines.c.quantity,
            order_lines.c.unit_price,
            order_lines.c.discount,
            order_lines.c.amount,
            order_lines.c.currency,
        )  # fmt: skip
        .where(
            or_(
                *(
                    and_(order_lines.c.source == s, order_lines.c.order_source_id == o)
                    for s, o in keys
                )
            )
        )
        .order_by(order_lines.c.source, order_lines.c.order_source_id, order_lines.c.line_no)
    ).all()
    found: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        line = dict(row._mapping)
        key = (line.pop("source"), line.pop("order_source_id"))
        found.setdefault(key, []).append(line)
    return found


# Timeline: one union of the four canonical tables, projected to common columns.
_RANK = {"orders": 4, "invoices": 3, "payments": 2, "events": 1}


def _timeline_part(table: Any, at: Any, master_id: str, principal: Principal) -> Any:
    joined, links = _owned(table, master_id)
    name = table.name
    detail = {
        "orders": (orders.c.channel, orders.c.status, orders.c.branch, orders.c.currency,
                   orders.c.total),
        "invoices": (cast(invoices.c.number, String), invoices.c.status, null(),
                     invoices.c.currency, invoices.c.amount),
        "payments": (payments.c.method, payments.c.status, null(), payments.c.currency,
                     payments.c.amount),
        "events": (events.c.kind, null(), null(), null(), null()),
    }[name]  # fmt: skip
    label, status, branch, currency, amount = detail
    query = (
        select(
            func.coalesce(at, literal(_EPOCH, UtcDateTime())).label("at"),
            literal(_RANK[name], BigInteger).label("rank"),
            cast(table.c.id, BigInteger).label("row_id"),
            literal(name, String).label("table_name"),
            table.c.source,
            table.c.source_id,
            label.label("label"),
            status.label("status"),
            branch.label("branch"),
            currency.label("currency"),
            amount.label("amount"),
        )
        .select_from(table.join(links, joined))
        .where(table.c.deleted.is_(False))
    )
    if name == "orders":
        query = query.where(branch_rows(principal, orders.c.branch))
    return query


def _kind(row: dict[str, Any]) -> str:
    table = row["table_name"]
    if table == "orders":
        return "visit" if row["label"] == "in_store" else "order"
    if table == "events":
        return "form" if str(row["label"] or "").startswith("form") else "email"
    return "invoice" if table == "invoices" else "payment"


def list_timeline(
    conn: Connection, principal: Principal, master_id: str, after: list[Any] | None, limit: int
) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """A page of everything that happened to the customer, newest first, role-filtered."""
    parts = [_timeline_part(orders, orders.c.placed_at, master_id, principal)]
    if can_use(principal, "email") or can_use(principal, "form"):
        parts.append(_timeline_part(events, events.c.occurred_at, master_id, principal))
    if can_use(principal, "invoice"):
        parts.append(_timeline_part(invoices, invoices.c.issued_at, master_id, principal))
    if can_use(principal, "payment"):
        parts.append(_timeline_part(payments, payments.c.paid_at, master_id, principal))
    stream = union_all(*parts).subquery()
    query = select(stream)
    if after is not None:
        query = query.where(
            tuple_(stream.c.at, stream.c.rank, stream.c.row_id)
            < tuple_(
                literal(_key_time(after[0]), UtcDateTime()),
                literal(int(after[1])),
                literal(int(after[2])),
            )
        )
    # Rows of kinds the role may not see are dropped after the page is cut, so a page can be
    # short; the cursor still moves past them.
    rows = conn.execute(
        query.order_by(stream.c.at.desc(), stream.c.rank.desc(), stream.c.row_id.desc()).limit(
            limit + 1
        )
    ).all()
    raw = [dict(r._mapping) for r in rows[:limit]]
    next_key = (
        [_at(raw[-1]["at"]), raw[-1]["rank"], raw[-1]["row_id"]] if len(rows) > limit else None
    )
    money = sees(principal, "money")
    entries = []
    for row in raw:
        kind = _kind(row)
        if not can_use(principal, kind):
            continue
        entry = {
            "at": None if row["at"] == _EPOCH else row["at"],
            "kind": kind,
            "source": row["source"],
            "source_id": row["source_id"],
            "label": row["label"],
            "status": row["status"],
            "branch": row["branch"],
        }
        if money and row["table_name"] != "events":
            entry["currency"], entry["amount"] = row["currency"], row["amount"]
        entries.append(entry)
    return entries, next_key


def segment_exists(conn: Connection, name: str) -> bool:
    """Whether a segment of that name is defined (or has members)."""
    defined = conn.execute(select(segments.c.name).where(segments.c.name == name)).first()
    if defined is not None:
        return True
    member = conn.execute(
        select(segment_memberships.c.master_id).where(segment_memberships.c.segment == name)
    ).first()
    return member is not None


def segment_members(
    conn: Connection, principal: Principal, name: str, after: list[Any] | None, limit: int
) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """A page of a segment's members the principal may read, by master id, with entered_at."""
    query = (
        select(
            segment_memberships.c.master_id,
            segment_memberships.c.entered_at,
            profiles.c.full_name,
        )
        .join(profiles, profiles.c.master_id == segment_memberships.c.master_id)
        .where(
            segment_memberships.c.segment == name,
            customer_rows(principal, profiles.c.branch),
        )
    )
    if after is not None:
        query = query.where(segment_memberships.c.master_id > str(after[0]))
    rows = conn.execute(query.order_by(segment_memberships.c.master_id).limit(limit + 1)).all()
    page = [dict(r._mapping) for r in rows[:limit]]
    next_key = [page[-1]["master_id"]] if len(rows) > limit else None
    return page, next_key
