"""Rotated connector secrets (e.g. QuickBooks' single-use refresh token) and the ids of received
webhook events (Typeform), so a redelivery lands nothing twice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = (
    "connector_secrets",
    "webhook_events",
)


def upgrade() -> None:
    op.create_table(
        "connector_secrets",
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("key", sa.String(255), nullable=False, comment="Dotted config path"),
        sa.Column("value", sa.Text, nullable=False, comment="JSON of the rotated value: a secret"),
        sa.Column(
            "base_hash",
            sa.String(64),
            nullable=True,
            comment="sha256 of the hub.yaml value it replaced (null: none); hub.yaml wins if "
            "changed",
        ),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "key", name="pk_connector_secrets"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("event_id", sa.String(255), nullable=False, comment="The sender's event id"),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("record_key", sa.Text, nullable=True, comment="Raw record it landed as"),
        sa.PrimaryKeyConstraint("source", "event_id", name="pk_webhook_events"),
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
