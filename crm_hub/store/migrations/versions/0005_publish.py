"""Publish: per-destination state and watermarks; erasure tombstones that block re-ingestion.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, JsonDocument, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = (
    "publish_state",
    "publish_watermarks",
    "erasures",
)


def upgrade() -> None:
    op.create_table(
        "publish_state",
        sa.Column("destination", sa.String(64)),
        sa.Column("master_id", sa.String(28)),
        sa.Column(
            "payload_hash", sa.String(32), nullable=False, comment="What the destination last got"
        ),
        sa.Column(
            "payload", JsonDocument(), nullable=True, comment="Fields last sent (no-clobber)"
        ),
        sa.Column(
            "remote_id", sa.Text, nullable=True, comment="The destination's id for the person"
        ),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("destination", "master_id", name="pk_publish_state"),
    )
    op.create_table(
        "publish_watermarks",
        sa.Column("destination", sa.String(64), primary_key=True),
        sa.Column(
            "change_seq", sa.BigInteger, nullable=False, comment="Last change_seq fully pushed"
        ),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("destination", name="pk_publish_watermarks"),
    )
    op.create_table(
        "erasures",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False, comment="email, phone, source_record"),
        sa.Column(
            "value_hash", sa.String(64), nullable=False, comment="blake2b of the normalised value"
        ),
        sa.Column("erased_at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
        sa.UniqueConstraint("kind", "value_hash", name="uq_erasures_kind_value_hash"),
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
