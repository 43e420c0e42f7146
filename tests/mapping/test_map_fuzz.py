"""Malformed raw records never crash the map stage: each is accepted or rejected, none lost."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm_hub.config import load_config
from crm_hub.mapping import map_source
from crm_hub.mapping.apply import compile_mapping
from crm_hub.mapping.spec import load_mapping
from crm_hub.mapping.stage import _map_items
from crm_hub.store import Store
from crm_hub.store.canonical import RawItem
from crm_hub.store.raw import land_batch
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import rejected_records

FUZZ_MAPPING = """\
version: 1
phone_region: DE
timezone: Europe/Berlin
currency: EUR
streams:
  customers:
    target: customer
    id: {paths: [id, email], transforms: [first_non_empty, trim]}
    fields:
      full_name: {paths: [first, last], transforms: [{concat: {sep: " "}}]}
      first_name: {path: name, transforms: [{split_name: {part: first}}]}
      email: {path: email, transforms: [normalise_email]}
      emails: "alt[].email"
      phone: {path: phone, transforms: [normalise_phone]}
      phones: "alt[].phone"
      birth_date: {path: born, transforms: [{parse_date: {format: "%d.%m.%Y"}}]}
      address_line1: {path: street, transforms: [normalise_address]}
      postcode: {path: zip, transforms: [normalise_postcode]}
      country: {path: country, transforms: [upper]}
      branch: {path: branch, transforms: [lower, {regex_extract: {pattern: "[a-z]+"}}]}
      language: {path: lang, transforms: [{lookup: {table: {de: de, en: en}, keep_unknown: true}}]}
      updated_at: updated
      consent.email: {path: optin, transforms: [trim]}
      consent.email_at: optin_at
      attributes.notes: notes
  orders:
    target: order
    id: id
    fields:
      customer_source_id: customer.id
      placed_at: {path: at, required: true}
      currency: cur
      total: {path: total_cents, transforms: [cents_to_decimal]}
    lines:
      each: "items[]"
      fields:
        product: name
        quantity: {path: qty, transforms: [decimal]}
        unit_price: {path: price, transforms: [{decimal: {decimal_comma: true}}]}
        discount: {path: off, transforms: [coalesce]}
  invoices:
    target: invoice
    id: id
    fields:
      amount: {path: "lines[].amount", transforms: [sum]}
      due_date: due
      balance: balance
"""

KEYS = ["id", "email", "first", "last", "name", "alt", "phone", "born", "street", "zip",
        "country", "branch", "lang", "updated", "optin", "optin_at", "notes", "customer", "at",
        "cur", "total_cents", "items", "qty", "price", "off", "lines", "amount", "due",
        "balance"]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
    | st.sampled_from(
        [
            "",
            " ",
            "12,50 EUR",
            "2026-02-30",
            "2026-10-01T12:00:00+25:00",
            "+49 30 901820",
            "0000",
            "a@b",
            "x@gmail.com",
            "1e400",
            "NaN",
            "--13-45",
            "31.02.1990",
            "yes",
            "GBP",
            "€",
            "9" * 40,
            "\x00",
            "ø" * 70,
        ]
    )  # fmt: skip
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.sampled_from(KEYS), values, max_size=12)
records = objects | values  # not even an object: rejected too
streams = st.sampled_from(["customers", "orders", "invoices", "unknown"])


def loaded(tmp_path: Path) -> Any:
    path = tmp_path / "fuzz.yaml"
    path.write_text(FUZZ_MAPPING, encoding="utf-8")
    return load_mapping(path, "mappings/fuzz.yaml")


def test_thousands_of_malformed_records_are_all_accounted_for(tmp_path: Path) -> None:
    mapping = loaded(tmp_path)
    plans = compile_mapping(mapping)
    seen = {"records": 0}

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(streams, records), min_size=50, max_size=50))
    def check(batch: list[tuple[str, Any]]) -> None:
        items = [RawItem(n, s, f"k{n}", p, False, 1) for n, (s, p) in enumerate(batch)]
        mapped = _map_items(items, plans, "fuzz", mapping)
        accepted = sum(len(keys) for keys in mapped.accepted.values())
        assert accepted + len(mapped.rejections) == len(items)
        assert {r.reject_key for r in mapped.rejections}.isdisjoint(
            {k for keys in mapped.accepted.values() for k in keys}
        )
        assert all(r.reason_code != "map_error" for r in mapped.rejections), [
            r.message for r in mapped.rejections if r.reason_code == "map_error"
        ]
        seen["records"] += len(items)

    check()
    assert seen["records"] >= 5_000


def test_malformed_records_land_and_map_on_both_databases(
    store: Store, write_project: Callable[..., Path]
) -> None:
    hub = load_config(
        write_project(
            "  fuzz:\n    type: file\n    path: x.jsonl\n    stream: customers\n"
            "    primary_key: [id]\n    mapping: mappings/fuzz.yaml\n",
            {"mappings/fuzz.yaml": FUZZ_MAPPING},
        )
    )
    totals = {"landed": 0, "read": 0, "accepted": 0, "rejected": 0}

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    # Sync lands JSON objects only (Airbyte and Singer records are objects): objects here.
    @given(st.lists(st.tuples(streams, objects), min_size=50, max_size=50))
    def land_and_map(drawn: list[tuple[str, Any]]) -> None:
        chunk = totals["landed"]
        by_stream: dict[str, dict[str, tuple[str, str, bool]]] = {}
        for n, (stream, payload) in enumerate(drawn):
            text = json.dumps(payload)
            digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
            by_stream.setdefault(stream, {})[f"{chunk + n}"] = (digest, text, False)
        with store.begin() as conn:
            for stream, rows in by_stream.items():
                land_batch(conn, "fuzz", stream, rows, run_id="fuzz", now=utcnow())
        totals["landed"] += len(drawn)
        result = map_source(store, hub, "fuzz", batch_size=20)
        assert result.read == len(drawn)  # only the new records: incremental
        assert result.accepted + result.rejected == result.read
        for key in ("read", "accepted", "rejected"):
            totals[key] += getattr(result, key)

    land_and_map()
    assert totals["landed"] == totals["read"] >= 2_000
    assert totals["accepted"] + totals["rejected"] == totals["read"]
    with store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(rejected_records)).scalar_one()
    assert stored == totals["rejected"]
    assert map_source(store, hub, "fuzz").read == 0
