"""`crm-hub erase` on the example project (SQLite and PostgreSQL): every trace of the person is
gone, re-syncing the same files does not bring them back, and the next publish tells the
destination that had them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

import crm_hub
from crm_hub.config import HubConfig, load_config
from crm_hub.erase import erase_person
from crm_hub.errors import ConfigError
from crm_hub.mapping import map_source
from crm_hub.publish import erasure_hash, publish
from crm_hub.publish.inflight import save_batch
from crm_hub.publish.payload import Outgoing
from crm_hub.store import Store
from crm_hub.store.erasures import value_hash
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import (
    erasures,
    master_events,
    master_links,
    masters,
    metadata,
    profiles,
    publish_echoes,
    publish_inflight,
    publish_state,
    raw_records,
    rejected_records,
    segment_memberships,
    source_customers,
    traits,
)
from crm_hub.sync import sync_source

TEMPLATE = Path(crm_hub.__file__).parent / "templates" / "project"
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
YES = {"email": {"granted": True, "at": "2026-01-01T00:00:00+00:00", "source": "t"}}
DESTINATIONS = """destinations:
  drop:
    type: file
    path: out/{destination}-{run_id}.jsonl
    fields: [email, first_name, last_name]
    channel: email
    source: newsletter               # read back (echo suppression): the ledger forgets Bob too
"""
# Bob's traces: his e-mail (any case), his first name, his record key and his phone as typed.
# (Anna shares his landline: its E.164 form rightly stays, in her rows.)
TRACES = ("bob.fischer", "robert", "c-1001", "+44 20 7946 0101", "o-5001")
SOURCES = ("pos_export", "pos_orders", "newsletter")


def cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args, "--config", str(cwd / "hub.yaml")],
        cwd=cwd, capture_output=True, text=True, timeout=120, input=stdin,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> HubConfig:
    """The example project, on this test's store, with a file destination."""
    shutil.copytree(TEMPLATE, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "hub.yaml"
    text = path.read_text().replace("store: sqlite:///crm-hub.db", f"store: {store_url}")
    path.write_text(text.replace("destinations: {}\n", DESTINATIONS))
    return load_config(path)


def sync_and_map(store: Store, hub: HubConfig) -> None:
    for name in SOURCES:
        sync_source(store, hub, name)
        map_source(store, hub, name, workers=1)


def link(store: Store) -> None:
    """What resolve and profile would write for Bob (two sources) and Anna: masters, links,
    golden profile, traits, a segment membership."""
    with store.read() as conn:
        keys = conn.execute(
            select(
                source_customers.c.source, source_customers.c.source_id, source_customers.c.email
            )
        ).all()
    bob = [(s, i) for s, i, e in keys if e and e.lower() == "bob.fischer@example.org"]
    assert {s for s, _ in bob} == {"pos_export", "newsletter"}
    with store.begin() as conn:
        seq = next_change_seq(conn)
        for master_id, records in (("m_bob", bob), ("m_anna", [("pos_export", "c-1002")])):
            conn.execute(masters.insert().values(
                master_id=master_id, status="active", member_count=len(records), created_at=NOW,
                updated_at=NOW, change_seq=seq))  # fmt: skip
            for source, source_id in records:
                conn.execute(master_links.insert().values(
                    source=source, source_id=source_id, master_id=master_id, reason="single",
                    evidence={"record": f"{source}:{source_id}"}, linked_at=NOW,
                    change_seq=seq))  # fmt: skip
        for master_id, first, email in (("m_bob", "Robert", "bob.fischer@example.org"),
                                        ("m_anna", "Anna", "anna.f@example.org")):  # fmt: skip
            conn.execute(profiles.insert().values(
                master_id=master_id, first_name=first, last_name="Fischer", email=email,
                emails=[email], phone="+442079460101", consents=YES,
                provenance={"email": {"source": "pos_export", "source_id": "x"}},
                updated_at=NOW, change_seq=seq))  # fmt: skip
            conn.execute(traits.insert().values(
                master_id=master_id, orders_count=1, visits_count=1, favourite_dish="Flat white",
                computed_at=NOW, change_seq=seq))  # fmt: skip
            conn.execute(
                segment_memberships.insert().values(
                    segment="regulars", master_id=master_id, entered_at=NOW, change_seq=seq
                )
            )
        conn.execute(rejected_records.insert().values(
            stage="map", source="newsletter", stream="members", reject_key="bad-line-7",
            record_key=None, reason_code="bad_date", message="birthday 13/45",
            payload='{"email": "BOB.FISCHER@example.org", "birthday": "13/45"}',
            first_seen_at=NOW, last_seen_at=NOW))  # fmt: skip


def dump_hits(store: Store) -> list[tuple[str, str]]:
    """(table, trace) for every trace of Bob anywhere in the store."""
    hits = []
    with store.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                text = repr(tuple(row.values())).lower()
                hits.extend((table.name, t) for t in TRACES if t.lower() in text)
    return hits


def drops(tmp_path: Path) -> list[list[dict[str, Any]]]:
    files = sorted((tmp_path / "out").glob("*.jsonl"), key=lambda p: p.name)
    return [[orjson.loads(x) for x in f.read_text().splitlines()] for f in files]


def echo_rows(store: Store) -> list[str]:
    """Masters the echo ledger remembers writing for."""
    with store.read() as conn:
        return sorted(conn.execute(select(publish_echoes.c.master_id)).scalars())


def test_erase_removes_every_trace_blocks_resync_and_tells_the_destination(
    store: Store, hub: HubConfig, tmp_path: Path
) -> None:
    sync_and_map(store, hub)
    link(store)
    [first] = publish(store, hub)
    assert first.sent == 2 and dump_hits(store)  # Bob is everywhere, drop has him
    assert echo_rows(store) == ["m_anna", "m_bob"]

    done = cli("erase", "bob.fischer@example.org", "--yes", "--reason", "ticket 42", "--json",
               cwd=tmp_path)  # fmt: skip

    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["master_id"], report["records"], report["pending"]) == ("m_bob", 2, ["drop"])
    # Until the destination is told, it alone keeps the address it knows him by.
    assert {table for table, _ in dump_hits(store)} == {"publish_state"}
    with store.read() as conn:
        assert conn.execute(select(masters.c.status).where(masters.c.master_id == "m_bob")
                            ).scalar_one() == "erased"  # fmt: skip
        [event] = conn.execute(select(master_events.c.kind, master_events.c.master_id)).all()
        assert tuple(event) == ("erased", "m_bob")
        kinds = {k for (k,) in conn.execute(select(erasures.c.kind))}
        assert kinds == {"email", "phone", "source_record", "raw_record"}
        stored = set(conn.execute(select(erasures.c.value_hash)).scalars())
        assert erasure_hash("Bob.Fischer@Example.org") in stored  # what publish checks
        assert conn.execute(select(profiles.c.master_id)).scalars().all() == ["m_anna"]
    assert echo_rows(store) == ["m_anna"]

    # The same files again, plus a new till record with his address: nothing of him lands.
    csv = tmp_path / "data" / "customers.csv"
    csv.write_text(
        csv.read_text().replace("2026-10-01T09:12:00Z", "2026-11-01T09:12:00Z")
        + "c-2001,Rob,Fischer,BOB.FISCHER@example.org,,,,,,north,2026-11-03T08:00:00Z\n"
    )
    (tmp_path / "data" / "newsletter-2026-10.csv").touch()
    sync_and_map(store, hub)
    assert dump_hits(store) and {t for t, _ in dump_hits(store)} == {"publish_state"}
    with store.read() as conn:
        ids = set(conn.execute(select(source_customers.c.source_id)).scalars())
        assert "c-1002" in ids and "c-1001" not in ids and "c-2001" not in ids
        assert not conn.execute(
            select(raw_records.c.id).where(raw_records.c.record_key == "c-2001")
        ).first()

    [second] = publish(store, hub)

    assert second.status == "succeeded"
    erase_record = drops(tmp_path)[-1]
    assert erase_record == [{"master_id": "m_bob", "email": "bob.fischer@example.org",
                             "_erase": True, "_deleted": True}]  # fmt: skip
    assert dump_hits(store) == []
    with store.read() as conn:
        state = conn.execute(select(publish_state.c.payload).where(
            publish_state.c.master_id == "m_bob")).scalar_one()  # fmt: skip
    assert state == {"status": "erased"}
    assert [r.sent for r in publish(store, hub)] == [0]  # told once


def test_erasing_twice_is_harmless_and_an_unknown_person_is_a_clear_error(
    store: Store, hub: HubConfig
) -> None:
    sync_and_map(store, hub)
    link(store)
    first = erase_person(store, "pos_export:c-1001")
    again = erase_person(store, "m_bob")

    assert first.records == 2 and not first.already_erased
    assert again.already_erased and again.records == 0
    with pytest.raises(ConfigError, match="names nobody"):
        erase_person(store, "nobody@example.org")


def test_a_shared_phone_does_not_block_the_other_person(store: Store, hub: HubConfig) -> None:
    sync_and_map(store, hub)
    link(store)
    erase_person(store, "m_bob")
    with store.read() as conn:
        stored = set(conn.execute(select(erasures.c.value_hash)).scalars())
    assert value_hash("+442079460101") in stored

    sync_and_map(store, hub)  # Anna (same landline, her own e-mail) still maps

    with store.read() as conn:
        anna = conn.execute(select(source_customers.c.email).where(
            source_customers.c.source_id == "c-1002")).scalar_one()  # fmt: skip
    assert anna == "anna.f@example.org"


def test_the_prompt_refuses_without_yes(store: Store, hub: HubConfig, tmp_path: Path) -> None:
    sync_and_map(store, hub)
    link(store)

    refused = cli("erase", "m_bob", cwd=tmp_path, stdin="n\n")

    assert refused.returncode == 1
    assert "pos_export:c-1001" in refused.stdout
    with store.read() as conn:
        assert conn.execute(select(masters.c.status).where(masters.c.master_id == "m_bob")
                            ).scalar_one() == "active"  # fmt: skip


def test_a_killed_push_keeps_only_the_address_the_destination_knows(
    store: Store, hub: HubConfig
) -> None:
    sync_and_map(store, hub)
    link(store)
    fields = {"email": "bob.fischer@example.org", "first_name": "Robert", "last_name": "Fischer"}
    sent = Outgoing("m_bob", "upsert", {"master_id": "m_bob", **fields}, "0" * 32,
                    {"status": "active", "fields": fields})  # fmt: skip
    save_batch(store, "drop", "01KILLEDPUSH0000000000000A", 1, [sent])

    result = erase_person(store, "m_bob")

    assert result.pending == ["drop"]  # the killed push may have reached it
    with store.read() as conn:
        [row] = conn.execute(select(publish_inflight.c.record, publish_inflight.c.payload)).all()
    kept = {"master_id": "m_bob", "email": "bob.fischer@example.org"}
    assert tuple(row) == (kept, {"status": "active", "fields": kept})
    assert {t for t, trace in dump_hits(store) if trace == "robert"} == set()
