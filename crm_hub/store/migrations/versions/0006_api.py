"""Read API: hashed access tokens and the audit log of personal-data reads.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = (
    "api_tokens",
    "audit_log",
)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(26), primary_key=True, comment="ULID"),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "token_hash", sa.String(64), nullable=False, comment="sha256 of the secret, never it"
        ),
        sa.Column("role", sa.String(16), nullable=False, comment="staff, manager, admin, service"),
        sa.Column("branch", sa.String(64), nullable=True, comment="Null: every branch"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("token_id", sa.String(26), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("branch", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False, comment="search, read, export, ..."),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("master_id", sa.String(28), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_master_id", "audit_log", ["master_id"])
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
