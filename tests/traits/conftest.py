"""A tiny store of people whose traits are worked out by hand in test_traits_fixture.py.

- Ann (m_ann): one person in two systems (till ``pos`` c1 and web shop ``web`` w1); orders in
  GBP and EUR, one refunded order, one refund record (-5.00), one cancelled order.
- Bob (m_bob): one order; invoices (one overdue, one part-paid without a balance, one in EUR);
  a birthday on a source customer only.
- Cat (m_cat): no orders; a golden profile birthday (29 February); newsletter events and an
  unsubscribe; consents; form answers in two systems.
- Eve (m_eve): three orders a month apart, in one branch.
- Dan (m_dan): merged into Ann: must have no traits row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, update

from crm_hub.store import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import (
    events,
    invoices,
    master_links,
    masters,
    order_lines,
    orders,
    payments,
    profiles,
    source_customers,
    traits,
)

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _lineage(seq: int) -> dict[str, Any]:
    return {"deleted": False, "stream": "s", "raw_id": seq, "raw_change_seq": seq,
            "mapped_at": NOW}  # fmt: skip


class Fixture:
    """Inserts rows with increasing raw_change_seq, like the map stage would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seq = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def master(self, master_id: str, status: str = "active", into: str | None = None) -> None:
        with self.store.begin() as conn:
            conn.execute(insert(masters).values(
                master_id=master_id, status=status, merged_into=into, member_count=1,
                created_at=NOW, updated_at=NOW, change_seq=next_change_seq(conn)))  # fmt: skip

    def customer(self, master_id: str, source: str, source_id: str, **fields: Any) -> None:
        with self.store.begin() as conn:
            conn.execute(
                insert(source_customers).values(
                    source=source, source_id=source_id, **_lineage(self._next()), **fields
                )
            )
            conn.execute(insert(master_links).values(
                source=source, source_id=source_id, master_id=master_id, reason="single",
                linked_at=NOW, change_seq=next_change_seq(conn)))  # fmt: skip

    def order(
        self, source: str, source_id: str, customer: str, placed: str, offset: str,
        currency: str, total: str, lines: list[tuple[str, str, str | None]],
        branch: str | None = None, status: str = "completed",
    ) -> None:  # fmt: skip
        with self.store.begin() as conn:
            conn.execute(
                insert(orders).values(
                    source=source,
                    source_id=source_id,
                    customer_source_id=customer,
                    branch=branch,
                    status=status,
                    placed_at=at(placed),
                    placed_at_offset=offset,
                    currency=currency,
                    total=Decimal(total),
                    **_lineage(self._next()),
                )
            )
            for number, (product, amount, category) in enumerate(lines, start=1):
                conn.execute(insert(order_lines).values(
                    source=source, order_source_id=source_id, line_no=number, product=product,
                    amount=Decimal(amount), currency=currency,
                    attributes={"category": category} if category else None))  # fmt: skip

    def invoice(self, source_id: str, customer: str, currency: str, amount: str,
                balance: str | None, due: date) -> None:  # fmt: skip
        with self.store.begin() as conn:
            conn.execute(insert(invoices).values(
                source="books", source_id=source_id, customer_source_id=customer,
                status="open", issued_at=at("2026-04-01 09:00"), currency=currency,
                amount=Decimal(amount), balance=None if balance is None else Decimal(balance),
                due_date=due, **_lineage(self._next())))  # fmt: skip

    def payment(self, source_id: str, invoice: str, amount: str, status: str) -> None:
        with self.store.begin() as conn:
            conn.execute(insert(payments).values(
                source="books", source_id=source_id, customer_source_id=None,
                invoice_source_id=invoice, status=status, paid_at=at("2026-05-01 10:00"),
                currency="GBP", amount=Decimal(amount), **_lineage(self._next())))  # fmt: skip

    def event(self, source_id: str, customer: str, kind: str, when: str) -> None:
        with self.store.begin() as conn:
            conn.execute(insert(events).values(
                source="news", source_id=source_id, customer_source_id=customer, kind=kind,
                occurred_at=at(when), **_lineage(self._next())))  # fmt: skip

    def touch_order(self, source: str, source_id: str, total: str) -> None:
        """The map stage re-mapping a changed order: new total, newer raw_change_seq."""
        with self.store.begin() as conn:
            conn.execute(update(orders).where(orders.c.source == source,
                                              orders.c.source_id == source_id)
                         .values(total=Decimal(total), raw_change_seq=self._next()))  # fmt: skip


def build(store: Store) -> Fixture:
    f = Fixture(store)
    for master in ("m_ann", "m_bob", "m_cat", "m_eve"):
        f.master(master)
    f.master("m_dan", status="merged", into="m_ann")
    with store.begin() as conn:  # a stale row from before Dan was merged
        conn.execute(insert(traits).values(master_id="m_dan", orders_count=1, visits_count=1,
                                           computed_at=NOW, change_seq=1))  # fmt: skip

    f.customer("m_ann", "pos", "c1", first_name="Ann")
    f.customer("m_ann", "web", "w1", first_name="Ann")
    f.order(
        "pos",
        "o1",
        "c1",
        "2026-06-01 09:15",
        "+01:00",
        "GBP",
        "10.00",
        [("Latte", "6.00", "coffee"), ("Croissant", "4.00", "bakery")],
        branch="soho",
    )
    f.order(
        "pos",
        "o2",
        "c1",
        "2026-06-08 09:30",
        "+01:00",
        "GBP",
        "12.50",
        [("Latte", "3.00", "coffee"), ("Bagel", "9.50", "bakery")],
        branch="soho",
    )
    f.order(
        "web",
        "o3",
        "w1",
        "2026-06-10 18:00",
        "+01:00",
        "GBP",
        "20.00",
        [("Cake", "20.00", "bakery")],
        status="refunded",
    )
    f.order(
        "web",
        "o4",
        "w1",
        "2026-06-11 12:00",
        "+00:00",
        "GBP",
        "-5.00",
        [("Bagel", "-5.00", "bakery")],
    )
    f.order(
        "pos",
        "o5",
        "c1",
        "2026-05-20 12:00",
        "+02:00",
        "EUR",
        "8.00",
        [("Latte", "8.00", "coffee")],
        branch="paris",
    )
    f.order(
        "pos",
        "o6",
        "c1",
        "2026-06-12 12:00",
        "+01:00",
        "GBP",
        "100.00",
        [("Champagne", "100.00", "bar")],
        branch="soho",
        status="cancelled",
    )

    f.customer("m_bob", "pos", "c2", first_name="Bob", birth_year=1990, birth_month=6, birth_day=20)
    f.customer("m_bob", "books", "q2", first_name="Bob")
    f.order(
        "pos",
        "o7",
        "c2",
        "2026-03-01 12:00",
        "+00:00",
        "GBP",
        "40.00",
        [("Sandwich", "40.00", None)],
        branch="soho",
    )
    f.invoice("i1", "q2", "GBP", "100.00", "60.00", date(2026, 6, 1))
    f.invoice("i2", "q2", "GBP", "50.00", None, date(2026, 7, 1))
    f.invoice("i3", "q2", "EUR", "10.00", "10.00", date(2026, 5, 1))
    f.payment("p1", "i2", "20.00", "completed")
    f.payment("p2", "i2", "50.00", "failed")

    f.customer(
        "m_cat",
        "pos",
        "c3",
        first_name="Cat",
        birth_year=1999,
        birth_month=1,
        birth_day=1,
        updated_at=at("2026-05-01 00:00"),
        consents={
            "email": {"granted": True, "at": "2026-01-01T00:00:00+00:00"},
            "sms": {"granted": False, "at": "2026-01-01T00:00:00+00:00"},
        },
        attributes={
            "allergies": "nuts, gluten",
            "favourite_dish": "Shakshuka",
            "notes": "window seat",
        },
    )
    f.customer(
        "m_cat",
        "news",
        "n3",
        first_name="Cat",
        updated_at=at("2026-01-01 00:00"),
        consents={"email": {"granted": True, "at": "2025-01-01T00:00:00+00:00"}},
        attributes={
            "allergies": ["nuts", "dairy"],
            "favourite_dish": "Soup",
            "seating": "quiet",
            "unusable_birth_date": "31/02",
        },
    )
    with store.begin() as conn:
        seq = next_change_seq(conn)
        conn.execute(insert(profiles).values(master_id="m_cat", first_name="Cat",
                                             birth_year=2000, birth_month=2, birth_day=29,
                                             updated_at=NOW, change_seq=seq))  # fmt: skip
    f.event("e1", "n3", "opened", "2026-06-01 09:00")
    f.event("e2", "n3", "opened", "2026-06-02 09:00")
    f.event("e3", "n3", "clicked", "2026-06-02 10:00")
    f.event("e4", "n3", "unsubscribed", "2026-06-03 10:00")

    f.customer("m_eve", "pos", "c5", first_name="Eve", birth_month=12, birth_day=24)
    for number, day in enumerate(("2026-03-02", "2026-04-01", "2026-05-01"), start=8):
        f.order(
            "pos",
            f"o{number}",
            "c5",
            f"{day} 08:00",
            "+00:00",
            "GBP",
            "5.00",
            [("Tea", "5.00", "tea")],
            branch="camden",
        )
    return f


@pytest.fixture
def people(store: Store) -> Fixture:
    """The store filled with Ann, Bob, Cat, Eve and merged Dan."""
    return build(store)


@pytest.fixture
def read_traits(store: Store) -> Callable[[], dict[str, dict[str, Any]]]:
    """Every traits row, by master id."""

    def read() -> dict[str, dict[str, Any]]:
        with store.read() as conn:
            rows = conn.execute(traits.select()).mappings().all()
        return {row["master_id"]: dict(row) for row in rows}

    return read
