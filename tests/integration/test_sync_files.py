"""Sync of file sources into a real store (SQLite and PostgreSQL): landing, idempotence,
incremental reads, and every kind of malformed line becoming a rejection with file:line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_hub.config import load_config
from crm_hub.errors import FatalSourceError
from crm_hub.store import Store, open_store
from crm_hub.store.rejected import list_rejected
from crm_hub.store.schema import raw_records, sync_state
from crm_hub.sync import SyncResult, sync_source

CSV_SOURCE = """\
  pos:
    type: file
    path: data/customers.csv
    stream: customers
    primary_key: [id]
"""
CUSTOMERS = "id,name,email,updated_at\n1,Ann,ann@x.org,2026-01-01\n2,Bob,bob@x.org,2026-01-02\n"


def sync(hub: Path, name: str = "pos") -> tuple[SyncResult, Store]:
    config = load_config(hub)
    store = open_store(config.store)
    try:
        return sync_source(store, config, name), store
    finally:
        store.dispose()


def raw(store: Store) -> dict[str, dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(select(raw_records.c.record_key, raw_records.c.payload))
        return {key: payload for key, payload in rows}


def max_change_seq(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.max(raw_records.c.change_seq))).scalar() or 0)


def rejections(store: Store) -> list[tuple[str, str]]:
    with store.read() as conn:
        return sorted((r["location"], r["reason_code"]) for r in list_rejected(conn))


def test_records_land_once_and_resync_writes_nothing(
    write_project: Callable[..., Path], store: Store
) -> None:
    hub = write_project(CSV_SOURCE, {"data/customers.csv": CUSTOMERS})
    first, _ = sync(hub)
    assert (first.read, first.inserted) == (2, 2)
    assert raw(store)["1"] == {
        "id": "1",
        "name": "Ann",
        "email": "ann@x.org",
        "updated_at": "2026-01-01",
    }
    seq = max_change_seq(store)

    os.utime(hub.parent / "data/customers.csv")  # same content, new mtime: re-read, hash-diffed
    second, _ = sync(hub)
    assert (second.read, second.inserted, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert max_change_seq(store) == seq  # nothing written: downstream sees no change

    third, _ = sync(hub)  # unchanged file: not even read
    assert third.read == 0


def test_changed_record_updates_in_place_with_a_new_change_seq(
    write_project: Callable[..., Path], store: Store
) -> None:
    hub = write_project(CSV_SOURCE, {"data/customers.csv": CUSTOMERS})
    sync(hub)
    seq = max_change_seq(store)
    write_project(CSV_SOURCE, {"data/customers.csv": CUSTOMERS.replace("Bob", "Robert")})
    result, _ = sync(hub)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert raw(store)["2"]["name"] == "Robert"
    with store.read() as conn:
        changed = (
            conn.execute(select(raw_records.c.record_key).where(raw_records.c.change_seq > seq))
            .scalars()
            .all()
        )
    assert changed == ["2"]


def test_each_malformed_line_is_rejected_with_file_and_line(
    write_project: Callable[..., Path], store: Store
) -> None:
    content = (
        b"id,name,email,updated_at\n"
        b"1,Ann,ann@x.org,2026-01-01\n"
        b",NoKey,x@x.org,2026-01-01\n"  # line 3: empty primary key
        b"3,Too,many,columns,here\n"  # line 4
        b"4,Bad\xff,b@x.org,2026-01-01\n"  # line 5: not UTF-8
        b'5,"Multi\nline",m@x.org,2026-01-01\n'  # lines 6-7: fine
        b"6,Last,l@x.org,2026-01-02\n"  # line 8
    )
    hub = write_project(CSV_SOURCE, {"data/customers.csv": content})
    result, _ = sync(hub)
    assert result.rejected == 3
    assert sorted(raw(store)) == ["1", "5", "6"]
    assert raw(store)["5"]["name"] == "Multi\nline"
    assert rejections(store) == [
        ("data/customers.csv:3", "missing_primary_key"),
        ("data/customers.csv:4", "wrong_column_count"),
        ("data/customers.csv:5", "bad_encoding"),
    ]
    again, _ = sync(hub)  # unchanged file: the ledger is not duplicated
    assert len(rejections(store)) == 3 and again.rejected == 0


def test_jsonl_bad_lines_are_rejected_and_the_rest_lands(
    write_project: Callable[..., Path], store: Store
) -> None:
    source = CSV_SOURCE.replace("customers.csv", "orders.jsonl").replace("customers\n", "orders\n")
    content = (
        b'{"id": 1, "total": "9.50"}\n'
        b"{not json}\n"
        b"[1, 2]\n"
        b'{"total": "1.00"}\n'
        b'{"id": "x\xff"}\n'
        b"\n"
        b'{"id": 2, "total": "3.20", "lines": [{"sku": "A", "qty": 2}]}\n'
    )
    hub = write_project(source, {"data/orders.jsonl": content})
    result, _ = sync(hub)
    assert sorted(raw(store)) == ["1", "2"]
    assert raw(store)["2"]["lines"] == [{"sku": "A", "qty": 2}]
    assert result.rejected == 4
    assert rejections(store) == [
        ("data/orders.jsonl:2", "invalid_json"),
        ("data/orders.jsonl:3", "not_an_object"),
        ("data/orders.jsonl:4", "missing_primary_key"),
        ("data/orders.jsonl:5", "bad_encoding"),
    ]


def test_bom_delimiter_and_encoding_from_config(
    write_project: Callable[..., Path], store: Store
) -> None:
    source = CSV_SOURCE + "    delimiter: ';'\n    encoding: latin-1\n"
    content = "\ufeffid;name\n1;Zoë\n".encode("utf-8")[:3] + "id;name\n1;Zoë\n".encode("latin-1")
    hub = write_project(source, {"data/customers.csv": content})
    sync(hub)
    assert raw(store) == {"1": {"id": "1", "name": "Zoë"}}


def test_cursor_field_skips_records_at_or_below_the_saved_cursor(
    write_project: Callable[..., Path], store: Store
) -> None:
    source = CSV_SOURCE + "    cursor_field: updated_at\n"
    hub = write_project(source, {"data/customers.csv": CUSTOMERS})
    sync(hub)
    newer = CUSTOMERS + "3,Cy,cy@x.org,2026-01-03\n"
    write_project(source, {"data/customers.csv": newer.replace("1,Ann", "1,Anne")})
    result, _ = sync(hub)
    # Ann changed without moving her cursor: the cursor says she is old, so she is skipped;
    # Bob sits at the cursor and is re-read (ties are never lost), Cy is new.
    assert (result.read, result.inserted, result.unchanged) == (2, 1, 1)
    assert raw(store)["1"]["name"] == "Ann"
    with store.read() as conn:
        state = conn.execute(select(sync_state.c.state)).scalar_one()
    assert state["cursor"] == "2026-01-03"


def test_glob_reads_every_file_and_skips_unchanged_ones(
    write_project: Callable[..., Path], store: Store
) -> None:
    source = CSV_SOURCE.replace("data/customers.csv", "data/*.csv")
    files = {"data/a.csv": "id,name\n1,Ann\n", "data/b.csv": "id,name\n2,Bob\n"}
    hub = write_project(source, files)
    assert sync(hub)[0].inserted == 2
    write_project(source, {"data/c.csv": "id,name\n3,Cy\n"})
    result, _ = sync(hub)
    assert (result.read, result.inserted) == (1, 1)


def test_composite_primary_key(write_project: Callable[..., Path], store: Store) -> None:
    source = CSV_SOURCE.replace("[id]", "[branch, id]")
    hub = write_project(source, {"data/customers.csv": "branch,id,name\nn,1,Ann\ns,1,Bob\n"})
    sync(hub)
    assert sorted(raw(store)) == ['["n","1"]', '["s","1"]']


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "matches no file"),
        ({"data/customers.csv": "name,email\nAnn,a@x\n"}, "customers.csv:1: no column id"),
        ({"data/customers.csv": "id,id\n1,2\n"}, r"duplicate column\(s\) id"),
    ],
    ids=["no-file", "no-key-column", "duplicate-header"],
)
def test_unusable_file_fails_the_run_clearly(
    write_project: Callable[..., Path], store: Store, files: dict[str, str], message: str
) -> None:
    hub = write_project(CSV_SOURCE, files)
    with pytest.raises(FatalSourceError, match=message):
        sync(hub)
    with store.read() as conn:
        status = conn.execute(select(func.count()).select_from(raw_records)).scalar()
    assert status == 0


def test_first_load_with_a_key_repeated_across_batches_keeps_the_last_version(
    write_project: Callable[..., Path], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first load inserts without diffing; a key seen in an earlier batch of the same run
    # must fall back to the upsert, not fail and not duplicate.
    monkeypatch.setenv("CRM_HUB_SYNC__BATCH_SIZE", "2")
    rows = "id,name\n1,Ann\n2,Bob\n3,Cy\n1,Anne\n4,Di\n5,Ed\n"
    hub = write_project(CSV_SOURCE, {"data/customers.csv": rows})
    result, _ = sync(hub)
    assert raw(store) == {
        "1": {"id": "1", "name": "Anne"},
        "2": {"id": "2", "name": "Bob"},
        "3": {"id": "3", "name": "Cy"},
        "4": {"id": "4", "name": "Di"},
        "5": {"id": "5", "name": "Ed"},
    }
    assert (result.read, result.inserted, result.updated) == (6, 5, 1)
