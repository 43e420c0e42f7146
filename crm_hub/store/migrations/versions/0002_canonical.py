"""Canonical model: source customers, orders and lines, invoices, payments, events; map watermarks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, ExactDecimal, JsonDocument, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = (
    "source_customers",
    "orders",
    "order_lines",
    "invoices",
    "payments",
    "events",
    "map_watermarks",
)


def upgrade() -> None:
    # The map stage reads one source's raw records after (change_seq, id), in that order.
    op.create_index(
        "ix_raw_records_source_change_seq_id", "raw_records", ["source", "change_seq", "id"]
    )
    op.create_table(
        "source_customers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("source_id", sa.Text, nullable=False, comment="The record's id in the source"),
        sa.Column("full_name", sa.Text, nullable=True),
        sa.Column("title", sa.String(64), nullable=True),
        sa.Column("first_name", sa.Text, nullable=True),
        sa.Column("middle_name", sa.Text, nullable=True),
        sa.Column("last_name", sa.Text, nullable=True),
        sa.Column("email", sa.Text, nullable=True, comment="Primary address, domain lower-cased"),
        sa.Column(
            "email_match_key", sa.Text, nullable=True, comment="Provider-aware key (gmail dots)"
        ),
        sa.Column("email_flag", sa.String(16), nullable=True, comment="missing, invalid, junk"),
        sa.Column(
            "emails", JsonDocument(), nullable=True, comment="Every address: email, key, flag"
        ),
        sa.Column("phone", sa.String(32), nullable=True, comment="Primary phone in E.164"),
        sa.Column("phone_raw", sa.Text, nullable=True, comment="As the source sent it"),
        sa.Column("phone_flag", sa.String(16), nullable=True, comment="missing, invalid, junk"),
        sa.Column("phones", JsonDocument(), nullable=True, comment="Every phone: e164, raw, flag"),
        sa.Column(
            "birth_year", sa.SmallInteger, nullable=True, comment="Null: birthday without year"
        ),
        sa.Column("birth_month", sa.SmallInteger, nullable=True),
        sa.Column("birth_day", sa.SmallInteger, nullable=True),
        sa.Column("address_line1", sa.Text, nullable=True),
        sa.Column("address_line2", sa.Text, nullable=True),
        sa.Column("city", sa.Text, nullable=True),
        sa.Column("region", sa.Text, nullable=True),
        sa.Column("postcode", sa.String(32), nullable=True),
        sa.Column("country", sa.String(2), nullable=True, comment="ISO 3166-1 alpha-2"),
        sa.Column("address_key", sa.Text, nullable=True, comment="Line match key (St = Street)"),
        sa.Column("postcode_key", sa.String(32), nullable=True),
        sa.Column("language", sa.String(16), nullable=True, comment="BCP 47, e.g. en, de-CH"),
        sa.Column("branch", sa.String(64), nullable=True),
        sa.Column(
            "consents", JsonDocument(), nullable=True, comment="{channel: {granted, at, source}}"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.Column(
            "time_offset", sa.String(6), nullable=True, comment="Source's UTC offset, e.g. +01:00"
        ),
        sa.Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of the raw record"),
        sa.Column("raw_id", sa.BigInteger, nullable=False, comment="raw_records.id it came from"),
        sa.Column("raw_change_seq", sa.BigInteger, nullable=False, comment="Its change_seq"),
        sa.Column("mapped_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_source_customers"),
        sa.UniqueConstraint("source", "source_id", name="uq_source_customers_source_source_id"),
    )
    op.create_index("ix_source_customers_raw_change_seq", "source_customers", ["raw_change_seq"])
    op.create_table(
        "orders",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("source_id", sa.Text, nullable=False, comment="The record's id in the source"),
        sa.Column("customer_source_id", sa.Text, nullable=True),
        sa.Column("branch", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True, comment="e.g. in_store, online"),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("placed_at", UtcDateTime(), nullable=True),
        sa.Column("placed_at_offset", sa.String(6), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True, comment="ISO 4217"),
        sa.Column("total", ExactDecimal(), nullable=True),
        sa.Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of the raw record"),
        sa.Column("raw_id", sa.BigInteger, nullable=False, comment="raw_records.id it came from"),
        sa.Column("raw_change_seq", sa.BigInteger, nullable=False, comment="Its change_seq"),
        sa.Column("mapped_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("source", "source_id", name="uq_orders_source_source_id"),
    )
    op.create_index("ix_orders_raw_change_seq", "orders", ["raw_change_seq"])
    op.create_index(
        "ix_orders_source_customer_source_id", "orders", ["source", "customer_source_id"]
    )
    op.create_table(
        "order_lines",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("order_source_id", sa.Text, nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False, comment="1-based position in the order"),
        sa.Column("product", sa.Text, nullable=True),
        sa.Column("sku", sa.Text, nullable=True),
        sa.Column("quantity", ExactDecimal(), nullable=True),
        sa.Column("unit_price", ExactDecimal(), nullable=True),
        sa.Column("discount", ExactDecimal(), nullable=True),
        sa.Column(
            "amount", ExactDecimal(), nullable=True, comment="quantity x unit price - discount"
        ),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("attributes", JsonDocument(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
        sa.UniqueConstraint(
            "source",
            "order_source_id",
            "line_no",
            name="uq_order_lines_source_order_source_id_line_no",
        ),
    )
    op.create_table(
        "invoices",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("source_id", sa.Text, nullable=False, comment="The record's id in the source"),
        sa.Column("customer_source_id", sa.Text, nullable=True),
        sa.Column("number", sa.Text, nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("issued_at", UtcDateTime(), nullable=True),
        sa.Column("issued_at_offset", sa.String(6), nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount", ExactDecimal(), nullable=True),
        sa.Column("balance", ExactDecimal(), nullable=True, comment="Still owed"),
        sa.Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of the raw record"),
        sa.Column("raw_id", sa.BigInteger, nullable=False, comment="raw_records.id it came from"),
        sa.Column("raw_change_seq", sa.BigInteger, nullable=False, comment="Its change_seq"),
        sa.Column("mapped_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invoices"),
        sa.UniqueConstraint("source", "source_id", name="uq_invoices_source_source_id"),
    )
    op.create_index("ix_invoices_raw_change_seq", "invoices", ["raw_change_seq"])
    op.create_index(
        "ix_invoices_source_customer_source_id", "invoices", ["source", "customer_source_id"]
    )
    op.create_table(
        "payments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("source_id", sa.Text, nullable=False, comment="The record's id in the source"),
        sa.Column("customer_source_id", sa.Text, nullable=True),
        sa.Column("invoice_source_id", sa.Text, nullable=True),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("paid_at", UtcDateTime(), nullable=True),
        sa.Column("paid_at_offset", sa.String(6), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount", ExactDecimal(), nullable=True),
        sa.Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of the raw record"),
        sa.Column("raw_id", sa.BigInteger, nullable=False, comment="raw_records.id it came from"),
        sa.Column("raw_change_seq", sa.BigInteger, nullable=False, comment="Its change_seq"),
        sa.Column("mapped_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("source", "source_id", name="uq_payments_source_source_id"),
    )
    op.create_index("ix_payments_raw_change_seq", "payments", ["raw_change_seq"])
    op.create_index(
        "ix_payments_source_customer_source_id", "payments", ["source", "customer_source_id"]
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("source_id", sa.Text, nullable=False, comment="The record's id in the source"),
        sa.Column("customer_source_id", sa.Text, nullable=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column(
            "kind", sa.String(32), nullable=True, comment="opened, clicked, unsubscribed, ..."
        ),
        sa.Column("campaign_id", sa.Text, nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=True),
        sa.Column("occurred_at_offset", sa.String(6), nullable=True),
        sa.Column("attributes", JsonDocument(), nullable=True, comment="Free source fields"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of the raw record"),
        sa.Column("raw_id", sa.BigInteger, nullable=False, comment="raw_records.id it came from"),
        sa.Column("raw_change_seq", sa.BigInteger, nullable=False, comment="Its change_seq"),
        sa.Column("mapped_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("source", "source_id", name="uq_events_source_source_id"),
    )
    op.create_index("ix_events_raw_change_seq", "events", ["raw_change_seq"])
    op.create_index(
        "ix_events_source_customer_source_id", "events", ["source", "customer_source_id"]
    )
    op.create_table(
        "map_watermarks",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column(
            "change_seq", sa.BigInteger, nullable=False, comment="Last raw change_seq mapped"
        ),
        sa.Column(
            "raw_id", sa.BigInteger, nullable=False, comment="Last raw id mapped in that change_seq"
        ),
        sa.Column(
            "mapping_hash", sa.String(32), nullable=False, comment="Mapping file it was mapped by"
        ),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_map_watermarks"),
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
    op.drop_index("ix_raw_records_source_change_seq_id", table_name="raw_records")
