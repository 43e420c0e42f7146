"""Publish in flight: what a Singer-target push sent and what its target answered, kept in the
store (not in files) so the next push settles a killed one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import JsonDocument, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publish_target_runs",
        sa.Column("destination", sa.String(64)),
        sa.Column("run_id", sa.String(26)),
        sa.Column("host", sa.String(255), nullable=False, comment="Where the recorder runs"),
        sa.Column("pid", sa.Integer(), nullable=False, comment="The recorder's process id"),
        sa.Column("target_pid", sa.Integer(), nullable=True),
        sa.Column("workdir", sa.Text(), nullable=False, comment="Private temp dir (config)"),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True, comment="The target's"),
        sa.Column("stderr_tail", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True, comment="Why the target did not start"),
        sa.PrimaryKeyConstraint("destination", "run_id", name="pk_publish_target_runs"),
    )
    op.create_table(
        "publish_inflight",
        sa.Column("destination", sa.String(64)),
        sa.Column("run_id", sa.String(26)),
        sa.Column("master_id", sa.String(28)),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("payload_hash", sa.String(32), nullable=False),
        sa.Column("payload", JsonDocument(), nullable=True),
        sa.Column("record", JsonDocument(), nullable=False),
        sa.PrimaryKeyConstraint("destination", "run_id", "master_id", name="pk_publish_inflight"),
    )
    op.create_table(
        "publish_target_output",
        sa.Column("destination", sa.String(64)),
        sa.Column("run_id", sa.String(26)),
        sa.Column("seq", sa.Integer()),
        sa.Column("line", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("destination", "run_id", "seq", name="pk_publish_target_output"),
    )


def downgrade() -> None:
    op.drop_table("publish_target_output")
    op.drop_table("publish_inflight")
    op.drop_table("publish_target_runs")
