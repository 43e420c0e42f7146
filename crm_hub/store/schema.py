"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this module is the
in-code picture the repositories query, checked against the migrations by a test.

Read by SQL users too: names are plain, timestamps are UTC, payloads are JSON text.
"""

from __future__ import annotations

import json
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
    Float,
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
    "MasterId",
    "UtcDateTime",
    "api_tokens",
    "audit_log",
    "connector_secrets",
    "counters",
    "erasures",
    "events",
    "identity_overrides",
    "identity_state",
    "invoices",
    "leases",
    "map_watermarks",
    "master_events",
    "master_links",
    "masters",
    "metadata",
    "order_lines",
    "orders",
    "payments",
    "profiles",
    "publish_echoes",
    "publish_inflight",
    "publish_state",
    "publish_target_output",
    "publish_target_runs",
    "publish_watermarks",
    "raw_records",
    "rejected_records",
    "report_campaigns",
    "report_cohorts",
    "report_funnel",
    "review_queue",
    "runs",
    "segment_history",
    "segment_memberships",
    "segments",
    "source_customers",
    "sqlite_json_text",
    "sync_state",
    "traits",
    "webhook_events",
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
        return sqlite_json_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":  # the driver already parsed it (a bare string too)
            return value
        if isinstance(value, str) and value.startswith(_WIDE):
            return json.loads(value)
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def sqlite_json_text(value: Any) -> str:
    """A JSON column's text on SQLite: sorted keys, by orjson; ``json.dumps`` behind
    :data:`_WIDE` for what orjson refuses (an integer past 64 bits, which it would read back as
    a float)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _WIDE + json.dumps(value, sort_keys=True, separators=(",", ":"))


# Leads the JSON text json.dumps wrote (still JSON to SQLite's json_extract): read it back with
# json.loads, which keeps wide integers exact where orjson.loads would round them to floats.
_WIDE = " "


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
    # Online matching (migration 0003) looks people up by these keys.
    Index(None, "email_match_key"),
    Index(None, "phone"),
    Index(None, "postcode_key"),
    Index(None, "birth_month", "birth_day"),
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


# --- Identity and golden profiles (migration 0003). --------------------------------------------
# A master id is "m_" + 26 Crockford base-32 characters. Every table a downstream reader follows
# carries ``change_seq`` (the store-wide commit order) so it can read "what changed since N".

MasterId = String(28)

masters = Table(
    "masters",
    metadata,
    Column("master_id", MasterId, primary_key=True),
    Column("status", String(16), nullable=False, comment="active, merged, erased"),
    Column("merged_into", MasterId, nullable=True, comment="Survivor, when status is merged"),
    Column("member_count", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    Index(None, "change_seq"),
)

master_links = Table(
    "master_links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("source_id", Text, nullable=False),
    Column("master_id", MasterId, nullable=False),
    Column("reason", String(64), nullable=False, comment="rule:<name>, score, must_link, single"),
    Column("probability", Float, nullable=True, comment="Match probability of the best link"),
    Column("evidence", JsonDocument(), nullable=True, comment="Linked record, comparison levels"),
    Column("linked_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    UniqueConstraint("source", "source_id"),
    Index(None, "master_id"),
    Index(None, "change_seq"),
)

master_events = Table(
    "master_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, comment="created, merged, split, erased"),
    Column("master_id", MasterId, nullable=False, comment="The survivor or the new master"),
    Column("other_ids", JsonDocument(), nullable=True, comment="Merged-away or split-from ids"),
    Column("detail", JsonDocument(), nullable=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    Index(None, "change_seq"),
    Index(None, "master_id"),
)

identity_overrides = Table(
    "identity_overrides",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, comment="must_link, cannot_link"),
    Column("left_source", String(64), nullable=False),
    Column("left_source_id", Text, nullable=False),
    Column("right_source", String(64), nullable=False),
    Column("right_source_id", Text, nullable=False),
    Column("origin", String(16), nullable=False, comment="cli, review, split"),
    Column("note", Text, nullable=True),
    Column("created_by", String(128), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint(
        "kind",
        "left_source",
        "left_source_id",
        "right_source",
        "right_source_id",
        name="uq_identity_overrides_pair",
    ),  # fmt: skip
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("left_source", String(64), nullable=False),
    Column("left_source_id", Text, nullable=False),
    Column("right_source", String(64), nullable=False),
    Column("right_source_id", Text, nullable=False),
    Column("reason", String(16), nullable=False, comment="maybe, refused"),
    Column("probability", Float, nullable=True),
    Column("evidence", JsonDocument(), nullable=True, comment="Comparison levels"),
    Column("status", String(16), nullable=False, comment="open, merged, kept_apart"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("decided_by", String(128), nullable=True),
    UniqueConstraint(
        "left_source",
        "left_source_id",
        "right_source",
        "right_source_id",
        name="uq_review_queue_pair",
    ),  # fmt: skip
    Index(None, "status"),
)

identity_state = Table(
    "identity_state",
    metadata,
    Column("name", String(64), primary_key=True, comment="e.g. watermark, model"),
    Column("value", JsonDocument(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("master_id", MasterId, primary_key=True),
    Column("full_name", Text, nullable=True),
    Column("first_name", Text, nullable=True),
    Column("last_name", Text, nullable=True),
    Column("email", Text, nullable=True),
    Column("emails", JsonDocument(), nullable=True, comment="Every known address"),
    Column("phone", String(32), nullable=True, comment="E.164"),
    Column("phones", JsonDocument(), nullable=True, comment="Every known phone"),
    Column("birth_year", SmallInteger, nullable=True),
    Column("birth_month", SmallInteger, nullable=True),
    Column("birth_day", SmallInteger, nullable=True),
    Column("address_line1", Text, nullable=True),
    Column("address_line2", Text, nullable=True),
    Column("city", Text, nullable=True),
    Column("region", Text, nullable=True),
    Column("postcode", String(32), nullable=True),
    Column("country", String(2), nullable=True),
    Column("language", String(16), nullable=True),
    Column("branch", String(64), nullable=True, comment="Home branch"),
    Column("consents", JsonDocument(), nullable=True, comment="{channel: {granted, at, source}}"),
    Column(
        "provenance",
        JsonDocument(),
        nullable=True,
        comment="{field: {source, source_id, rule, at}}",
    ),  # fmt: skip
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    Index(None, "change_seq"),
    Index(None, "phone"),
    Index(None, "email"),
)


# --- Traits and segments (migration 0004). ------------------------------------------------------
# One row of traits per active master; the trait registry (crm_hub/profile/traits) defines each
# column.

traits = Table(
    "traits",
    metadata,
    Column("master_id", MasterId, primary_key=True),
    Column("orders_count", Integer, nullable=False, default=0),
    Column("visits_count", Integer, nullable=False, default=0),
    Column("first_order_at", UtcDateTime(), nullable=True),
    Column("last_order_at", UtcDateTime(), nullable=True),
    Column("days_since_last_order", Integer, nullable=True),
    Column("currency", String(3), nullable=True, comment="Currency of the money traits"),
    Column("total_spend", Money, nullable=True),
    Column("average_order_value", Money, nullable=True),
    Column("spend_by_currency", JsonDocument(), nullable=True, comment="{currency: net spend}"),
    Column("spend_by_category", JsonDocument(), nullable=True),
    Column("visits_by_branch", JsonDocument(), nullable=True),
    Column("preferred_branch", String(64), nullable=True),
    Column("usual_weekday", SmallInteger, nullable=True, comment="0 Monday .. 6 Sunday"),
    Column("usual_hour", SmallInteger, nullable=True, comment="Local hour 0..23"),
    Column("favourite_items", JsonDocument(), nullable=True, comment="[{item, count}]"),
    Column("ltv", Money, nullable=True, comment="Historic net spend"),
    Column("predicted_clv", Money, nullable=True, comment="Expected spend, next 12 months"),
    Column("rfm_recency", SmallInteger, nullable=True, comment="1..5"),
    Column("rfm_frequency", SmallInteger, nullable=True, comment="1..5"),
    Column("rfm_monetary", SmallInteger, nullable=True, comment="1..5"),
    Column("rfm_segment", String(32), nullable=True),
    Column("churn_risk", Float, nullable=True, comment="0..1"),
    Column("next_birthday", Date, nullable=True),
    Column("days_to_birthday", Integer, nullable=True),
    Column("age_band", String(16), nullable=True),
    Column("open_balance", Money, nullable=True),
    Column(
        "balance_by_currency", JsonDocument(), nullable=True, comment="{currency: open balance}"
    ),
    Column("overdue_amount", Money, nullable=True),
    Column("overdue_days", Integer, nullable=True),
    Column("email_opens", Integer, nullable=True),
    Column("email_clicks", Integer, nullable=True),
    Column("last_email_activity_at", UtcDateTime(), nullable=True),
    Column("unsubscribed", Boolean, nullable=True),
    Column("consent_email", Boolean, nullable=True),
    Column("consent_sms", Boolean, nullable=True),
    Column("allergies", Text, nullable=True),
    Column("favourite_dish", Text, nullable=True),
    Column("preferences", JsonDocument(), nullable=True, comment="Other form answers"),
    Column("values_hash", String(16), nullable=True, comment="Hash of the values: skip no-ops"),
    Column("computed_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    Index(None, "change_seq"),
)

segments = Table(
    "segments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=True),
    Column("definition_hash", String(32), nullable=False),
    Column("member_count", Integer, nullable=False, default=0),
    Column("evaluated_at", UtcDateTime(), nullable=True),
    Column(
        "evaluated_change_seq",
        BigInteger,
        nullable=True,
        comment="Store change_seq the members reflect (incremental runs start after it)",
    ),
    Column("evaluated_for", Date, nullable=True, comment="The day relative dates were taken from"),
)

segment_memberships = Table(
    "segment_memberships",
    metadata,
    Column("segment", String(128), primary_key=True),
    Column("master_id", MasterId, primary_key=True),
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Index(None, "master_id"),
)

segment_history = Table(
    "segment_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("segment", String(128), nullable=False),
    Column("master_id", MasterId, nullable=False),
    Column("action", String(8), nullable=False, comment="entered, exited"),
    Column("cause", JsonDocument(), nullable=True, comment="The trait changes that moved them"),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("run_id", String(26), nullable=True),
    Index(None, "change_seq"),
    Index(None, "segment", "master_id"),
)


# --- Publish and erasure (migration 0005). -------------------------------------------------------

publish_state = Table(
    "publish_state",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("master_id", MasterId, primary_key=True),
    Column("payload_hash", String(32), nullable=False, comment="What the destination last got"),
    Column("payload", JsonDocument(), nullable=True, comment="Fields last sent (no-clobber)"),
    Column("remote_id", Text, nullable=True, comment="The destination's id for the person"),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("run_id", String(26), nullable=True),
)

publish_watermarks = Table(
    "publish_watermarks",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("change_seq", BigInteger, nullable=False, comment="Last change_seq fully pushed"),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("run_id", String(26), nullable=True),
)

# Echo suppression (migration 0009): what the hub wrote into a destination that a source reads
# back (``source:`` of the destination), by the e-mail's hash; the map stage's check.
publish_echoes = Table(
    "publish_echoes",
    metadata,
    Column("source", String(64), primary_key=True, comment="Source reading the destination"),
    Column("email_hash", String(64), primary_key=True, comment="blake2b of the e-mail written"),
    Column("destination", String(64), primary_key=True),
    Column("master_id", MasterId, nullable=False),
    Column("written", JsonDocument(), nullable=True, comment="{channel, labels}: besides fields"),
    Column("sent_at", UtcDateTime(), nullable=False),
    Index(None, "master_id"),
)

# A Singer-target push in flight (migration 0010): its recorder process (beating into
# heartbeat_at, 0011), the records sent (each batch written before the target gets it) and the
# target's stdout lines. The next push settles a killed one from these rows, then deletes them
# (crm_hub/publish/recorder.py).
publish_target_runs = Table(
    "publish_target_runs",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("run_id", String(26), primary_key=True),
    Column("host", String(255), nullable=False, comment="Where the recorder runs"),
    Column("pid", Integer, nullable=False, comment="The recorder's process id"),
    Column("target_pid", Integer, nullable=True),
    Column("workdir", Text, nullable=False, comment="Private temp dir (config)"),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("exit_code", Integer, nullable=True, comment="The target's"),
    Column("stderr_tail", Text, nullable=True),
    Column("error", Text, nullable=True, comment="Why the target did not start"),
    Column("heartbeat_at", UtcDateTime(), nullable=True, comment="The recorder's last beat"),
)

publish_inflight = Table(
    "publish_inflight",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("run_id", String(26), primary_key=True),
    Column("master_id", MasterId, primary_key=True),
    Column("batch", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("payload_hash", String(32), nullable=False),
    Column("payload", JsonDocument(), nullable=True),
    Column("record", JsonDocument(), nullable=False),
)

publish_target_output = Table(
    "publish_target_output",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("run_id", String(26), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("line", Text, nullable=False),
)

erasures = Table(
    "erasures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, comment="email, phone, source_record"),
    Column("value_hash", String(64), nullable=False, comment="blake2b of the normalised value"),
    Column("erased_at", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=True),
    UniqueConstraint("kind", "value_hash"),
)


# --- Read API access (migration 0006). -----------------------------------------------------------

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(26), primary_key=True, comment="ULID"),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, comment="sha256 of the secret, never it"),
    Column("role", String(16), nullable=False, comment="staff, manager, admin, service"),
    Column("branch", String(64), nullable=True, comment="Null: every branch"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    UniqueConstraint("token_hash"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("token_id", String(26), nullable=True),
    Column("role", String(16), nullable=True),
    Column("branch", String(64), nullable=True),
    Column("action", String(32), nullable=False, comment="search, read, export, ..."),
    Column("path", Text, nullable=False),
    Column("master_id", MasterId, nullable=True),
    Column("status", Integer, nullable=False),
    Index(None, "occurred_at"),
    Index(None, "master_id"),
)


# --- Rotated connector secrets and received webhooks (migration 0007). -------------------------

connector_secrets = Table(
    "connector_secrets",
    metadata,
    Column("source", String(64), primary_key=True, comment="Source name in hub.yaml"),
    Column("key", String(255), primary_key=True, comment="Dotted config path"),
    Column("value", Text, nullable=False, comment="JSON of the rotated value: a secret"),
    Column(
        "base_hash",
        String(64),
        nullable=True,
        comment="sha256 of the hub.yaml value it replaced (null: none); hub.yaml wins if changed",
    ),
    Column("updated_at", UtcDateTime(), nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("source", String(64), primary_key=True, comment="Source name in hub.yaml"),
    Column("event_id", String(255), primary_key=True, comment="The sender's event id"),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("record_key", Text, nullable=True, comment="Raw record it landed as"),
    Index(None, "received_at"),
)


# --- Reports for BI tools and SQL users (migration 0008). ----------------------------------------
# Rebuilt whole by crm_hub.analytics.compute_reports; counts are distinct active masters.

report_campaigns = Table(
    "report_campaigns",
    metadata,
    Column("channel", String(16), primary_key=True, comment="email, form"),
    Column("campaign_id", String(255), primary_key=True, comment="Campaign id or UTM tag"),
    Column("reached", Integer, nullable=False, comment="People sent it / who filled the form"),
    Column("engaged", Integer, nullable=False, comment="People who clicked / filled the form"),
    Column("converted", Integer, nullable=False, comment="First order within the window"),
    Column("conversion_rate", Float, nullable=True, comment="converted / reached"),
    Column("revenue", Money, nullable=True, comment="Converted people's orders in the window"),
    Column("currency", String(3), nullable=True, comment="Currency of revenue"),
    Column("revenue_by_currency", JsonDocument(), nullable=True, comment="{currency: revenue}"),
    Column("cost", Money, nullable=True, comment="From hub.yaml campaigns:"),
    Column("cost_currency", String(3), nullable=True),
    Column("cost_per_acquisition", Money, nullable=True, comment="cost / converted"),
    Column("attribution_days", Integer, nullable=False),
    Column("first_touch_at", UtcDateTime(), nullable=True),
    Column("last_touch_at", UtcDateTime(), nullable=True),
    Column("computed_at", UtcDateTime(), nullable=False),
)

report_funnel = Table(
    "report_funnel",
    metadata,
    Column("period", String(7), primary_key=True, comment="Month of the lead, YYYY-MM"),
    Column("branch", String(64), primary_key=True, comment="Lead's branch, or unassigned"),
    Column("leads", Integer, nullable=False, comment="People whose first form came in then"),
    Column("first_orders", Integer, nullable=False, comment="... who ordered after it"),
    Column("repeat_customers", Integer, nullable=False, comment="... 2+ orders after it"),
    Column("regulars", Integer, nullable=False, comment="... regular_orders+ orders after it"),
    Column("lead_to_order_rate", Float, nullable=True),
    Column("order_to_repeat_rate", Float, nullable=True),
    Column("repeat_to_regular_rate", Float, nullable=True),
    Column("regular_orders", Integer, nullable=False, comment="Orders that make a regular"),
    Column("computed_at", UtcDateTime(), nullable=False),
)

report_cohorts = Table(
    "report_cohorts",
    metadata,
    Column("cohort", String(7), primary_key=True, comment="Month of first order, YYYY-MM"),
    Column("branch", String(64), primary_key=True, comment="Branch of the first order"),
    Column("months_since", Integer, primary_key=True, comment="0: the first order's month"),
    Column("cohort_size", Integer, nullable=False),
    Column("active", Integer, nullable=False, comment="Of them, ordered in that month"),
    Column("retention", Float, nullable=True, comment="active / cohort_size"),
    Column("computed_at", UtcDateTime(), nullable=False),
)
