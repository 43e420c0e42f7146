"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this module is the
in-code picture the repositories query, checked against the migrations by a test.

Read by SQL users too: names are plain, timestamps are UTC, payloads are JSON text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "JsonDocument",
    "UtcDateTime",
    "counters",
    "leases",
    "metadata",
    "raw_records",
    "rejected_records",
    "runs",
    "sync_state",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite's INTEGER PRIMARY KEY is the rowid (fast); BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; SQLite stores them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crm-hub stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class JsonDocument(TypeDecorator[Any]):
    """JSON: ``json`` on PostgreSQL, text on SQLite (json_extract works on it); dicts in Python."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSON(none_as_null=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value


raw_records = Table(
    "raw_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, comment="Source name in hub.yaml"),
    Column("stream", String(128), nullable=False, comment="Stream of that source"),
    Column("record_key", Text, nullable=False, comment="Primary key; JSON array if composite"),
    Column("content_hash", String(32), nullable=False, comment="blake2b-128 of the payload"),
    Column("payload", JsonDocument(), nullable=False, comment="The record as delivered"),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_changed_at", UtcDateTime(), nullable=False, comment="Last new content"),
    Column("change_seq", BigInteger, nullable=False, comment="Store-wide commit order"),
    Column("run_id", String(26), nullable=True),
    UniqueConstraint("source", "stream", "record_key"),
    Index(None, "change_seq"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("stream", String(128), primary_key=True),
    Column("state", JsonDocument(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("run_id", String(26), nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(26), primary_key=True, comment="ULID"),
    Column("stage", String(32), nullable=False),
    Column("source", String(64), nullable=True),
    Column("status", String(16), nullable=False, comment="running, succeeded, failed"),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("counts", JsonDocument(), nullable=True),
    Column("error", Text, nullable=True),
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Index(None, "stage", "source", "started_at"),
)

rejected_records = Table(
    "rejected_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("stage", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("stream", String(128), nullable=False),
    Column("reject_key", Text, nullable=False, comment="Record key, or a hash of the bad line"),
    Column("record_key", Text, nullable=True),
    Column("reason_code", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("location", Text, nullable=True, comment="file:line, URL or record path"),
    Column("payload", Text, nullable=True, comment="What was received, as text"),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("run_id", String(26), nullable=True),
    UniqueConstraint("stage", "source", "stream", "reject_key"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True, comment="e.g. sync:pos_export"),
    Column("holder", String(26), nullable=False, comment="Run id holding it"),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
