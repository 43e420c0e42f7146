"""Erasure tombstones: hashes of what an erased person was known by, never the values.

``crm-hub erase`` writes them (kinds ``email``, ``phone``, ``source_record`` for a canonical
``SOURCE:SOURCE_ID`` and ``raw_record`` for a landed ``SOURCE/STREAM/RECORD_KEY``); the sync
stage does not land a raw record whose key is tombstoned and the map stage drops a row that
names a tombstoned e-mail, phone or customer. A check costs one indexed query per batch, and
nothing at all while the table is empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, select
from sqlalchemy.dialects import postgresql, sqlite

from crm_hub.store.schema import erasures

__all__ = [
    "any_tombstones",
    "record_hash",
    "save_tombstones",
    "source_record_hash",
    "tombstoned",
    "value_hash",
]


def value_hash(value: str) -> str:
    """blake2b-256 of the trimmed, lower-cased e-mail or phone (the publish stage's
    ``erasure_hash``: ``value_hash(" Ann@X.com ") == value_hash("ann@x.com")``)."""
    return hashlib.blake2b(value.strip().lower().encode(), digest_size=32).hexdigest()


def source_record_hash(source: str, source_id: str) -> str:
    """The tombstone of the canonical record ``SOURCE:SOURCE_ID`` (case kept)."""
    return hashlib.blake2b(f"{source}:{source_id}".encode(), digest_size=32).hexdigest()


def record_hash(source: str, stream: str, record_key: str) -> str:
    """The tombstone of the raw record ``(source, stream, record_key)`` (case kept)."""
    data = "\x1f".join((source, stream, record_key)).encode()
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def any_tombstones(conn: Connection) -> bool:
    """Whether anyone was ever erased (lets the stages skip hashing when not)."""
    return conn.execute(select(erasures.c.id).limit(1)).first() is not None


def tombstoned(conn: Connection, kinds: Iterable[str], hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` are tombstoned under one of ``kinds`` (one query)."""
    wanted = list(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 5_000):
        query = select(erasures.c.value_hash).where(
            and_(
                erasures.c.kind.in_(list(kinds)),
                erasures.c.value_hash.in_(wanted[start : start + 5_000]),
            )
        )
        found.update(conn.execute(query).scalars())
    return found


def save_tombstones(
    conn: Connection, pairs: Iterable[tuple[str, str]], *, now: datetime, reason: str | None
) -> int:
    """Record ``(kind, value_hash)`` tombstones (existing ones are kept); returns how many."""
    rows = [
        {"kind": kind, "value_hash": digest, "erased_at": now, "reason": reason}
        for kind, digest in sorted(set(pairs))
    ]
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(erasures).on_conflict_do_nothing(
            index_elements=["kind", "value_hash"]
        )
        conn.execute(statement, rows)
    return len(rows)
