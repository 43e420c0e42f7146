"""The map stage on a real store (SQLite and PostgreSQL): rows, rejections, watermark, leases."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from crm_hub.config import HubConfig, load_config
from crm_hub.errors import BusyError, ConfigError
from crm_hub.mapping import map_source, preview_source, replay_rejected
from crm_hub.store import Store
from crm_hub.store.leases import hold_lease
from crm_hub.store.raw import land_batch
from crm_hub.store.rejected import list_rejected
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    invoices,
    map_watermarks,
    order_lines,
    orders,
    runs,
    source_customers,
)

QUICKBOOKS = """\
version: 1
currency: EUR
streams:
  invoices:
    target: invoice
    id: Id
    fields:
      customer_source_id: CustomerRef.value
      number: DocNumber
      issued_at: TxnDate
      due_date: DueDate
      amount: {path: "Line[].Amount", transforms: [sum]}
      balance: {path: Balance, transforms: [decimal]}
  customers:
    target: customer
    fields:
      full_name: DisplayName
      email: PrimaryEmailAddr.Address
      phone: {path: PrimaryPhone.FreeFormNumber, transforms: [trim]}
      consent.email: {path: Marketing, transforms: [{lookup: {table: {yes: true, no: false}}}]}
      attributes.notes: Notes
"""


def land(store: Store, stream: str, records: dict[str, Any], source: str = "quickbooks") -> None:
    """Land raw records (None: deleted) as the sync stage would."""
    rows = {
        key: (
            hashlib.blake2b(orjson.dumps([payload, payload is None]), digest_size=16).hexdigest(),
            orjson.dumps(payload if payload is not None else {"Id": key}).decode(),
            payload is None,
        )
        for key, payload in records.items()
    }
    with store.begin() as conn:
        land_batch(conn, source, stream, rows, run_id="test", now=utcnow())


@pytest.fixture
def hub(write_project: Callable[..., Path]) -> HubConfig:
    path = write_project(
        "  quickbooks:\n    type: file\n    path: none.jsonl\n    stream: invoices\n"
        "    primary_key: [Id]\n    mapping: mappings/quickbooks.yaml\n",
        {"mappings/quickbooks.yaml": QUICKBOOKS},
    )
    return load_config(path)


def invoice(number: str, *amounts: str, balance: str = "0") -> dict[str, Any]:
    return {
        "Id": number,
        "DocNumber": number,
        "CustomerRef": {"value": "c-7"},
        "TxnDate": "2026-10-01T12:00:00+02:00",
        "DueDate": "2026-10-31",
        "Line": [{"Amount": a} for a in amounts],
        "Balance": balance,
    }


def count(store: Store, table: Any) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_invoices_map_exactly_and_a_bad_amount_is_one_actionable_rejection(
    store: Store, hub: HubConfig
) -> None:
    land(store, "invoices", {"1042": invoice("1042", "10.00", "2.50", balance="12.50"),
                             "1043": invoice("1043", "12,50 EUR")})  # fmt: skip
    result = map_source(store, hub, "quickbooks")
    assert (result.read, result.accepted, result.rejected) == (2, 1, 1)
    assert result.accepted + result.rejected == result.read
    with store.read() as conn:
        row = conn.execute(select(invoices)).mappings().one()
        rejected = list_rejected(conn, stage="map")
    assert row["amount"] == Decimal("12.50") and row["currency"] == "EUR"
    assert row["balance"] == Decimal("12.50") and str(row["due_date"]) == "2026-10-31"
    assert row["issued_at"].isoformat() == "2026-10-01T10:00:00+00:00"
    assert row["issued_at_offset"] == "+02:00" and row["customer_source_id"] == "c-7"
    assert [(r["record_key"], r["reason_code"]) for r in rejected] == [("1043", "not_a_decimal")]
    assert rejected[0]["message"] == (
        'invoice 1043: amount "12,50 EUR" is not a decimal; '
        "mapping mappings/quickbooks.yaml:12 field Line[].Amount"
    )
    assert orjson.loads(rejected[0]["payload"])["Line"] == [{"Amount": "12,50 EUR"}]


def test_customers_are_normalised_with_consent_and_attributes(store: Store, hub: HubConfig) -> None:
    ann = {
        "DisplayName": "Dr. Ann Lee",
        "Marketing": "Yes",
        "PrimaryEmailAddr": {"Address": "Ann.Lee+x@GMAIL.com"},
        "PrimaryPhone": {"FreeFormNumber": " 07911 123456 "},
        "Notes": "nut allergy",
    }
    land(store, "customers", {"9": ann})
    assert map_source(store, hub, "quickbooks").accepted == 1
    with store.read() as conn:
        row = conn.execute(select(source_customers)).mappings().one()
    assert (row["title"], row["first_name"], row["last_name"]) == ("Dr.", "Ann", "Lee")
    assert row["email"] == "Ann.Lee+x@gmail.com" and row["email_match_key"] == "annlee@gmail.com"
    assert (row["phone"], row["phone_raw"], row["phone_flag"]) == (
        "+447911123456",
        "07911 123456",
        None,
    )
    assert row["consents"] == {"email": {"granted": True, "source": "quickbooks"}}
    assert row["attributes"] == {"notes": "nut allergy"}
    assert (row["source_id"], row["stream"], row["deleted"]) == ("9", "customers", False)


def test_rerun_does_nothing_and_a_changed_record_is_mapped_alone(
    store: Store, hub: HubConfig
) -> None:
    land(store, "invoices", {str(n): invoice(str(n), "1.00") for n in range(1, 6)})
    first = map_source(store, hub, "quickbooks", batch_size=2)  # several batches
    assert (first.read, first.accepted) == (5, 5)
    assert map_source(store, hub, "quickbooks").read == 0
    land(store, "invoices", {"3": invoice("3", "9.99")})
    again = map_source(store, hub, "quickbooks")
    assert (again.read, again.accepted, again.remapped) == (1, 1, False)
    with store.read() as conn:
        amount = conn.execute(select(invoices.c.amount).where(invoices.c.source_id == "3"))
        assert amount.scalar_one() == Decimal("9.99")
    assert count(store, invoices) == 5


def test_a_changed_mapping_re_maps_the_source_from_the_start(store: Store, hub: HubConfig) -> None:
    land(store, "invoices", {"1": invoice("1", "1.00"), "2": invoice("2", "2.00")})
    map_source(store, hub, "quickbooks")
    path = hub.resolve_path("mappings/quickbooks.yaml")
    path.write_text(path.read_text().replace("currency: EUR", "currency: CHF"))
    result = map_source(store, hub, "quickbooks")
    assert (result.read, result.remapped) == (2, True)
    with store.read() as conn:
        assert set(conn.execute(select(invoices.c.currency)).scalars()) == {"CHF"}


def test_a_deleted_raw_record_marks_its_rows_deleted(store: Store, hub: HubConfig) -> None:
    land(store, "invoices", {"1": invoice("1", "1.00"), "2": invoice("2", "2.00")})
    map_source(store, hub, "quickbooks")
    land(store, "invoices", {"2": None})
    result = map_source(store, hub, "quickbooks")
    assert (result.read, result.accepted, result.deleted) == (1, 1, 1)
    with store.read() as conn:
        flags = dict(conn.execute(select(invoices.c.source_id, invoices.c.deleted)).tuples().all())
    assert flags == {"1": False, "2": True}


def test_fixed_data_resolves_its_rejection(store: Store, hub: HubConfig) -> None:
    land(store, "invoices", {"7": invoice("7", "oops")})
    assert map_source(store, hub, "quickbooks").rejected == 1
    land(store, "invoices", {"7": invoice("7", "7.00")})
    assert map_source(store, hub, "quickbooks").accepted == 1
    with store.read() as conn:
        assert list_rejected(conn, stage="map") == []
        assert len(list_rejected(conn, stage="map", include_resolved=True)) == 1


def test_replay_after_a_mapping_fix_resolves_without_moving_the_watermark(
    store: Store, hub: HubConfig
) -> None:
    land(store, "customers", {"9": {"DisplayName": "Ann", "Marketing": "maybe"}})
    assert map_source(store, hub, "quickbooks").rejected == 1
    with store.read() as conn:
        assert list_rejected(conn, reason="unknown_value")[0]["message"].startswith(
            'customer 9: consent.email "maybe" is not in the lookup table (known: no, yes)'
        )
        mark = conn.execute(select(map_watermarks.c.change_seq)).scalar_one()
    path = hub.resolve_path("mappings/quickbooks.yaml")
    path.write_text(path.read_text().replace("yes: true,", "yes: true, maybe: false,"))
    replayed = replay_rejected(store, hub, "quickbooks", reason="unknown_value")
    assert (replayed.read, replayed.accepted, replayed.rejected) == (1, 1, 0)
    with store.read() as conn:
        assert list_rejected(conn, stage="map") == []
        assert conn.execute(select(map_watermarks.c.change_seq)).scalar_one() == mark


def test_a_stream_without_mapping_is_rejected_not_dropped(store: Store, hub: HubConfig) -> None:
    land(store, "vendors", {"v1": {"Id": "v1"}})
    result = map_source(store, hub, "quickbooks")
    assert (result.read, result.rejected) == (1, 1)
    with store.read() as conn:
        (row,) = list_rejected(conn, stage="map")
    assert row["reason_code"] == "unmapped_stream"
    assert "add `streams: vendors:` to mappings/quickbooks.yaml" in row["message"]


BROKEN = {
    "unknown-key": QUICKBOOKS.replace("    id: Id\n", "    id: Id\n    colour: red\n"),
    "unknown-transform": QUICKBOOKS.replace("[decimal]", "[decimals]"),
    "bad-path": QUICKBOOKS.replace("CustomerRef.value", "CustomerRef..value"),
    "missing-version": QUICKBOOKS.replace("version: 1\n", ""),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_mapping_is_a_config_error_and_writes_nothing(
    store: Store, hub: HubConfig, kind: str
) -> None:
    land(store, "invoices", {"1": invoice("1", "1.00")})
    hub.resolve_path("mappings/quickbooks.yaml").write_text(BROKEN[kind])
    with pytest.raises(ConfigError, match=r"mappings/quickbooks\.yaml:\d+ "):
        map_source(store, hub, "quickbooks")
    for table in (invoices, runs, map_watermarks):
        assert count(store, table) == 0


def test_preview_shows_rows_and_rejections_but_writes_nothing(store: Store, hub: HubConfig) -> None:
    land(store, "invoices", {"1": invoice("1", "1.00"), "2": invoice("2", "x")})
    items = preview_source(store, hub, "quickbooks", limit=5)
    assert [(i.record_key, i.mapped is not None, i.rejection is not None) for i in items] == [
        ("1", True, False),
        ("2", False, True),
    ]
    assert items[0].mapped is not None and items[0].mapped.row["amount"] == Decimal("1.00")
    for table in (invoices, runs, map_watermarks):
        assert count(store, table) == 0


def test_one_map_per_source_at_a_time(store: Store, hub: HubConfig) -> None:
    with (
        hold_lease(store, "map:quickbooks", "OTHER"),
        pytest.raises(BusyError, match="map:quickbooks"),
    ):
        map_source(store, hub, "quickbooks")


def test_source_without_mapping_says_how_to_add_one(
    store: Store, write_project: Callable[..., Path]
) -> None:
    hub = load_config(
        write_project(
            "  pos:\n    type: file\n    path: x.csv\n    stream: c\n    primary_key: [id]\n"
        )
    )
    with pytest.raises(ConfigError, match="add `mapping: mappings/pos.yaml`"):
        map_source(store, hub, "pos")


ORDERS = """\
version: 1
currency: GBP
streams:
  orders:
    target: order
    fields:
      placed_at: placed_at
    lines:
      each: items[]
      fields:
        product: name
        quantity: qty
        unit_price: {path: price, transforms: [cents_to_decimal]}
"""


def test_order_lines_are_replaced_when_the_order_changes(
    store: Store, write_project: Callable[..., Path]
) -> None:
    path = write_project(
        "  shop:\n    type: file\n    path: x.jsonl\n    stream: orders\n"
        "    primary_key: [id]\n    mapping: mappings/shop.yaml\n",
        {"mappings/shop.yaml": ORDERS},
    )
    hub = load_config(path)
    tea, cake = {"name": "Tea", "qty": 2, "price": 250}, {"name": "Cake", "qty": 1, "price": 320}
    two = {"placed_at": "2026-10-01T09:00:00", "items": [tea, cake]}
    land(store, "orders", {"o1": two}, source="shop")
    map_source(store, hub, "shop")
    land(store, "orders", {"o1": {**two, "items": two["items"][:1]}}, source="shop")
    map_source(store, hub, "shop")
    with store.read() as conn:
        lines = conn.execute(select(order_lines)).mappings().all()
        order = conn.execute(select(orders)).mappings().one()
    assert [(x["product"], x["quantity"], x["unit_price"], x["amount"]) for x in lines] == [
        ("Tea", Decimal(2), Decimal("2.50"), Decimal("5.00"))
    ]
    assert order["total"] == Decimal("5.00") and order["currency"] == "GBP"
    assert order["placed_at_offset"] == "+00:00"
