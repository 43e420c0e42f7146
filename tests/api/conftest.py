"""A small chain of two branches (north, south) in a real store, and tokens for every role.

People (home branch):
  Ann Smith     north  active; has an old id merged into her; orders in north, south, online
  Bob Jones     south  active
  Zed Southey   south  active; the "foreign" customer north tokens must never see
  Old Ann       -      merged into Ann
  Old Zed       -      merged into Zed (a north token following it must get 404, not a redirect)
  Gone          -      erased
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crm_hub.api import create_app
from crm_hub.api.tokens import create_token
from crm_hub.store import Store
from crm_hub.store.schema import (
    events,
    invoices,
    master_links,
    masters,
    order_lines,
    orders,
    payments,
    profiles,
    segment_memberships,
    segments,
    traits,
)

ANN = "m_01ANN00000000000000000000A"[:28]
BOB = "m_01BOB00000000000000000000B"[:28]
ZED = "m_01ZED00000000000000000000Z"[:28]
OLD_ANN = "m_01ANN0000000000000000000OA"[:28]
OLD_ZED = "m_01ZED0000000000000000000OZ"[:28]
GONE = "m_01GNE00000000000000000000G"[:28]
UNKNOWN = "m_01NOPE0000000000000000000X"[:28]

ZED_PHONE = "+447700900999"
ZED_EMAIL = "zed.southey@example.org"
SOUTH_MONEY = Decimal("987.65")  # Ann's south order: no north token may see it
ANN_BALANCE = Decimal("42.50")

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=UTC)


def _lineage(seq: int) -> dict[str, Any]:
    return {"stream": "s", "raw_id": seq, "raw_change_seq": seq, "mapped_at": T0, "deleted": False}


def build_world(store: Store) -> None:
    """Insert the people above, their rows, one segment; directly, as other stages would."""
    with store.begin() as conn:
        for mid, status, into in (
            (ANN, "active", None), (BOB, "active", None), (ZED, "active", None),
            (OLD_ANN, "merged", ANN), (OLD_ZED, "merged", ZED), (GONE, "erased", None),
        ):  # fmt: skip
            conn.execute(
                masters.insert().values(
                    master_id=mid,
                    status=status,
                    merged_into=into,
                    member_count=1,
                    created_at=T0,
                    updated_at=T0,
                    change_seq=1,
                )  # fmt: skip
            )
        people = [
            (ANN, "Ann Smith", "Ann", "Smith", "Ann.Smith@example.com", "+447911123456", "north"),
            (BOB, "Bob Jones", "Bob", "Jones", "bob@example.net", "+447700900123", "south"),
            (ZED, "Zed Southey", "Zed", "Southey", ZED_EMAIL, ZED_PHONE, "south"),
        ]
        for mid, full, first, last, email, phone, branch in people:
            conn.execute(
                profiles.insert().values(
                    master_id=mid,
                    full_name=full,
                    first_name=first,
                    last_name=last,
                    email=email,
                    phone=phone,
                    birth_year=1990,
                    birth_month=4,
                    birth_day=2,
                    address_line1="1 High Street",
                    city="Leeds",
                    country="GB",
                    branch=branch,
                    consents={"email": {"granted": True}},
                    provenance={"email": {"source": "pos", "rule": "most_recent"}},
                    updated_at=T0,
                    change_seq=2,
                )  # fmt: skip
            )
            conn.execute(
                traits.insert().values(
                    master_id=mid,
                    orders_count=3,
                    visits_count=2,
                    currency="GBP",
                    total_spend=Decimal("1030.15"),
                    open_balance=ANN_BALANCE,
                    visits_by_branch={"north": 1, "south": 1},
                    allergies="peanuts",
                    favourite_dish="risotto",
                    rfm_segment="champion",
                    computed_at=T0,
                    change_seq=3,
                )  # fmt: skip
            )
        links = [("pos", "c-ann", ANN), ("web", "w-ann", ANN), ("pos", "c-bob", BOB),
                 ("pos", "c-zed", ZED)]  # fmt: skip
        for source, source_id, mid in links:
            conn.execute(
                master_links.insert().values(
                    source=source,
                    source_id=source_id,
                    master_id=mid,
                    reason="single",
                    linked_at=T0,
                    change_seq=4,
                )  # fmt: skip
            )
        order_rows = [
            ("pos", "o1", "c-ann", "north", "in_store", at(1), Decimal("12.50")),
            ("pos", "o2", "c-ann", "south", "in_store", at(2), SOUTH_MONEY),
            ("web", "o3", "w-ann", None, "online", at(3), Decimal("30.00")),
            ("pos", "o4", "c-zed", "south", "in_store", at(4), Decimal("5.00")),
        ]
        for seq, (source, oid, cust, branch, channel, placed, total) in enumerate(order_rows):
            conn.execute(
                orders.insert().values(
                    source=source,
                    source_id=oid,
                    customer_source_id=cust,
                    branch=branch,
                    channel=channel,
                    status="completed",
                    placed_at=placed,
                    currency="GBP",
                    total=total,
                    **_lineage(10 + seq),
                )  # fmt: skip
            )
            conn.execute(
                order_lines.insert().values(
                    source=source,
                    order_source_id=oid,
                    line_no=1,
                    product="Flat white",
                    quantity=Decimal("1"),
                    unit_price=total,
                    amount=total,
                    currency="GBP",
                )  # fmt: skip
            )
        conn.execute(
            invoices.insert().values(
                source="ledger",
                source_id="i1",
                customer_source_id="c-ann",
                number="INV-1",
                status="open",
                issued_at=at(5),
                currency="GBP",
                amount=ANN_BALANCE,
                balance=ANN_BALANCE,
                **_lineage(20),
            )  # fmt: skip
        )
        # The ledger's customer c-ann is the POS one here: link keys are (source, id).
        conn.execute(
            master_links.insert().values(
                source="ledger",
                source_id="c-ann",
                master_id=ANN,
                reason="single",
                linked_at=T0,
                change_seq=4,
            )  # fmt: skip
        )
        conn.execute(
            payments.insert().values(
                source="ledger",
                source_id="p1",
                customer_source_id="c-ann",
                status="paid",
                method="card",
                paid_at=at(6),
                currency="GBP",
                amount=Decimal("10"),
                **_lineage(21),
            )  # fmt: skip
        )
        for seq, (eid, kind, when) in enumerate(
            (("e1", "opened", at(7)), ("e2", "form_submitted", at(8)))
        ):
            conn.execute(
                events.insert().values(
                    source="web",
                    source_id=eid,
                    customer_source_id="w-ann",
                    kind=kind,
                    occurred_at=when,
                    **_lineage(30 + seq),
                )  # fmt: skip
            )
        conn.execute(
            segments.insert().values(
                name="regulars", definition_hash="x", member_count=3, evaluated_at=T0
            )
        )
        for mid in (ANN, BOB, ZED):
            conn.execute(
                segment_memberships.insert().values(
                    segment="regulars", master_id=mid, entered_at=T0, change_seq=5
                )
            )


@dataclass
class World:
    """The store, the app, and one token secret per persona."""

    store: Store
    client: TestClient
    tokens: dict[str, str]

    def get(self, who: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)


PERSONAS = {
    "staff_north": ("staff", "north"),
    "manager_north": ("manager", "north"),
    "staff_south": ("staff", "south"),
    "admin": ("admin", None),
    "service": ("service", None),
}


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    build_world(store)
    secrets = {
        who: create_token(store, name=who, role=role, branch=branch).secret
        for who, (role, branch) in PERSONAS.items()
    }
    app = create_app(store, phone_regions=("GB",), default_page_size=2, max_page_size=3)
    with TestClient(app, follow_redirects=False) as client:
        yield World(store, client, secrets)
