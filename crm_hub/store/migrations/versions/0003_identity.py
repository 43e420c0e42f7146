"""Identity: masters, their links and events, overrides, the review queue; golden profiles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_hub.store.schema import BigId, JsonDocument, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (
    "masters",
    "master_links",
    "master_events",
    "identity_overrides",
    "review_queue",
    "identity_state",
    "profiles",
)


_LOOKUPS = (["email_match_key"], ["phone"], ["postcode_key"], ["birth_month", "birth_day"])


def upgrade() -> None:
    for columns in _LOOKUPS:  # online matching finds candidates by these keys
        op.create_index(f"ix_source_customers_{'_'.join(columns)}", "source_customers", columns)
    op.create_table(
        "masters",
        sa.Column("master_id", sa.String(28), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, comment="active, merged, erased"),
        sa.Column(
            "merged_into", sa.String(28), nullable=True, comment="Survivor, when status is merged"
        ),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("master_id", name="pk_masters"),
    )
    op.create_index("ix_masters_change_seq", "masters", ["change_seq"])
    op.create_table(
        "master_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("master_id", sa.String(28), nullable=False),
        sa.Column(
            "reason", sa.String(64), nullable=False, comment="rule:<name>, score, must_link, single"
        ),
        sa.Column(
            "probability", sa.Float, nullable=True, comment="Match probability of the best link"
        ),
        sa.Column(
            "evidence", JsonDocument(), nullable=True, comment="Linked record, comparison levels"
        ),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_master_links"),
        sa.UniqueConstraint("source", "source_id", name="uq_master_links_source_source_id"),
    )
    op.create_index("ix_master_links_change_seq", "master_links", ["change_seq"])
    op.create_index("ix_master_links_master_id", "master_links", ["master_id"])
    op.create_table(
        "master_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False, comment="created, merged, split, erased"),
        sa.Column(
            "master_id", sa.String(28), nullable=False, comment="The survivor or the new master"
        ),
        sa.Column(
            "other_ids", JsonDocument(), nullable=True, comment="Merged-away or split-from ids"
        ),
        sa.Column("detail", JsonDocument(), nullable=True),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_master_events"),
    )
    op.create_index("ix_master_events_change_seq", "master_events", ["change_seq"])
    op.create_index("ix_master_events_master_id", "master_events", ["master_id"])
    op.create_table(
        "identity_overrides",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False, comment="must_link, cannot_link"),
        sa.Column("left_source", sa.String(64), nullable=False),
        sa.Column("left_source_id", sa.Text, nullable=False),
        sa.Column("right_source", sa.String(64), nullable=False),
        sa.Column("right_source_id", sa.Text, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False, comment="cli, review, split"),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_overrides"),
        sa.UniqueConstraint(
            "kind",
            "left_source",
            "left_source_id",
            "right_source",
            "right_source_id",
            name="uq_identity_overrides_pair",
        ),
    )
    op.create_table(
        "review_queue",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("left_source", sa.String(64), nullable=False),
        sa.Column("left_source_id", sa.Text, nullable=False),
        sa.Column("right_source", sa.String(64), nullable=False),
        sa.Column("right_source_id", sa.Text, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False, comment="maybe, refused"),
        sa.Column("probability", sa.Float, nullable=True),
        sa.Column("evidence", JsonDocument(), nullable=True, comment="Comparison levels"),
        sa.Column("status", sa.String(16), nullable=False, comment="open, merged, kept_apart"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_queue"),
        sa.UniqueConstraint(
            "left_source",
            "left_source_id",
            "right_source",
            "right_source_id",
            name="uq_review_queue_pair",
        ),
    )
    op.create_index("ix_review_queue_status", "review_queue", ["status"])
    op.create_table(
        "identity_state",
        sa.Column("name", sa.String(64), primary_key=True, comment="e.g. watermark, model"),
        sa.Column("value", JsonDocument(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_identity_state"),
    )
    op.create_table(
        "profiles",
        sa.Column("master_id", sa.String(28), primary_key=True),
        sa.Column("full_name", sa.Text, nullable=True),
        sa.Column("first_name", sa.Text, nullable=True),
        sa.Column("last_name", sa.Text, nullable=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("emails", JsonDocument(), nullable=True, comment="Every known address"),
        sa.Column("phone", sa.String(32), nullable=True, comment="E.164"),
        sa.Column("phones", JsonDocument(), nullable=True, comment="Every known phone"),
        sa.Column("birth_year", sa.SmallInteger, nullable=True),
        sa.Column("birth_month", sa.SmallInteger, nullable=True),
        sa.Column("birth_day", sa.SmallInteger, nullable=True),
        sa.Column("address_line1", sa.Text, nullable=True),
        sa.Column("address_line2", sa.Text, nullable=True),
        sa.Column("city", sa.Text, nullable=True),
        sa.Column("region", sa.Text, nullable=True),
        sa.Column("postcode", sa.String(32), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("branch", sa.String(64), nullable=True, comment="Home branch"),
        sa.Column(
            "consents", JsonDocument(), nullable=True, comment="{channel: {granted, at, source}}"
        ),
        sa.Column(
            "provenance",
            JsonDocument(),
            nullable=True,
            comment="{field: {source, source_id, rule, at}}",
        ),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("master_id", name="pk_profiles"),
    )
    op.create_index("ix_profiles_change_seq", "profiles", ["change_seq"])
    op.create_index("ix_profiles_email", "profiles", ["email"])
    op.create_index("ix_profiles_phone", "profiles", ["phone"])


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
    for columns in _LOOKUPS:
        op.drop_index(f"ix_source_customers_{'_'.join(columns)}", table_name="source_customers")
