"""A backlog mapped on worker processes writes exactly what mapping in one process writes."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Text, cast, select

from crm_hub.config import HubConfig, load_config
from crm_hub.mapping import batches, map_source, stage
from crm_hub.store import Store
from crm_hub.store.raw import land_batch
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import CANONICAL_TABLES, map_watermarks, raw_records, rejected_records

MAPPING = """\
version: 1
phone_region: GB
timezone: Europe/London
streams:
  members:
    target: customer
    id: id
    fields:
      first_name: first
      email: email
      phone: phone
      birth_date: born
      postcode: zip
      updated_at: at
      consent.email: optin
      attributes.tier: tier
"""
# differ between the two sources by construction (each has its own raw records)
VOLATILE = {"id", "mapped_at", "run_id", "first_seen_at", "last_seen_at", "resolved_at", "raw_id",
            "raw_change_seq"}  # fmt: skip


def member(n: int) -> dict[str, Any]:
    return {
        "id": f"m{n % 1_900}",  # ids repeat across batches: the last version wins
        "first": ["Ann", "Bob", " Zoë "][n % 3],
        "email": f"Person.{n % 500}@GoogleMail.com" if n % 7 else "test@example.com",
        "phone": ["07911 123456", "+44 20 7946 0958", "0000 000000", "n/a"][n % 4],
        "born": ["1984-07-02", "--02-29", "1985-02-30"][n % 3],
        "zip": "sw1a1aa",
        "at": "2026-03-29T01:30:00" if n % 2 else "2026-10-01T12:00:00+02:00",
        "optin": ["yes", "no", "maybe"][n % 3] if n % 11 else "maybe",  # "maybe": rejected
        "tier": {"level": n % 4},
    }


def land(store: Store, source: str, start: int, count: int) -> None:
    rows = {}
    for n in range(start, start + count):
        text = json.dumps(member(n))
        rows[f"k{n}"] = (hashlib.blake2b(text.encode(), digest_size=16).hexdigest(), text, False)
    with store.begin() as conn:
        land_batch(conn, source, "members", rows, run_id="test", now=utcnow())


def dump(store: Store, source: str) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    tables = {**CANONICAL_TABLES, "rejected": rejected_records}
    with store.read() as conn:
        for name, table in tables.items():
            columns = [cast(c, Text) for c in table.c if c.name not in VOLATILE | {"source"}]
            query = select(*columns).where(table.c.source == source)
            found[name] = sorted(
                tuple(None if v is None else v.replace(f'"{source}"', '"?"') for v in row)
                for row in conn.execute(query)
            )  # consents name their source
        mark = conn.execute(
            select(map_watermarks.c.change_seq, map_watermarks.c.raw_id).where(
                map_watermarks.c.source == source
            )
        ).one()
        last = conn.execute(
            select(raw_records.c.change_seq, raw_records.c.id)
            .where(raw_records.c.source == source)
            .order_by(raw_records.c.change_seq.desc(), raw_records.c.id.desc())
            .limit(1)
        ).one()
    assert tuple(mark) == tuple(last)  # the watermark is the last raw record mapped
    return found


def test_workers_write_what_one_process_writes_batch_by_batch(
    store: Store, write_project: Callable[..., Path]
) -> None:
    sources = "".join(
        f"  {name}:\n    type: file\n    path: none.jsonl\n    stream: members\n"
        f"    primary_key: [id]\n    mapping: mappings/members.yaml\n"
        for name in ("one", "many")
    )
    hub: HubConfig = load_config(write_project(sources, {"mappings/members.yaml": MAPPING}))
    for source in ("one", "many"):
        land(store, source, 0, 4_500)
    progress: list[int] = []
    one = map_source(store, hub, "one", batch_size=1_000, workers=1)
    many = map_source(
        store,
        hub,
        "many",
        batch_size=1_000,
        workers=2,
        on_progress=lambda r: progress.append(r.read),
    )
    assert progress == [1_000, 2_000, 3_000, 4_000, 4_500]  # in order, one write per batch
    assert (many.read, many.accepted, many.rejected) == (one.read, one.accepted, one.rejected)
    assert many.rejected > 0 and many.accepted + many.rejected == many.read == 4_500
    assert many.tables == one.tables
    assert dump(store, "many") == dump(store, "one")
    for source in ("one", "many"):  # more lands: only the new records are read
        land(store, source, 4_500, 2_100)
    again = [
        map_source(store, hub, s, batch_size=1_000, workers=w) for s, w in (("one", 1), ("many", 2))
    ]
    assert [r.read for r in again] == [2_100, 2_100]
    assert dump(store, "many") == dump(store, "one")
    assert map_source(store, hub, "many", batch_size=1_000, workers=2).read == 0


def _hub(write_project: Callable[..., Path]) -> HubConfig:
    return load_config(_hub_file(write_project))


def _hub_file(write_project: Callable[..., Path]) -> Path:
    sources = "".join(
        f"  {name}:\n    type: file\n    path: none.jsonl\n    stream: members\n"
        f"    primary_key: [id]\n    mapping: mappings/members.yaml\n"
        for name in ("one", "many")
    )
    return write_project(sources, {"mappings/members.yaml": MAPPING})


def test_a_failed_write_mid_backlog_loses_and_duplicates_nothing(
    store: Store, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _hub(write_project)
    for source in ("one", "many"):
        land(store, source, 0, 4_500)
    map_source(store, hub, "one", batch_size=1_000, workers=1)
    real_write, writes = stage._write, []

    def failing_write(*args: Any, **kwargs: Any) -> None:
        writes.append(1)
        if len(writes) == 3:  # two batches committed, the third fails
            raise OSError("disk full")
        real_write(*args, **kwargs)

    monkeypatch.setattr(stage, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        map_source(store, hub, "many", batch_size=1_000, workers=2)
    monkeypatch.setattr(stage, "_write", real_write)
    assert gc.isenabled()
    rest = map_source(store, hub, "many", batch_size=1_000, workers=2)
    assert rest.read == 2_500  # from the last committed batch on
    assert rest.accepted + rest.rejected == rest.read
    assert dump(store, "many") == dump(store, "one")


def test_a_worker_dying_mid_backlog_loses_and_duplicates_nothing(
    store: Store, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _hub(write_project)
    for source in ("one", "many"):
        land(store, source, 0, 4_500)
    map_source(store, hub, "one", batch_size=1_000, workers=1)
    real_values = batches.row_values

    def dying_values(table: str, row: dict[str, Any]) -> list[Any]:
        if row["source_id"] == "m1002":  # accepted, in batch 2: mapped on a worker
            os._exit(3)
        return real_values(table, row)

    monkeypatch.setattr(batches, "row_values", dying_values)  # workers fork with it
    with pytest.raises(BrokenProcessPool):
        map_source(store, hub, "many", batch_size=1_000, workers=2)
    monkeypatch.setattr(batches, "row_values", real_values)
    rest = map_source(store, hub, "many", batch_size=1_000, workers=2)
    assert rest.read == 3_500  # the first batch (mapped in this process) was committed
    assert rest.accepted + rest.rejected == rest.read
    assert dump(store, "many") == dump(store, "one")


# Maps "many" on two workers, printing each committed batch's count; the test kills it.
KILLED_MAP = """
import sys
from crm_hub.config import load_config
from crm_hub.mapping import map_source
from crm_hub.store import open_store
config = load_config(sys.argv[1])
map_source(open_store(config.store), config, "many", batch_size=1_000, workers=2,
           on_progress=lambda r: print(r.read, flush=True))
"""


def landed_twice(store: Store, write_project: Callable[..., Path]) -> tuple[Path, HubConfig]:
    """hub.yaml's path and config, with the same 9,500 raw records landed as "one" and "many"."""
    hub_file = _hub_file(write_project)
    for source in ("one", "many"):
        land(store, source, 0, 9_500)
    return hub_file, load_config(hub_file)


def killed_after_two_batches(hub_file: Path, script: str) -> list[str]:
    """Run ``script`` (a map printing each committed batch's count), kill it with its workers
    once two batches are committed, mid-backlog; what it printed."""
    with subprocess.Popen(
        [sys.executable, "-c", script, str(hub_file)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    ) as child:  # fmt: skip
        assert child.stdout is not None
        committed = [child.stdout.readline(), child.stdout.readline()]
        os.killpg(child.pid, signal.SIGKILL)
    return committed


def test_a_killed_map_loses_and_duplicates_nothing(
    store: Store, write_project: Callable[..., Path]
) -> None:
    hub_file, hub = landed_twice(store, write_project)
    map_source(store, hub, "one", batch_size=1_000, workers=1)
    committed = killed_after_two_batches(hub_file, KILLED_MAP)

    rest = map_source(store, hub, "many", batch_size=1_000, workers=2)

    assert committed == ["1000\n", "2000\n"]
    assert 0 < rest.read <= 9_500 - 2_000  # from the last committed batch on
    assert rest.accepted + rest.rejected == rest.read
    assert dump(store, "many") == dump(store, "one")


def test_a_worker_frees_its_batch_before_the_collector_may_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alive when the collector is re-enabled, a batch would be walked by the collection that
    starts at once (4-6 us of a worker's ~48 us per record): it is freed before."""
    from sqlalchemy import URL

    from crm_hub.mapping.apply import compile_mapping
    from crm_hub.mapping.spec import load_mapping

    (tmp_path / "members.yaml").write_text(MAPPING)
    mapping = load_mapping(tmp_path / "members.yaml", "members.yaml")
    dialect = URL.create("sqlite").get_dialect()()
    worker = (compile_mapping(mapping), mapping, "crm", batches._decoder("sqlite"), dialect)
    monkeypatch.setattr(batches, "_worker", worker)
    rows = [(n, "members", str(n), json.dumps(member(n)), False, n) for n in range(1, 3_001)]
    batches_seen: list[int] = []  # per collection during the call: Batch objects alive

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            batches_seen.append(sum(type(o) is batches.Batch for o in gc.get_objects()))

    assert gc.isenabled()
    gc.collect()
    gc.callbacks.append(seen)
    try:
        data = batches._map_rows(rows)
    finally:
        gc.callbacks.remove(seen)
    assert not any(batches_seen)
    mapped = batches._unpack(data)
    accepted = mapped.accepted["members"]
    assert len(accepted) + len(mapped.rejections) == 3_000
    ids = {member(int(key))["id"] for key in accepted}  # ids repeat: the last one wins
    assert sorted(row[1] for row in mapped.encoded["source_customers"]) == sorted(ids)


@pytest.mark.parametrize("driver", ["sqlite", "postgresql+psycopg"])
def test_a_packed_batch_comes_back_as_the_worker_bound_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    """Rows bound for SQLite travel by marshal, PostgreSQL's (datetimes) by pickle: both come
    back with the same values and types, and the rest of the batch with them."""
    from sqlalchemy import URL

    from crm_hub.mapping.apply import compile_mapping
    from crm_hub.mapping.spec import load_mapping

    (tmp_path / "members.yaml").write_text(MAPPING)
    mapping = load_mapping(tmp_path / "members.yaml", "members.yaml")
    dialect = URL.create(driver).get_dialect()()
    decoder = batches._decoder(dialect.name)
    worker = (compile_mapping(mapping), mapping, "crm", decoder, dialect)
    monkeypatch.setattr(batches, "_worker", worker)
    rows = [(n, "members", str(n), json.dumps(member(n)), n == 7, n) for n in range(1, 301)]

    sent = batches._mapped(rows, *worker)
    got = batches._unpack(batches._map_rows(rows))

    def typed(values: list[list[Any]]) -> list[list[tuple[type, Any]]]:
        return [[(type(v), v) for v in row] for row in values]

    assert got.encoded.keys() == sent.encoded.keys() == {"source_customers"}
    assert typed(got.encoded["source_customers"]) == typed(sent.encoded["source_customers"])
    assert (got.accepted, got.deleted) == (sent.accepted, sent.deleted) and got.deleted == [7]
    assert [r.message for r in got.rejections] == [r.message for r in sent.rejections] != []
