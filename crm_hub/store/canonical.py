"""Canonical rows and the map stage's watermark: written in the map stage's transaction.

Rows are upserted by ``(source, source_id)``; an order's lines are replaced as a whole. A raw
record that was deleted marks the canonical rows it produced ``deleted`` (found by ``raw_id``).
The watermark is ``(change_seq, raw id)`` of the last raw record mapped, plus the hash of the
mapping file that mapped it: a different mapping starts the source again from the beginning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, literal, select, tuple_, update

from crm_hub.store.schema import CANONICAL_TABLES, map_watermarks, order_lines, raw_records
from crm_hub.store.upsert import upsert

__all__ = [
    "RawItem",
    "Watermark",
    "load_watermark",
    "mark_deleted",
    "read_raw_batch",
    "replace_order_lines",
    "save_watermark",
    "upsert_canonical",
]


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the map stage of a source stands."""

    change_seq: int = 0
    raw_id: int = 0
    mapping_hash: str = ""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One raw record as the map stage reads it."""

    id: int
    stream: str
    record_key: str
    payload: Any
    deleted: bool
    change_seq: int


def load_watermark(conn: Connection, source: str) -> Watermark:
    """The saved watermark of ``source`` (zero when never mapped)."""
    t = map_watermarks
    row = conn.execute(
        select(t.c.change_seq, t.c.raw_id, t.c.mapping_hash).where(t.c.source == source)
    ).first()
    return Watermark() if row is None else Watermark(int(row[0]), int(row[1]), str(row[2]))


def save_watermark(
    conn: Connection, source: str, mark: Watermark, *, run_id: str, now: datetime
) -> None:
    """Save the watermark (in the caller's transaction, with the rows before it)."""
    upsert(
        conn,
        map_watermarks,
        [
            {
                "source": source,
                "change_seq": mark.change_seq,
                "raw_id": mark.raw_id,
                "mapping_hash": mark.mapping_hash,
                "updated_at": now,
                "run_id": run_id,
            }
        ],
        keys=["source"],
        update=["change_seq", "raw_id", "mapping_hash", "updated_at", "run_id"],
    )


def read_raw_batch(
    conn: Connection,
    source: str,
    after: Watermark,
    limit: int,
    streams: Sequence[str] | None = None,
) -> list[RawItem]:
    """Raw records of ``source`` changed after the watermark, in commit order."""
    t = raw_records
    query = (
        select(t.c.id, t.c.stream, t.c.record_key, t.c.payload, t.c.deleted, t.c.change_seq)
        .where(
            t.c.source == source,
            tuple_(t.c.change_seq, t.c.id)
            > tuple_(literal(after.change_seq), literal(after.raw_id)),
        )
        .order_by(t.c.change_seq, t.c.id)
        .limit(limit)
    )
    if streams is not None:
        query = query.where(t.c.stream.in_(list(streams)))
    return [RawItem(*row) for row in conn.execute(query)]


def read_raw_keys(conn: Connection, source: str, keys: Iterable[tuple[str, str]]) -> list[RawItem]:
    """Raw records of ``source`` by ``(stream, record_key)`` (for replaying rejections)."""
    wanted = list(keys)
    if not wanted:
        return []
    t = raw_records
    query = (
        select(t.c.id, t.c.stream, t.c.record_key, t.c.payload, t.c.deleted, t.c.change_seq)
        .where(t.c.source == source, tuple_(t.c.stream, t.c.record_key).in_(wanted))
        .order_by(t.c.change_seq, t.c.id)
    )
    return [RawItem(*row) for row in conn.execute(query)]


def upsert_canonical(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert or overwrite rows of a canonical table by ``(source, source_id)``.

    Rows may name only some columns: the rest are written as null, so a field removed from a
    mapping does not leave a stale value behind.
    """
    if not rows:
        return
    target = CANONICAL_TABLES[table]
    columns = [c.name for c in target.columns if c.name != "id"]
    full = [{name: row.get(name) for name in columns} for row in rows]
    keys = ["source", "source_id"]
    upsert(conn, target, full, keys=keys, update=[c for c in columns if c not in keys])


def replace_order_lines(
    conn: Connection, source: str, order_ids: list[str], lines: list[dict[str, Any]]
) -> None:
    """Replace every line of these orders by ``lines``."""
    if order_ids:
        for start in range(0, len(order_ids), 500):
            chunk = order_ids[start : start + 500]
            conn.execute(
                delete(order_lines).where(
                    order_lines.c.source == source, order_lines.c.order_source_id.in_(chunk)
                )
            )
    if lines:
        columns = [c.name for c in order_lines.columns if c.name != "id"]
        rows = [{name: line.get(name) for name in columns} | {"source": source} for line in lines]
        conn.execute(order_lines.insert(), rows)


def mark_deleted(
    conn: Connection, source: str, raw_ids: list[int], *, run_id: str, now: datetime
) -> int:
    """Mark the canonical rows made from these raw records deleted; returns rows marked."""
    if not raw_ids:
        return 0
    marked = 0
    for table in CANONICAL_TABLES.values():
        result = conn.execute(
            update(table)
            .where(table.c.source == source, table.c.raw_id.in_(raw_ids))
            .values(deleted=True, mapped_at=now, run_id=run_id)
        )
        marked += result.rowcount
    return marked
