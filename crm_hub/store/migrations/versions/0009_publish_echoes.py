"""Echo suppression: what the hub wrote into a destination that one of its sources reads back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import JsonDocument, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publish_echoes",
        sa.Column("source", sa.String(64), comment="Source reading the destination"),
        sa.Column("email_hash", sa.String(64), comment="blake2b of the e-mail written"),
        sa.Column("destination", sa.String(64)),
        sa.Column("master_id", sa.String(28), nullable=False),
        sa.Column(
            "written", JsonDocument(), nullable=True, comment="{channel, labels}: besides fields"
        ),
        sa.Column("sent_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "email_hash", "destination", name="pk_publish_echoes"),
    )
    op.create_index("ix_publish_echoes_master_id", "publish_echoes", ["master_id"])


def downgrade() -> None:
    op.drop_index("ix_publish_echoes_master_id", table_name="publish_echoes")
    op.drop_table("publish_echoes")
