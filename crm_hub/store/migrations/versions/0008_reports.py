"""Reports for BI tools and SQL users: campaigns, sales funnel, retention cohorts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import ExactDecimal, JsonDocument, UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = (
    "report_campaigns",
    "report_funnel",
    "report_cohorts",
)


def upgrade() -> None:
    op.create_table(
        "report_campaigns",
        sa.Column("channel", sa.String(16), nullable=False, comment="email, form"),
        sa.Column("campaign_id", sa.String(255), nullable=False, comment="Campaign id or UTM tag"),
        sa.Column(
            "reached", sa.Integer, nullable=False, comment="People sent it / who filled the form"
        ),
        sa.Column(
            "engaged", sa.Integer, nullable=False, comment="People who clicked / filled the form"
        ),
        sa.Column("converted", sa.Integer, nullable=False, comment="First order within the window"),
        sa.Column("conversion_rate", sa.Float, nullable=True, comment="converted / reached"),
        sa.Column(
            "revenue",
            ExactDecimal(),
            nullable=True,
            comment="Converted people's orders in the window",
        ),
        sa.Column("currency", sa.String(3), nullable=True, comment="Currency of revenue"),
        sa.Column(
            "revenue_by_currency", JsonDocument(), nullable=True, comment="{currency: revenue}"
        ),
        sa.Column("cost", ExactDecimal(), nullable=True, comment="From hub.yaml campaigns:"),
        sa.Column("cost_currency", sa.String(3), nullable=True),
        sa.Column(
            "cost_per_acquisition", ExactDecimal(), nullable=True, comment="cost / converted"
        ),
        sa.Column("attribution_days", sa.Integer, nullable=False),
        sa.Column("first_touch_at", UtcDateTime(), nullable=True),
        sa.Column("last_touch_at", UtcDateTime(), nullable=True),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "campaign_id", name="pk_report_campaigns"),
    )
    op.create_table(
        "report_funnel",
        sa.Column("period", sa.String(7), nullable=False, comment="Month of the lead, YYYY-MM"),
        sa.Column("branch", sa.String(64), nullable=False, comment="Lead's branch, or unassigned"),
        sa.Column(
            "leads", sa.Integer, nullable=False, comment="People whose first form came in then"
        ),
        sa.Column("first_orders", sa.Integer, nullable=False, comment="... who ordered after it"),
        sa.Column("repeat_customers", sa.Integer, nullable=False, comment="... 2+ orders after it"),
        sa.Column(
            "regulars", sa.Integer, nullable=False, comment="... regular_orders+ orders after it"
        ),
        sa.Column("lead_to_order_rate", sa.Float, nullable=True),
        sa.Column("order_to_repeat_rate", sa.Float, nullable=True),
        sa.Column("repeat_to_regular_rate", sa.Float, nullable=True),
        sa.Column(
            "regular_orders", sa.Integer, nullable=False, comment="Orders that make a regular"
        ),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("period", "branch", name="pk_report_funnel"),
    )
    op.create_table(
        "report_cohorts",
        sa.Column("cohort", sa.String(7), nullable=False, comment="Month of first order, YYYY-MM"),
        sa.Column("branch", sa.String(64), nullable=False, comment="Branch of the first order"),
        sa.Column("months_since", sa.Integer, nullable=False, comment="0: the first order's month"),
        sa.Column("cohort_size", sa.Integer, nullable=False),
        sa.Column("active", sa.Integer, nullable=False, comment="Of them, ordered in that month"),
        sa.Column("retention", sa.Float, nullable=True, comment="active / cohort_size"),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "branch", "months_since", name="pk_report_cohorts"),
    )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
