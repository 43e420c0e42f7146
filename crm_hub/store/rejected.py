"""The rejected-record ledger: what a stage could not use, why, and where it came from.

A record rejected again updates its row (last seen) instead of adding one; a record that later
lands fine marks its rejection resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from crm_hub.store.schema import rejected_records
from crm_hub.store.upsert import upsert

__all__ = ["Rejection", "count_open", "list_rejected", "resolve_rejections", "save_rejections"]


@dataclass(slots=True, frozen=True)
class Rejection:
    """One rejected record, before it is stored."""

    stream: str
    reject_key: str
    reason_code: str
    message: str
    location: str | None = None
    payload: str | None = None
    record_key: str | None = None


def save_rejections(
    conn: Connection,
    stage: str,
    source: str,
    rejections: list[Rejection],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Upsert rejections (in the caller's transaction)."""
    rows = [
        {
            "stage": stage,
            "source": source,
            "stream": r.stream,
            "reject_key": r.reject_key,
            "record_key": r.record_key,
            "reason_code": r.reason_code,
            "message": r.message,
            "location": r.location,
            "payload": r.payload,
            "first_seen_at": now,
            "last_seen_at": now,
            "resolved_at": None,
            "run_id": run_id,
        }
        for r in {(r.stream, r.reject_key): r for r in rejections}.values()
    ]
    upsert(
        conn,
        rejected_records,
        rows,
        keys=["stage", "source", "stream", "reject_key"],
        update=[
            "record_key",
            "reason_code",
            "message",
            "location",
            "payload",
            "last_seen_at",
            "resolved_at",
            "run_id",
        ],
    )


def resolve_rejections(
    conn: Connection, stage: str, source: str, stream: str, keys: list[str], now: datetime
) -> int:
    """Mark open rejections of these record keys resolved (the record has now landed)."""
    if not keys:
        return 0
    t = rejected_records
    result = conn.execute(
        update(t)
        .where(
            and_(
                t.c.stage == stage,
                t.c.source == source,
                t.c.stream == stream,
                t.c.resolved_at.is_(None),
                t.c.record_key.in_(keys),
            )
        )
        .values(resolved_at=now)
    )
    return result.rowcount


def count_open(conn: Connection, stage: str) -> dict[str, int]:
    """Open (unresolved) rejections per source."""
    t = rejected_records
    rows = conn.execute(
        select(t.c.source, func.count())
        .where(and_(t.c.stage == stage, t.c.resolved_at.is_(None)))
        .group_by(t.c.source)
    )
    return {source: int(n) for source, n in rows}


def list_rejected(
    conn: Connection,
    *,
    stage: str | None = None,
    source: str | None = None,
    reason: str | None = None,
    include_resolved: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Rejections, newest first."""
    t = rejected_records
    query = select(t).order_by(t.c.last_seen_at.desc(), t.c.id.desc()).limit(limit)
    if stage:
        query = query.where(t.c.stage == stage)
    if source:
        query = query.where(t.c.source == source)
    if reason:
        query = query.where(t.c.reason_code == reason)
    if not include_resolved:
        query = query.where(t.c.resolved_at.is_(None))
    return [dict(row) for row in conn.execute(query).mappings()]
