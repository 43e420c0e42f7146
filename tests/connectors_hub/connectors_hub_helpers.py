"""Small helpers of the connector-hub tests: sync a source of a hub.yaml, read the store back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from crm_hub.config import load_config
from crm_hub.store import Store
from crm_hub.store.schema import raw_records, runs, sync_state
from crm_hub.sync import SyncResult, sync_source


def sync(store: Store, hub: Path, name: str) -> SyncResult:
    """Sync source ``name`` of ``hub`` into ``store``."""
    return sync_source(store, load_config(hub), name)


def raw_keys(store: Store, source: str) -> dict[str, set[str]]:
    """Record keys landed per stream; asserts no key landed twice."""
    with store.read() as conn:
        rows = conn.execute(
            select(raw_records.c.stream, raw_records.c.record_key).where(
                raw_records.c.source == source
            )
        ).all()
        total = conn.execute(
            select(func.count()).select_from(raw_records).where(raw_records.c.source == source)
        ).scalar_one()
    keys: dict[str, set[str]] = {}
    for stream, key in rows:
        keys.setdefault(stream, set()).add(key)
    assert total == sum(map(len, keys.values())), "a record key landed twice"
    return keys


def raw_payloads(store: Store, source: str, stream: str) -> dict[str, dict[str, Any]]:
    """Landed payloads of one stream, by record key."""
    with store.read() as conn:
        rows = conn.execute(
            select(raw_records.c.record_key, raw_records.c.payload).where(
                raw_records.c.source == source, raw_records.c.stream == stream
            )
        ).all()
    return {key: orjson.loads(p) if isinstance(p, (str, bytes)) else p for key, p in rows}


def saved_states(store: Store, source: str) -> dict[str, Any]:
    """The saved sync state of ``source``, by stream."""
    with store.read() as conn:
        rows = conn.execute(
            select(sync_state.c.stream, sync_state.c.state).where(sync_state.c.source == source)
        )
        return {stream: state for stream, state in rows}


def last_run(store: Store, source: str) -> tuple[str, str | None]:
    """(status, error) of the latest sync run of ``source``."""
    with store.read() as conn:
        row = conn.execute(
            select(runs.c.status, runs.c.error)
            .where(runs.c.source == source)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).one()
    return row[0], row[1]
