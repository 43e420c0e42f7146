"""Landing raw records: the sync stage's hot path.

A batch is diffed against the store by content hash first, so an unchanged record costs one
index lookup and writes nothing. Changed and new records are written in one statement
(SQLite: executemany upsert; PostgreSQL: COPY into a temporary table, then one upsert). Every
written row gets the same ``change_seq``, taken from a store-wide counter inside the same
transaction, so downstream stages can read "what changed since N" in commit order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from crm_hub.store.erasures import any_tombstones, record_hash, tombstoned

__all__ = ["LandCounts", "RawRow", "has_rows", "land_batch", "next_change_seq"]


# One record ready to land, keyed by its record key: (content hash, payload JSON text, deleted).
# A plain tuple: a million of them are built per million records.
RawRow = tuple[str, str, bool]


@dataclass(slots=True)
class LandCounts:
    """What landing did: new rows, changed rows, and rows that were already there unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicted: bool = False  # an assume_new insert met an existing key
    erased: int = 0  # records of erased people, not landed (``crm-hub erase``)

    def add(self, other: LandCounts) -> None:
        """Accumulate another batch's counts."""
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.erased += other.erased


def next_change_seq(conn: Connection) -> int:
    """Take the next store-wide change number (its row lock orders concurrent commits)."""
    value = conn.execute(
        text(
            "INSERT INTO counters (name, value) VALUES ('change_seq', 1) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
        )
    ).scalar_one()
    return int(value)


def has_rows(conn: Connection, source: str, stream: str) -> bool:
    """Whether anything of this stream has ever landed."""
    found = conn.execute(
        text("SELECT 1 FROM raw_records WHERE source = :source AND stream = :stream LIMIT 1"),
        {"source": source, "stream": stream},
    ).first()
    return found is not None


def _keep_statistics_fresh(conn: Connection) -> None:
    """ANALYZE raw_records when it grew a lot since the planner last looked.

    Without statistics (a fresh or fast-growing table) PostgreSQL believes the table is tiny
    and compares every row with every key of the batch: quadratic. Autovacuum catches up too
    late during a first big load.
    """
    row = conn.exec_driver_sql(
        "SELECT c.reltuples, s.n_mod_since_analyze FROM pg_class c "
        "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'raw_records'::regclass"
    ).first()
    if row is not None and row[1] > max(row[0], 0) * 0.5 + 5_000:
        conn.exec_driver_sql("ANALYZE raw_records")


def _existing_hashes(conn: Connection, source: str, stream: str, keys: list[str]) -> dict[str, str]:
    if conn.dialect.name == "postgresql":
        _keep_statistics_fresh(conn)
        sql = (
            "SELECT record_key, content_hash FROM raw_records "
            "WHERE source = %s AND stream = %s AND record_key = ANY(%s)"
        )
        params: tuple[object, ...] = (source, stream, keys)
    else:
        sql = (
            "SELECT record_key, content_hash FROM raw_records WHERE source = ? AND stream = ? "
            "AND record_key IN (SELECT value FROM json_each(?))"
        )
        params = (source, stream, orjson.dumps(keys).decode())
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())
    finally:
        cursor.close()


def land_batch(
    conn: Connection,
    source: str,
    stream: str,
    rows: Mapping[str, RawRow],
    *,
    run_id: str,
    now: datetime,
    assume_new: bool = False,
) -> LandCounts:
    """Upsert ``rows`` (keyed by record key, already de-duplicated) of one stream.

    Must run inside the caller's transaction, together with the state it makes durable.

    Args:
        assume_new: the stream had no rows when this run (the only writer) started, so try
            a plain insert without diffing; if a key landed earlier in the same run, the
            insert is undone to a savepoint and the batch is diffed after all. Check
            ``LandCounts.conflicted`` to stop assuming.
    """
    blocked = _tombstoned_keys(conn, source, stream, rows)
    if blocked:
        rows = {key: row for key, row in rows.items() if key not in blocked}
        if not rows:
            return LandCounts(erased=len(blocked))
    if assume_new:
        inserted = _insert_all(conn, source, stream, rows, run_id, now)
        if inserted is not None:
            inserted.erased = len(blocked)
            return inserted
    existing = _existing_hashes(conn, source, stream, list(rows))
    changed = [(key, *row) for key, row in rows.items() if existing.get(key) != row[0]]
    counts = LandCounts(unchanged=len(rows) - len(changed), conflicted=assume_new)
    counts.erased = len(blocked)
    if not changed:
        return counts
    counts.updated = sum(1 for row in changed if row[0] in existing)
    counts.inserted = len(changed) - counts.updated
    seq = next_change_seq(conn)
    if conn.dialect.name == "postgresql":
        _write_postgresql(conn, source, stream, changed, existing, seq, run_id, now)
    else:
        _write_sqlite(conn, source, stream, changed, seq, run_id, now)
    return counts


def _tombstoned_keys(
    conn: Connection, source: str, stream: str, rows: Mapping[str, RawRow]
) -> set[str]:
    """Keys of ``rows`` erased by ``crm-hub erase`` (nothing hashed while no one was)."""
    if not rows or not any_tombstones(conn):
        return set()
    by_hash = {record_hash(source, stream, key): key for key in rows}
    return {by_hash[h] for h in tombstoned(conn, ["raw_record"], by_hash)}


def _insert_all(
    conn: Connection,
    source: str,
    stream: str,
    rows: Mapping[str, RawRow],
    run_id: str,
    now: datetime,
) -> LandCounts | None:
    """Insert every row without looking; None (and nothing written) if a key exists."""
    new = [(key, *row) for key, row in rows.items()]
    savepoint = conn.begin_nested()
    try:
        seq = next_change_seq(conn)
        if conn.dialect.name == "postgresql":
            _write_postgresql(conn, source, stream, new, {}, seq, run_id, now)
        else:
            _write_sqlite(conn, source, stream, new, seq, run_id, now, plain_insert=True)
    except (IntegrityError, psycopg.errors.UniqueViolation):
        savepoint.rollback()
        return None
    savepoint.commit()
    return LandCounts(inserted=len(new))


_SQLITE_UPSERT = (
    "INSERT INTO raw_records (source, stream, record_key, content_hash, payload, deleted, "
    "first_seen_at, last_changed_at, change_seq, run_id) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (source, stream, record_key) DO UPDATE SET "
    "content_hash = excluded.content_hash, payload = excluded.payload, "
    "deleted = excluded.deleted, last_changed_at = excluded.last_changed_at, "
    "change_seq = excluded.change_seq, run_id = excluded.run_id"
)


def _write_sqlite(
    conn: Connection,
    source: str,
    stream: str,
    rows: Iterable[tuple[str, str, str, bool]],
    seq: int,
    run_id: str,
    now: datetime,
    plain_insert: bool = False,
) -> None:
    # Same text form SQLAlchemy's DateTime uses on SQLite: naive UTC.
    stamp = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    params = [
        (source, stream, key, digest, payload, deleted, stamp, stamp, seq, run_id)
        for key, digest, payload, deleted in rows
    ]
    sql = _SQLITE_UPSERT.split(" ON CONFLICT")[0] if plain_insert else _SQLITE_UPSERT
    conn.exec_driver_sql(sql, params)


_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS raw_staging (record_key text, content_hash text, "
    "payload text, deleted boolean) ON COMMIT DELETE ROWS"
)
_PG_COPY_NEW = (
    "COPY raw_records (source, stream, record_key, content_hash, payload, deleted, "
    "first_seen_at, last_changed_at, change_seq, run_id) FROM STDIN"
)
_PG_UPSERT = (
    "INSERT INTO raw_records (source, stream, record_key, content_hash, payload, deleted, "
    "first_seen_at, last_changed_at, change_seq, run_id) "
    "SELECT %s, %s, record_key, content_hash, payload::json, deleted, %s, %s, %s, %s "
    "FROM raw_staging "
    "ON CONFLICT (source, stream, record_key) DO UPDATE SET "
    "content_hash = excluded.content_hash, payload = excluded.payload, "
    "deleted = excluded.deleted, last_changed_at = excluded.last_changed_at, "
    "change_seq = excluded.change_seq, run_id = excluded.run_id"
)


def _write_postgresql(
    conn: Connection,
    source: str,
    stream: str,
    rows: list[tuple[str, str, str, bool]],
    existing: dict[str, str],
    seq: int,
    run_id: str,
    now: datetime,
) -> None:
    new_rows = [row for row in rows if row[0] not in existing]
    changed = [row for row in rows if row[0] in existing]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if new_rows:  # the lease makes us the only writer of this source: plain COPY is safe
            with cursor.copy(_PG_COPY_NEW) as copy:
                for key, digest, payload, deleted in new_rows:
                    copy.write_row(
                        (source, stream, key, digest, payload, deleted, now, now, seq, run_id)
                    )
        if changed:
            cursor.execute(_PG_STAGING)
            with cursor.copy(
                "COPY raw_staging (record_key, content_hash, payload, deleted) FROM STDIN"
            ) as copy:
                for row in changed:
                    copy.write_row(row)
            cursor.execute(_PG_UPSERT, (source, stream, now, now, seq, run_id))
            cursor.execute("TRUNCATE raw_staging")
    finally:
        cursor.close()
