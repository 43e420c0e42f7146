"""Keep erased people out of a mapped batch (``crm-hub erase``): the map stage's check.

A customer row whose e-mail or ``SOURCE:SOURCE_ID`` is tombstoned (its phone only when it has
no e-mail: a household shares a landline), and an order,
invoice, payment or event that points at such a customer (or, for an event, names such an
e-mail), is dropped before it is written. Its raw record is deleted and its key tombstoned, so
the next sync does not land it again. One query per batch; none while nobody was ever erased.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, select

from crm_hub.mapping.batches import Batch
from crm_hub.store.erasures import (
    any_tombstones,
    record_hash,
    save_tombstones,
    source_record_hash,
    tombstoned,
    value_hash,
)
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import CANONICAL_TABLES, raw_records

__all__ = ["drop_erased", "person_hashes"]


def person_hashes(source: str, row: dict[str, Any]) -> list[str]:
    """Tombstone hashes a canonical row would match: its e-mails (its phones when it has none)
    and the customer it points at."""
    found: list[str] = []
    for address in [row.get("email"), *(e.get("email") for e in row.get("emails") or [])]:
        if address:
            found.append(value_hash(str(address)))
    if not found:  # a phone alone: households share landlines, an e-mail is one person's
        for phone in [row.get("phone"), *(p.get("e164") for p in row.get("phones") or [])]:
            if phone:
                found.append(value_hash(str(phone)))
    customer = row.get("customer_source_id")
    if customer:
        found.append(source_record_hash(source, str(customer)))
    return found


@lru_cache(maxsize=8)
def _names(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in CANONICAL_TABLES[table].columns if c.name != "id")


def _rows(batch: Batch) -> list[tuple[str, dict[str, Any]]]:
    rows = [(t, row) for t, by_id in batch.rows.items() for row in by_id.values()]
    for table, values in batch.values.items():
        names = _names(table)
        rows.extend((table, dict(zip(names, v, strict=True))) for v in values)
    return rows


def drop_erased(conn: Connection, source: str, batch: Batch) -> int:
    """Remove rows of erased people from ``batch`` (in the batch's write transaction).

    Returns how many rows were dropped.
    """
    if not any_tombstones(conn):
        return 0
    batch.decode(conn.dialect)  # worker-made rows, bound for the store: read them
    rows = _rows(batch)
    keys: dict[tuple[str, str], list[str]] = {}
    for table, row in rows:
        own = [source_record_hash(source, row["source_id"])] if table == "source_customers" else []
        keys[(table, row["source_id"])] = own + person_hashes(source, row)
    hit = tombstoned(
        conn, ["email", "phone", "source_record"], [h for v in keys.values() for h in v]
    )
    gone = {key for key, hashes in keys.items() if hit.intersection(hashes)}
    if not gone:
        return 0
    raw_ids = [row["raw_id"] for table, row in rows if (table, row["source_id"]) in gone]
    for table in list(batch.rows):
        by_id = batch.rows[table]
        batch.rows[table] = {k: r for k, r in by_id.items() if (table, k) not in gone}
    for table in list(batch.values):
        batch.values[table] = [v for v in batch.values[table] if (table, v[1]) not in gone]
    for key in [k for k in batch.lines if ("orders", k) in gone]:
        del batch.lines[key]
    _forget_raw(conn, source, raw_ids)
    return len(gone)


def _forget_raw(conn: Connection, source: str, raw_ids: list[int]) -> None:
    """Delete the raw records behind dropped rows and tombstone their keys."""
    t = raw_records
    found = conn.execute(
        select(t.c.stream, t.c.record_key).where(t.c.source == source, t.c.id.in_(raw_ids))
    ).all()
    pairs = [("raw_record", record_hash(source, stream, key)) for stream, key in found]
    save_tombstones(conn, pairs, now=utcnow(), reason="erased person seen again")
    conn.execute(delete(t).where(t.c.source == source, t.c.id.in_(raw_ids)))
