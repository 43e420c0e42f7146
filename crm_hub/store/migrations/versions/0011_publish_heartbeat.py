"""Publish heartbeat: a recorder's last sign of life, so that a hub on another host can tell a
live recorder of a killed push from a dead one (it cannot look at that host's processes).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publish_target_runs") as batch:
        batch.add_column(
            sa.Column(
                "heartbeat_at", UtcDateTime(), nullable=True, comment="The recorder's last beat"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("publish_target_runs") as batch:
        batch.drop_column("heartbeat_at")
