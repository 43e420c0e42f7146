"""Sync state (cursor, bookmark) per (source, stream)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from crm_hub.store.schema import sync_state
from crm_hub.store.upsert import upsert

__all__ = ["clear_state", "load_state", "save_state"]


def load_state(conn: Connection, source: str) -> dict[str, Any]:
    """Every stream's saved state of ``source``, keyed by stream."""
    rows = conn.execute(
        select(sync_state.c.stream, sync_state.c.state).where(sync_state.c.source == source)
    )
    return {stream: state for stream, state in rows}


def save_state(
    conn: Connection, source: str, states: dict[str, Any], *, run_id: str, now: datetime
) -> None:
    """Save states in the caller's transaction, i.e. together with the records before them."""
    rows = [
        {"source": source, "stream": stream, "state": state, "updated_at": now, "run_id": run_id}
        for stream, state in states.items()
    ]
    upsert(
        conn, sync_state, rows, keys=["source", "stream"], update=["state", "updated_at", "run_id"]
    )


def clear_state(conn: Connection, source: str) -> int:
    """Forget the source's state, so the next sync reads everything again."""
    return conn.execute(delete(sync_state).where(sync_state.c.source == source)).rowcount
