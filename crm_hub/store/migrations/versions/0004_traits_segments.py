"""Traits and segments: one row of traits per master, segment memberships and their history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, ExactDecimal, JsonDocument, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = (
    "traits",
    "segments",
    "segment_memberships",
    "segment_history",
)


def upgrade() -> None:
    op.create_table(
        "traits",
        sa.Column("master_id", sa.String(28), primary_key=True),
        sa.Column("orders_count", sa.Integer, nullable=False),
        sa.Column("visits_count", sa.Integer, nullable=False),
        sa.Column("first_order_at", UtcDateTime(), nullable=True),
        sa.Column("last_order_at", UtcDateTime(), nullable=True),
        sa.Column("days_since_last_order", sa.Integer, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True, comment="Currency of the money traits"),
        sa.Column("total_spend", ExactDecimal(), nullable=True),
        sa.Column("average_order_value", ExactDecimal(), nullable=True),
        sa.Column(
            "spend_by_currency", JsonDocument(), nullable=True, comment="{currency: net spend}"
        ),
        sa.Column("spend_by_category", JsonDocument(), nullable=True),
        sa.Column("visits_by_branch", JsonDocument(), nullable=True),
        sa.Column("preferred_branch", sa.String(64), nullable=True),
        sa.Column("usual_weekday", sa.SmallInteger, nullable=True, comment="0 Monday .. 6 Sunday"),
        sa.Column("usual_hour", sa.SmallInteger, nullable=True, comment="Local hour 0..23"),
        sa.Column("favourite_items", JsonDocument(), nullable=True, comment="[{item, count}]"),
        sa.Column("ltv", ExactDecimal(), nullable=True, comment="Historic net spend"),
        sa.Column(
            "predicted_clv", ExactDecimal(), nullable=True, comment="Expected spend, next 12 months"
        ),
        sa.Column("rfm_recency", sa.SmallInteger, nullable=True, comment="1..5"),
        sa.Column("rfm_frequency", sa.SmallInteger, nullable=True, comment="1..5"),
        sa.Column("rfm_monetary", sa.SmallInteger, nullable=True, comment="1..5"),
        sa.Column("rfm_segment", sa.String(32), nullable=True),
        sa.Column("churn_risk", sa.Float, nullable=True, comment="0..1"),
        sa.Column("next_birthday", sa.Date, nullable=True),
        sa.Column("days_to_birthday", sa.Integer, nullable=True),
        sa.Column("age_band", sa.String(16), nullable=True),
        sa.Column("open_balance", ExactDecimal(), nullable=True),
        sa.Column(
            "balance_by_currency", JsonDocument(), nullable=True, comment="{currency: open balance}"
        ),
        sa.Column("overdue_amount", ExactDecimal(), nullable=True),
        sa.Column("overdue_days", sa.Integer, nullable=True),
        sa.Column("email_opens", sa.Integer, nullable=True),
        sa.Column("email_clicks", sa.Integer, nullable=True),
        sa.Column("last_email_activity_at", UtcDateTime(), nullable=True),
        sa.Column("unsubscribed", sa.Boolean, nullable=True),
        sa.Column("consent_email", sa.Boolean, nullable=True),
        sa.Column("consent_sms", sa.Boolean, nullable=True),
        sa.Column("allergies", sa.Text, nullable=True),
        sa.Column("favourite_dish", sa.Text, nullable=True),
        sa.Column("preferences", JsonDocument(), nullable=True, comment="Other form answers"),
        sa.Column(
            "values_hash", sa.String(16), nullable=True, comment="Hash of the values: skip no-ops"
        ),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("master_id", name="pk_traits"),
    )
    op.create_index("ix_traits_change_seq", "traits", ["change_seq"])
    op.create_table(
        "segments",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("definition_hash", sa.String(32), nullable=False),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("evaluated_at", UtcDateTime(), nullable=True),
        sa.Column(
            "evaluated_change_seq",
            sa.BigInteger,
            nullable=True,
            comment="Store change_seq the members reflect (incremental runs start after it)",
        ),
        sa.Column(
            "evaluated_for",
            sa.Date,
            nullable=True,
            comment="The day relative dates were taken from",
        ),
        sa.PrimaryKeyConstraint("name", name="pk_segments"),
    )
    op.create_table(
        "segment_memberships",
        sa.Column("segment", sa.String(128)),
        sa.Column("master_id", sa.String(28)),
        sa.Column("entered_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("segment", "master_id", name="pk_segment_memberships"),
    )
    op.create_index("ix_segment_memberships_master_id", "segment_memberships", ["master_id"])
    op.create_table(
        "segment_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("segment", sa.String(128), nullable=False),
        sa.Column("master_id", sa.String(28), nullable=False),
        sa.Column("action", sa.String(8), nullable=False, comment="entered, exited"),
        sa.Column(
            "cause", JsonDocument(), nullable=True, comment="The trait changes that moved them"
        ),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_segment_history"),
    )
    op.create_index("ix_segment_history_change_seq", "segment_history", ["change_seq"])
    op.create_index(
        "ix_segment_history_segment_master_id", "segment_history", ["segment", "master_id"]
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
