"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this module is the
in-code picture the repositories query, checked against the migrations by a test.

Read by SQL users too: names are plain, timestamps are UTC, payloads are JSON text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "CANONICAL_TABLES",
    "ExactDecimal",
    "JsonDocument",
    "UtcDateTime",
    "counters",
    "events",
    "invoices",
    "leases",
    "map_watermarks",
    "metadata",
    "order_lines",
    "orders",
    "payments",
    "raw_records",
    "rejected_records",
    "runs",
    "source_customers",
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
        if dialect.name == "postgresql":  # the driver already parsed it (a bare string too)
            return value
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
    Index(None, "source", "change_seq", "id"),  # the map stage: a source's changes, in order
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


# --- Canonical model (migration 0002): one row per source record, per source. -----------------
# Money is Numeric(18, 4) with an ISO 4217 currency beside it; times are UTC with the source's
# offset kept in a ``*_offset`` column (e.g. ``+01:00``); every row names the raw record it came
# from (raw_id, raw_change_seq) and is marked ``deleted`` when that raw record is.


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimals: ``numeric(18, 4)`` on PostgreSQL; text on SQLite (it has no decimal type
    and would round through floats). Decimals in, decimals out."""

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(18, 4))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


Money = ExactDecimal()


def _lineage() -> list[Column[Any]]:
    """Columns every canonical table ends with: where the row came from and when."""
    return [
        Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        Column("deleted", Boolean, nullable=False, default=False),
        Column("stream", String(128), nullable=False, comment="Stream of the raw record"),
        Column("raw_id", BigInteger, nullable=False, comment="raw_records.id it came from"),
        Column("raw_change_seq", BigInteger, nullable=False, comment="Its change_seq"),
        Column("mapped_at", UtcDateTime(), nullable=False),
        Column("run_id", String(26), nullable=True),
    ]


def _keyed(name: str, *columns: SchemaItem) -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("source", String(64), nullable=False, comment="Source name in hub.yaml"),
        Column("source_id", Text, nullable=False, comment="The record's id in the source"),
        *columns,
        *_lineage(),
        UniqueConstraint("source", "source_id"),
        Index(None, "raw_change_seq"),
    )


source_customers = _keyed(
    "source_customers",
    Column("full_name", Text, nullable=True),
    Column("title", String(64), nullable=True),
    Column("first_name", Text, nullable=True),
    Column("middle_name", Text, nullable=True),
    Column("last_name", Text, nullable=True),
    Column("email", Text, nullable=True, comment="Primary address, domain lower-cased"),
    Column("email_match_key", Text, nullable=True, comment="Provider-aware key (gmail dots)"),
    Column("email_flag", String(16), nullable=True, comment="missing, invalid, junk"),
    Column("emails", JsonDocument(), nullable=True, comment="Every address: email, key, flag"),
    Column("phone", String(32), nullable=True, comment="Primary phone in E.164"),
    Column("phone_raw", Text, nullable=True, comment="As the source sent it"),
    Column("phone_flag", String(16), nullable=True, comment="missing, invalid, junk"),
    Column("phones", JsonDocument(), nullable=True, comment="Every phone: e164, raw, flag"),
    Column("birth_year", SmallInteger, nullable=True, comment="Null: birthday without year"),
    Column("birth_month", SmallInteger, nullable=True),
    Column("birth_day", SmallInteger, nullable=True),
    Column("address_line1", Text, nullable=True),
    Column("address_line2", Text, nullable=True),
    Column("city", Text, nullable=True),
    Column("region", Text, nullable=True),
    Column("postcode", String(32), nullable=True),
    Column("country", String(2), nullable=True, comment="ISO 3166-1 alpha-2"),
    Column("address_key", Text, nullable=True, comment="Line match key (St = Street)"),
    Column("postcode_key", String(32), nullable=True),
    Column("language", String(16), nullable=True, comment="BCP 47, e.g. en, de-CH"),
    Column("branch", String(64), nullable=True),
    Column("consents", JsonDocument(), nullable=True, comment="{channel: {granted, at, source}}"),
    Column("created_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=True),
    Column("time_offset", String(6), nullable=True, comment="Source's UTC offset, e.g. +01:00"),
)

orders = _keyed(
    "orders",
    Column("customer_source_id", Text, nullable=True),
    Column("branch", String(64), nullable=True),
    Column("channel", String(32), nullable=True, comment="e.g. in_store, online"),
    Column("status", String(32), nullable=True),
    Column("placed_at", UtcDateTime(), nullable=True),
    Column("placed_at_offset", String(6), nullable=True),
    Column("currency", String(3), nullable=True, comment="ISO 4217"),
    Column("total", Money, nullable=True),
    Index(None, "source", "customer_source_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("order_source_id", Text, nullable=False),
    Column("line_no", Integer, nullable=False, comment="1-based position in the order"),
    Column("product", Text, nullable=True),
    Column("sku", Text, nullable=True),
    Column("quantity", ExactDecimal(), nullable=True),
    Column("unit_price", Money, nullable=True),
    Column("discount", Money, nullable=True),
    Column("amount", Money, nullable=True, comment="quantity x unit price - discount"),
    Column("currency", String(3), nullable=True),
    Column("attributes", JsonDocument(), nullable=True),
    UniqueConstraint("source", "order_source_id", "line_no"),
)

invoices = _keyed(
    "invoices",
    Column("customer_source_id", Text, nullable=True),
    Column("number", Text, nullable=True),
    Column("status", String(32), nullable=True),
    Column("issued_at", UtcDateTime(), nullable=True),
    Column("issued_at_offset", String(6), nullable=True),
    Column("due_date", Date, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("amount", Money, nullable=True),
    Column("balance", Money, nullable=True, comment="Still owed"),
    Index(None, "source", "customer_source_id"),
)

payments = _keyed(
    "payments",
    Column("customer_source_id", Text, nullable=True),
    Column("invoice_source_id", Text, nullable=True),
    Column("status", String(32), nullable=True),
    Column("method", String(32), nullable=True),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("paid_at_offset", String(6), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("amount", Money, nullable=True),
    Index(None, "source", "customer_source_id"),
)

events = _keyed(
    "events",
    Column("customer_source_id", Text, nullable=True),
    Column("email", Text, nullable=True),
    Column("kind", String(32), nullable=True, comment="opened, clicked, unsubscribed, ..."),
    Column("campaign_id", Text, nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=True),
    Column("occurred_at_offset", String(6), nullable=True),
    Index(None, "source", "customer_source_id"),
)

map_watermarks = Table(
    "map_watermarks",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("change_seq", BigInteger, nullable=False, comment="Last raw change_seq mapped"),
    Column("raw_id", BigInteger, nullable=False, comment="Last raw id mapped in that change_seq"),
    Column("mapping_hash", String(32), nullable=False, comment="Mapping file it was mapped by"),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("run_id", String(26), nullable=True),
)

CANONICAL_TABLES: dict[str, Table] = {
    "source_customers": source_customers,
    "orders": orders,
    "invoices": invoices,
    "payments": payments,
    "events": events,
}
