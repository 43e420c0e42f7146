"""The publish stage end to end on file and SQL destinations, on SQLite and PostgreSQL: diffs,
reruns, consent, no-clobber, merges, erasure, mirror mode, dry runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from publish_helpers import NO, hub_config, join, leave, merge, put, states
from sqlalchemy import create_engine, text

from crm_hub.publish import erasure_hash, publish, stage
from crm_hub.store import Store, open_store
from crm_hub.store.schema import erasures
from tests.conftest import pg_url

FILE_DEST = """  drop:
    type: file
    path: out/{destination}-{run_id}.jsonl
    fields: [email, first_name, last_name, total_spend]
    mapping: {first_name: given_name}
    channel: email
"""


def drops(tmp_path: Path) -> list[list[dict[str, Any]]]:
    """Every JSONL drop, oldest first, as records."""
    files = sorted((tmp_path / "out").glob("*.jsonl"), key=lambda p: p.name)
    return [[orjson.loads(x) for x in f.read_text().splitlines()] for f in files]


def latest(tmp_path: Path, prefix: str) -> list[dict[str, Any]]:
    """The records of the newest drop named ``prefix-<run id>.jsonl`` (run ids sort by time)."""
    newest = sorted((tmp_path / "out").glob(f"{prefix}-*.jsonl"))[-1]
    return [orjson.loads(x) for x in newest.read_text().splitlines()]


def test_first_push_sends_consenting_people_and_a_rerun_sends_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann", total_spend="12.50")
    put(store, "m_2", email="bob@example.com", first_name="Bob", consents=None)
    put(store, "m_3", email="cy@example.com", first_name="Cy", consents=NO)
    hub = hub_config(tmp_path, store_url, FILE_DEST)

    [first] = publish(store, hub)
    [again] = publish(store, hub)

    assert (first.status, first.sent, first.confirmed) == ("succeeded", 1, 1)
    [[record]] = drops(tmp_path)
    assert record == {"master_id": "m_1", "email": "ann@example.com", "given_name": "Ann",
                      "last_name": None, "total_spend": "12.5", "email_consent": True}  # fmt: skip
    assert (again.status, again.considered, again.sent) == ("succeeded", 0, 0)
    assert len(drops(tmp_path)) == 1  # nothing to send: no file
    assert set(states(store, "drop")) == {"m_1"}


def test_only_the_changed_person_is_sent_and_null_never_clobbers(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann", last_name="Lee")
    put(store, "m_2", email="bob@example.com", first_name="Bob")
    hub = hub_config(tmp_path, store_url, FILE_DEST)
    publish(store, hub)

    put(store, "m_1", email="ann@example.com", first_name="Annie", last_name=None)
    put(store, "m_2", email="bob@example.com", first_name="Bob")  # touched, same content
    [result] = publish(store, hub)

    assert (result.considered, result.sent, result.unchanged) == (2, 1, 1)
    record = drops(tmp_path)[-1][0]
    assert record["given_name"] == "Annie"
    assert "last_name" not in record  # null is never sent over the known "Lee"
    assert states(store, "drop")["m_1"]["payload"]["fields"]["last_name"] == "Lee"


def test_an_older_value_never_overwrites_a_newer_one(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    new = {"first_name": {"source": "pos", "at": "2026-10-01T00:00:00+00:00"}}
    old = {"first_name": {"source": "crm", "at": "2025-01-01T00:00:00+00:00"}}
    put(store, "m_1", email="ann@example.com", first_name="Ann", provenance=new)
    hub = hub_config(tmp_path, store_url, FILE_DEST)
    publish(store, hub)

    put(store, "m_1", email="ann@example.com", first_name="Anne", last_name="Lee", provenance=old)
    publish(store, hub)

    record = drops(tmp_path)[-1][0]
    assert "given_name" not in record and record["last_name"] == "Lee"


def test_opt_out_sends_one_unsubscribe_to_a_destination_that_has_the_person(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann")
    hub = hub_config(tmp_path, store_url, FILE_DEST)
    publish(store, hub)

    put(store, "m_1", email="ann@example.com", first_name="Ann", consents=NO)
    [first] = publish(store, hub)
    put(store, "m_1", email="ann@example.com", first_name="Ann B", consents=NO)
    [second] = publish(store, hub)

    assert first.actions == {"unsubscribe": 1}
    assert drops(tmp_path)[-1] == [
        {"master_id": "m_1", "email": "ann@example.com", "email_consent": False}
    ]
    assert second.sent == 0  # opted out: nothing more goes, not even the new name


def test_erased_people_are_never_sent_and_a_destination_that_had_them_gets_an_erase(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann")
    hub = hub_config(tmp_path, store_url, FILE_DEST)
    publish(store, hub)
    with store.begin() as conn:
        conn.execute(erasures.insert().values(kind="email", value_hash=erasure_hash(
            "Ann@Example.com"), erased_at=datetime.now(UTC)))  # fmt: skip
    put(store, "m_1", email="ann@example.com", first_name="Annie")
    put(store, "m_2", email="Ann@example.com", first_name="Ann again")

    [result] = publish(store, hub)

    assert result.actions == {"erase": 1}
    assert drops(tmp_path)[-1] == [
        {"master_id": "m_1", "email": "ann@example.com", "_erase": True, "_deleted": True}
    ]
    assert states(store, "drop")["m_1"]["payload"] == {"status": "erased"}  # no PII kept
    assert "m_2" not in states(store, "drop")


def test_a_merge_removes_the_merged_away_contact_unless_it_has_the_survivors_email(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_a", email="ann@example.com", first_name="Ann")
    put(store, "m_b", email="ann.lee@work.com", first_name="Ann")
    put(store, "m_c", email="cy@example.com", first_name="Cy")
    put(store, "m_d", email="cy@example.com", first_name="Cy")
    hub = hub_config(tmp_path, store_url, FILE_DEST)
    publish(store, hub)

    merge(store, "m_a", "m_b")
    merge(store, "m_c", "m_d")
    [result] = publish(store, hub)

    assert result.actions == {"merge": 1, "forget": 1}
    assert drops(tmp_path)[-1] == [{"master_id": "m_b", "email": "ann.lee@work.com",
                                    "_deleted": True, "merged_into": "m_a"}]  # fmt: skip
    assert states(store, "drop")["m_d"]["payload"]["status"] == "merged"
    [again] = publish(store, hub)
    assert again.sent == 0


def test_mirror_removes_people_who_left_and_upsert_only_clears_their_segments(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com")
    put(store, "m_2", email="bob@example.com")
    put(store, "m_3", email="cy@example.com")
    join(store, "vip", "m_1", "m_2")
    hub = hub_config(tmp_path, store_url, """  mirror:
    type: file
    path: out/mirror-{run_id}.jsonl
    segments: [vip]
    fields: [email]
    mode: mirror
  plain:
    type: file
    path: out/plain-{run_id}.jsonl
    segments: [vip]
    fields: [email]
""")  # fmt: skip
    first = publish(store, hub)
    assert [r.sent for r in first] == [2, 2]  # m_3 is in no listed segment

    leave(store, "vip", "m_2")
    mirror, plain = publish(store, hub)

    assert mirror.actions == {"delete": 1} and plain.actions == {"left": 1}
    out = {prefix: latest(tmp_path, prefix) for prefix in ("mirror", "plain")}
    assert out["mirror"] == [{"master_id": "m_2", "email": "bob@example.com", "_deleted": True}]
    assert out["plain"] == [{"master_id": "m_2", "email": "bob@example.com", "segments": [],
                             "segments_exited": ["vip"]}]  # fmt: skip


def test_update_only_never_creates(store: Store, store_url: str, tmp_path: Path) -> None:
    put(store, "m_1", email="ann@example.com")
    hub = hub_config(tmp_path, store_url, """  drop:
    type: file
    path: out/{run_id}.jsonl
    fields: [email]
    mode: update-only
""")  # fmt: skip
    [result] = publish(store, hub)
    assert (result.considered, result.sent) == (1, 0)


def test_dry_run_shows_the_records_and_writes_nothing(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann")
    hub = hub_config(tmp_path, store_url, FILE_DEST)

    [dry] = publish(store, hub, dry_run=True)
    [real] = publish(store, hub)

    assert dry.status == "dry_run" and dry.records[0]["email"] == "ann@example.com"
    assert real.sent == 1  # the dry run changed no state


def test_csv_and_parquet_drops(store: Store, store_url: str, tmp_path: Path) -> None:
    put(store, "m_1", email="ann@example.com", first_name="Ann")
    join(store, "vip", "m_1")
    hub = hub_config(tmp_path, store_url, """  csv:
    type: file
    path: out/people.csv
    fields: [email, first_name, segments]
  parquet:
    type: file
    path: out/people.parquet
    fields: [email, first_name, segments]
""")  # fmt: skip
    publish(store, hub)

    lines = (tmp_path / "out/people.csv").read_text().splitlines()
    assert lines == ["master_id,email,first_name,segments,segments_exited",
                     'm_1,ann@example.com,Ann,"[""vip""]",[]']  # fmt: skip
    table = pq.read_table(tmp_path / "out/people.parquet").to_pylist()
    assert table[0]["email"] == "ann@example.com" and table[0]["segments"] == ["vip"]


def test_sql_table_upserts_by_master_id_and_deletes_the_merged_away(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    hub = hub_config(tmp_path, store_url, f"""  warehouse:
    type: sql
    url: {other}
    table: customers
    fields: [email, first_name, total_spend, orders_count]
    mapping: {{first_name: given_name}}
""")  # fmt: skip
    put(store, "m_1", email="ann@example.com", first_name="Ann", total_spend="10.25",
        orders_count=3)  # fmt: skip
    put(store, "m_2", email="bob@example.com", first_name="Bob")
    publish(store, hub)
    put(store, "m_1", email="ann@example.com", first_name="Annie", total_spend="11.00",
        orders_count=4)  # fmt: skip
    merge(store, "m_1", "m_2")

    [result] = publish(store, hub)

    engine = create_engine(other)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT master_id, email, given_name, total_spend, "
                                 "orders_count FROM customers")).all()  # fmt: skip
    engine.dispose()
    assert result.status == "succeeded"
    assert [tuple(r) for r in rows] == [("m_1", "ann@example.com", "Annie", 11, 4)]


def test_a_large_push_leaves_publish_state_analysed_on_postgresql(
    pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next diff's lookups are planned with real statistics (see stage.ANALYZE_AFTER)."""
    store = open_store(pg_url(pg_schema))
    put(store, "m_1", email="ann@example.com", first_name="Ann")
    put(store, "m_2", email="bob@example.com", first_name="Bob")
    monkeypatch.setattr(stage, "ANALYZE_AFTER", 2)
    hub = hub_config(tmp_path, pg_url(pg_schema), FILE_DEST)

    [result] = publish(store, hub)

    assert result.confirmed == 2
    with store.read() as conn:
        tuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'publish_state'::regclass")
        ).scalar_one()
    store.dispose()
    assert tuples == 2  # -1 until the table is first analysed
