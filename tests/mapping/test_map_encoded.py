"""Rows a map worker binds for the store (crm_hub.store.canonical.encode_values) are written as
they are, read back as the plain rows would be, and still pass the erasure and echo checks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from sqlalchemy import select

from crm_hub.mapping.batches import Batch
from crm_hub.mapping.echoes import suppress_echoes
from crm_hub.mapping.erased import drop_erased
from crm_hub.store import Store, open_store
from crm_hub.store.canonical import (
    decode_values,
    encode_values,
    json_text,
    row_values,
    upsert_encoded,
    upsert_values,
)
from crm_hub.store.erasures import save_tombstones, value_hash
from crm_hub.store.schema import publish_echoes, source_customers
from tests.conftest import PG_DSN, pg_url

T0 = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
COMMON = {"deleted": False, "mapped_at": T0, "run_id": "r1"}


def person(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "source": "news", "source_id": f"p{n}", "email": f"p{n}@example.com",
        "first_name": "Zoë", "emails": [{"email": f"p{n}@example.com", "flag": None}],
        "consents": {"email": {"granted": True, "at": T0.isoformat(), "source": "news"}},
        "attributes": {"tags": ["Soho"], "visits": 2, "1": {"nested": [1.5, None]}},
        "updated_at": T0.astimezone(timezone(timedelta(hours=2))), "birth_year": 1984,
        "stream": "members", "raw_id": n, "raw_change_seq": n,
    }  # fmt: skip
    return {**row, **changes}


def encoded(store: Store, *rows: dict[str, Any]) -> list[list[Any]]:
    values = [row_values("source_customers", r) for r in rows]
    encode_values(store.engine.dialect, "source_customers", values)
    return values


def stored(store: Store) -> list[dict[str, Any]]:
    c = source_customers.c
    query = select(source_customers).order_by(c.source_id)
    with store.read() as conn:
        return [{k: v for k, v in r.items() if k != "id"} for r in conn.execute(query).mappings()]


def test_bound_rows_read_back_as_the_plain_rows_do(store: Store) -> None:
    plain = [row_values("source_customers", person(n)) for n in range(3)]
    values = encoded(store, *(person(n) for n in range(3)))
    assert values != plain  # JSON is text now (and, on SQLite, times too)

    decode_values(store.engine.dialect, "source_customers", values)

    assert values == plain
    assert values[0][plain[0].index(T0.astimezone(timezone(timedelta(hours=2))))] == T0


def test_bound_rows_are_written_as_the_plain_rows_are(store: Store) -> None:
    with store.begin() as conn:
        upsert_values(conn, "source_customers", [row_values("source_customers", person(1))], COMMON)
    plain = stored(store)
    with store.begin() as conn:
        conn.execute(source_customers.delete())
        upsert_encoded(conn, "source_customers", encoded(store, person(1)), COMMON)

    assert stored(store) == plain
    assert plain[0]["attributes"] == person(1)["attributes"]


def test_json_text_is_what_json_dumps_writes_without_spaces() -> None:
    assert json_text({"b": [1, None], "a": "Zoë", 3: True}) == '{"b":[1,null],"a":"Zoë","3":true}'
    assert json_text({"n": 2**70}) == '{"n":1180591620717411303424}'


def test_an_erased_person_is_dropped_from_a_worker_batch(store: Store) -> None:
    batch = Batch()
    batch.encoded["source_customers"] = encoded(store, person(1), person(2))
    with store.begin() as conn:
        save_tombstones(conn, [("email", value_hash("p2@example.com"))], now=T0, reason="test")
        assert drop_erased(conn, "news", batch) == 1
        upsert_values(conn, "source_customers", batch.values["source_customers"], COMMON)

    assert batch.encoded == {}
    assert [r["source_id"] for r in stored(store)] == ["p1"]
    assert stored(store)[0]["emails"] == person(1)["emails"]


def test_a_worker_batch_of_echoes_only_is_not_written(store: Store) -> None:
    with store.begin() as conn:
        upsert_values(conn, "source_customers", [row_values("source_customers", person(1))], COMMON)
        conn.execute(publish_echoes.insert().values(
            source="news", email_hash=value_hash("p1@example.com"), destination="newsletter",
            master_id="m1", written={"consent": {"email": True}, "labels": []}, sent_at=T0,
        ))  # fmt: skip
    again = person(1, raw_change_seq=9, updated_at=T0 + timedelta(days=1))
    batch = Batch()
    batch.encoded["source_customers"] = encoded(store, again, person(2))

    with store.begin() as conn:
        assert suppress_echoes(conn, "news", batch) == 1

    assert [v[1] for v in batch.values["source_customers"]] == ["p2"]


def many(count: int, **changes: Any) -> list[dict[str, Any]]:
    """Enough rows for PostgreSQL's COPY path (crm_hub.store.canonical._COPY_FROM)."""
    return [person(n, **changes) for n in range(count)]


def test_a_large_batch_of_new_rows_is_written_as_the_upsert_writes_it(store: Store) -> None:
    rows = many(250)
    with store.begin() as conn:
        for row in rows:  # one at a time: the plain upsert, never a COPY
            upsert_values(conn, "source_customers", [row_values("source_customers", row)], COMMON)
    plain = stored(store)
    with store.begin() as conn:
        conn.execute(source_customers.delete())
        upsert_encoded(conn, "source_customers", encoded(store, *rows), COMMON)

    assert stored(store) == plain


def test_a_large_batch_overwrites_the_rows_it_shares_and_adds_the_rest(store: Store) -> None:
    with store.begin() as conn:
        upsert_encoded(conn, "source_customers", encoded(store, *many(250)[:1]), COMMON)
        upsert_encoded(conn, "source_customers", encoded(store, *many(120)[100:]), COMMON)
    newer = many(250, first_name="Ann", raw_change_seq=7)
    with store.begin() as conn:
        upsert_encoded(conn, "source_customers", encoded(store, *newer), COMMON)

    rows = stored(store)
    assert len(rows) == 250
    assert {(r["first_name"], r["raw_change_seq"]) for r in rows} == {("Ann", 7)}


def test_a_row_committed_during_a_large_batch_is_overwritten_not_duplicated(
    pg_schema: str,
) -> None:
    """PostgreSQL: the batch's check finds no key, then another transaction commits one while
    the batch's COPY waits on it; the batch falls back to the upsert and wins."""
    store = open_store(pg_url(pg_schema))
    rows = many(250, first_name="Ann")
    other = store.engine.connect()
    other_tx = other.begin()
    upsert_values(other, "source_customers", [row_values("source_customers", person(5))], COMMON)
    writer = threading.Thread(target=_write_in_transaction, args=(store, encoded(store, *rows)))
    writer.start()
    _wait_for_a_blocked_backend(pg_schema)
    other_tx.commit()
    other.close()
    writer.join()

    found = stored(store)
    store.dispose()
    assert len(found) == 250
    assert {r["first_name"] for r in found} == {"Ann"}


def _write_in_transaction(store: Store, values: list[list[Any]]) -> None:
    with store.begin() as conn:
        upsert_encoded(conn, "source_customers", values, COMMON)


def _wait_for_a_blocked_backend(schema: str) -> None:
    """Until a backend of this test waits on a lock (the batch's COPY on the other's key)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'COPY%%'"
    )
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for _ in range(3000):
            row = conn.execute(query).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"no COPY waited on a lock ({schema})")
