"""Foundation: raw records, sync state, runs, rejected records, leases, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, JsonDocument, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_records",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False, comment="Source name in hub.yaml"),
        sa.Column("stream", sa.String(128), nullable=False, comment="Stream of that source"),
        sa.Column(
            "record_key", sa.Text, nullable=False, comment="Primary key; JSON array if composite"
        ),
        sa.Column(
            "content_hash", sa.String(32), nullable=False, comment="blake2b-128 of the payload"
        ),
        sa.Column("payload", JsonDocument(), nullable=False, comment="The record as delivered"),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_changed_at", UtcDateTime(), nullable=False, comment="Last new content"),
        sa.Column("change_seq", sa.BigInteger, nullable=False, comment="Store-wide commit order"),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_raw_records"),
        sa.UniqueConstraint(
            "source", "stream", "record_key", name="uq_raw_records_source_stream_record_key"
        ),
    )
    op.create_index("ix_raw_records_change_seq", "raw_records", ["change_seq"])
    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("state", JsonDocument(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("source", "stream", name="pk_sync_state"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(26), nullable=False, comment="ULID"),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, comment="running, succeeded, failed"),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("counts", JsonDocument(), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_stage_source_started_at", "runs", ["stage", "source", "started_at"])
    op.create_table(
        "rejected_records",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column(
            "reject_key", sa.Text, nullable=False, comment="Record key, or a hash of the bad line"
        ),
        sa.Column("record_key", sa.Text, nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=True, comment="file:line, URL or record path"),
        sa.Column("payload", sa.Text, nullable=True, comment="What was received, as text"),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_records"),
        sa.UniqueConstraint(
            "stage",
            "source",
            "stream",
            "reject_key",
            name="uq_rejected_records_stage_source_stream_reject_key",
        ),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False, comment="e.g. sync:pos_export"),
        sa.Column("holder", sa.String(26), nullable=False, comment="Run id holding it"),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )


def downgrade() -> None:
    for table in ("counters", "leases", "rejected_records", "runs", "sync_state"):
        op.drop_table(table)
    op.drop_index("ix_raw_records_change_seq", table_name="raw_records")
    op.drop_table("raw_records")
