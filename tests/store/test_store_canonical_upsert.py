"""Canonical upserts bind only the columns some row of the batch fills: the rest are written as
NULL all the same, over old values too, on every write path (SQLite's executemany, PostgreSQL's
executemany, COPY into the table, COPY into a temporary table then upsert)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from crm_hub.store import Store
from crm_hub.store.canonical import encode_values, row_values, upsert_encoded, upsert_values
from crm_hub.store.schema import source_customers

COMMON = {"deleted": False, "mapped_at": datetime(2026, 1, 2, tzinfo=UTC), "run_id": "r1"}


def customer(n: int, **fields: Any) -> dict[str, Any]:
    return {"source": "pos", "source_id": f"c{n}", "stream": "customers", "raw_id": n,
            "raw_change_seq": n, **fields}  # fmt: skip


def stored(store: Store) -> dict[str, tuple[Any, ...]]:
    c = source_customers.c
    query = select(c.source_id, c.phone, c.email, c.emails, c.first_name, c.run_id)
    with store.read() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


@pytest.mark.parametrize("count", [3, 300])  # PostgreSQL: executemany, then COPY
def test_columns_no_row_fills_are_written_null_over_old_values(store: Store, count: int) -> None:
    full = [
        customer(
            n, phone=f"+4479{n:08d}", email=f"a{n}@x.org", emails=[{"email": "e"}], first_name="Ann"
        )
        for n in range(count)
    ]
    with store.begin() as conn:  # new keys only (PostgreSQL: COPY straight into the table)
        upsert_values(conn, "source_customers", [row_values("source_customers", r) for r in full],
                      COMMON)  # fmt: skip
    assert stored(store)["c0"] == ("+447900000000", "a0@x.org", [{"email": "e"}], "Ann", "r1")

    emptier = [customer(n, first_name="Bo" if n == count - 1 else None) for n in range(count)]
    values = [row_values("source_customers", r) for r in emptier]
    with store.begin() as conn:
        encode_values(conn.dialect, "source_customers", values)
        upsert_encoded(conn, "source_customers", values, COMMON)  # keys exist: the upsert

    after = stored(store)
    assert len(after) == count
    assert after["c0"] == (None, None, None, None, "r1")
    assert after[f"c{count - 1}"] == (None, None, None, "Bo", "r1")
