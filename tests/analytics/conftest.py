"""A tiny hand-computed store: four people, three sources, two campaigns and a UTM tag.

People (today 2026-04-15, attribution 30 days, a regular has 5 orders after the lead):

- A: form 2026-01-05 (soho, utm flyer; again 03-01); e-mail "spring" sent 01-02, clicked 01-03;
  orders 01-10 £10, 01-20 £20, 02-03 £5, 03-01 £7, 03-15 £8, all at soho.
- B: form 2026-01-20 (no branch, utm flyer); "spring" sent 01-02, known only by e-mail;
  orders 01-25 £12, 02-25 £12 at shoreditch.
- C: form 2026-02-10 (soho, no utm); "spring" bounced; "summer" sent 03-01, opened 03-02.
- D: no form; "spring" sent 01-02; orders 2025-12-01 (canceled), 2025-12-05 €50, 2026-02-07 €20.
- E: a merged-away master with an order and a click: never counted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection

from crm_hub.store import Store
from crm_hub.store.schema import events, master_links, masters, orders, source_customers

TODAY = datetime(2026, 4, 15, tzinfo=UTC).date()


def at(day: str) -> datetime:
    """Noon UTC of an ISO day."""
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def _lineage(stream: str) -> dict[str, Any]:
    return {"stream": stream, "raw_id": 1, "raw_change_seq": 1, "mapped_at": at("2026-04-01")}


def _person(conn: Connection, master_id: str, status: str, records: list[tuple[str, str]]) -> None:
    moment = at("2026-01-01")
    conn.execute(
        masters.insert().values(master_id=master_id, status=status, member_count=1,
                                created_at=moment, updated_at=moment, change_seq=1)
    )  # fmt: skip
    for source, source_id in records:
        conn.execute(master_links.insert().values(source=source, source_id=source_id,
                                                  master_id=master_id, reason="single",
                                                  linked_at=moment, change_seq=1))  # fmt: skip


def _customer(conn: Connection, source: str, source_id: str, **values: Any) -> None:
    conn.execute(source_customers.insert().values(source=source, source_id=source_id,
                                                  **_lineage("customers"), **values))  # fmt: skip


def _order(conn: Connection, source_id: str, customer: str, day: str, total: str,
           *, branch: str, currency: str = "GBP", status: str = "completed") -> None:  # fmt: skip
    conn.execute(orders.insert().values(source="square", source_id=source_id,
                                        customer_source_id=customer, placed_at=at(day),
                                        total=Decimal(total), currency=currency, branch=branch,
                                        status=status, **_lineage("orders")))  # fmt: skip


def _event(conn: Connection, source_id: str, kind: str, campaign: str, day: str,
           *, customer: str | None = None, email: str | None = None) -> None:  # fmt: skip
    conn.execute(events.insert().values(source="mailchimp", source_id=source_id,
                                        customer_source_id=customer, email=email, kind=kind,
                                        campaign_id=campaign, occurred_at=at(day),
                                        **_lineage("member_activity")))  # fmt: skip


def _form(conn: Connection, source_id: str, day: str, *, branch: str | None,
          utm: str | None) -> None:  # fmt: skip
    attributes = {"form_id": "join"} | ({"utm_source": utm} if utm else {})
    # created_at is when it landed (a day later); updated_at is when it was submitted
    landed = at(day).replace(hour=23)
    conn.execute(source_customers.insert().values(
        source="typeform", source_id=source_id, created_at=landed, updated_at=at(day),
        branch=branch, attributes=attributes, **_lineage("responses")))  # fmt: skip


@pytest.fixture
def people(store: Store) -> Store:
    """The store with the people above."""
    with store.begin() as conn:
        _person(conn, "m_a", "active", [("typeform", "ra1"), ("typeform", "ra2"),
                                        ("square", "sa"), ("mailchimp", "ma")])  # fmt: skip
        _person(conn, "m_b", "active", [("typeform", "rb"), ("square", "sb")])
        _person(conn, "m_c", "active", [("typeform", "rc"), ("mailchimp", "mc")])
        _person(conn, "m_d", "active", [("square", "sd"), ("mailchimp", "md")])
        _person(conn, "m_e", "merged", [("square", "se"), ("mailchimp", "me")])
        for source_id in ("sa", "sd", "se", "ma", "mc", "md", "me"):
            source = "square" if source_id.startswith("s") else "mailchimp"
            _customer(conn, source, source_id)
        _customer(conn, "square", "sb", email="b@example.com")

        _form(conn, "ra1", "2026-01-05", branch="soho", utm="flyer")
        _form(conn, "ra2", "2026-03-01", branch="soho", utm="flyer")
        _form(conn, "rb", "2026-01-20", branch=None, utm="flyer")
        _form(conn, "rc", "2026-02-10", branch="soho", utm=None)

        for n, (day, total) in enumerate(
            [
                ("2026-01-10", "10"),
                ("2026-01-20", "20"),
                ("2026-02-03", "5"),
                ("2026-03-01", "7"),
                ("2026-03-15", "8"),
            ]  # fmt: skip
        ):
            _order(conn, f"oa{n}", "sa", day, total, branch="soho")
        _order(conn, "ob1", "sb", "2026-01-25", "12", branch="shoreditch")
        _order(conn, "ob2", "sb", "2026-02-25", "12", branch="shoreditch")
        _order(conn, "od0", "sd", "2025-12-01", "99", branch="soho", status="CANCELED")
        _order(conn, "od1", "sd", "2025-12-05", "50", branch="soho", currency="EUR")
        _order(conn, "od2", "sd", "2026-02-07", "20", branch="soho", currency="EUR")
        _order(conn, "oe1", "se", "2026-01-15", "500", branch="soho")

        _event(conn, "e1", "sent", "spring", "2026-01-02", customer="ma")
        _event(conn, "e2", "clicked", "spring", "2026-01-03", customer="ma")
        _event(conn, "e3", "sent", "spring", "2026-01-02", email="b@example.com")
        _event(conn, "e4", "bounced", "spring", "2026-01-02", customer="mc")
        _event(conn, "e5", "sent", "summer", "2026-03-01", customer="mc")
        _event(conn, "e6", "opened", "summer", "2026-03-02", customer="mc")
        _event(conn, "e7", "sent", "spring", "2026-01-02", customer="md")
        _event(conn, "e8", "clicked", "spring", "2026-01-03", customer="me")
    return store
