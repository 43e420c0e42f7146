"""Tiny inline people for the publish tests: masters, profiles, traits, memberships and merge
events written straight into the store (the stages that fill them are not needed here)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from crm_hub.config import HubConfig, load_config
from crm_hub.store import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import (
    master_events,
    masters,
    profiles,
    publish_inflight,
    publish_state,
    publish_target_output,
    publish_target_runs,
    rejected_records,
    segment_history,
    segment_memberships,
    traits,
)
from crm_hub.store.upsert import upsert

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
YES = {"email": {"granted": True, "at": "2026-01-01T00:00:00+00:00", "source": "t"}}
NO = {"email": {"granted": False, "at": "2026-06-01T00:00:00+00:00", "source": "t"}}


def put(store: Store, master_id: str, *, status: str = "active", merged_into: str | None = None,
        consents: dict[str, Any] | None = YES, **fields: Any) -> None:  # fmt: skip
    """Write one person (master row, profile, traits) under a new change_seq."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        upsert(conn, masters,
               [{"master_id": master_id, "status": status, "merged_into": merged_into,
                 "member_count": 1, "created_at": NOW, "updated_at": NOW, "change_seq": seq}],
               keys=["master_id"], update=["status", "merged_into", "change_seq"])  # fmt: skip
        if status != "active":
            conn.execute(delete(profiles).where(profiles.c.master_id == master_id))
            return
        names = {c.name for c in traits.columns}
        mine = {k: v for k, v in fields.items() if k not in names}
        prof = {"master_id": master_id, "consents": consents, "updated_at": NOW,
                "change_seq": seq, **mine}  # fmt: skip
        upsert(conn, profiles, [prof], keys=["master_id"],
               update=[k for k in prof if k != "master_id"])  # fmt: skip
        theirs = {k: v for k, v in fields.items() if k in names}
        row = {"master_id": master_id, "orders_count": 0, "visits_count": 0, "computed_at": NOW,
               "change_seq": seq, **theirs}  # fmt: skip
        upsert(conn, traits, [row], keys=["master_id"], update=[k for k in row if k != "master_id"])


def join(store: Store, segment: str, *master_ids: str) -> None:
    """Put people in a segment (membership plus history)."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        for master_id in master_ids:
            upsert(conn, segment_memberships,
                   [{"segment": segment, "master_id": master_id, "entered_at": NOW,
                     "change_seq": seq}],
                   keys=["segment", "master_id"], update=["change_seq"])  # fmt: skip
            conn.execute(segment_history.insert().values(
                segment=segment, master_id=master_id, action="entered", occurred_at=NOW,
                change_seq=seq))  # fmt: skip


def leave(store: Store, segment: str, *master_ids: str) -> None:
    """Take people out of a segment."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        for master_id in master_ids:
            conn.execute(delete(segment_memberships).where(
                (segment_memberships.c.segment == segment)
                & (segment_memberships.c.master_id == master_id)))  # fmt: skip
            conn.execute(segment_history.insert().values(
                segment=segment, master_id=master_id, action="exited", occurred_at=NOW,
                change_seq=seq))  # fmt: skip


def merge(store: Store, survivor: str, merged: str) -> None:
    """Merge ``merged`` into ``survivor`` the way the resolve stage records it."""
    put(store, merged, status="merged", merged_into=survivor)
    with store.begin() as conn:
        seq = next_change_seq(conn)
        conn.execute(master_events.insert().values(
            kind="merged", master_id=survivor, other_ids=[merged], occurred_at=NOW,
            change_seq=seq))  # fmt: skip


def hub_config(tmp_path: Path, store_url: str, destinations_yaml: str) -> HubConfig:
    """Write hub.yaml with these destinations (indented under ``destinations:``) and load it."""
    path = tmp_path / "hub.yaml"
    path.write_text(f"store: {store_url}\ndestinations:\n{destinations_yaml}", encoding="utf-8")
    return load_config(path)


def states(store: Store, destination: str) -> dict[str, dict[str, Any]]:
    """publish_state rows of a destination by master id."""
    with store.read() as conn:
        rows = conn.execute(
            select(publish_state).where(publish_state.c.destination == destination)
        ).mappings()
        return {r["master_id"]: dict(r) for r in rows}


def open_rejections(store: Store, destination: str) -> dict[str, str]:
    """Open publish rejections of a destination: master id → message."""
    r = rejected_records
    with store.read() as conn:
        rows = conn.execute(
            select(r.c.record_key, r.c.message).where(
                (r.c.stage == "publish") & (r.c.source == destination) & r.c.resolved_at.is_(None)
            )
        )
        return {key: message for key, message in rows}


def in_flight_rows(store: Store) -> int:
    """Rows of the tables a Singer-target push keeps while it runs (0 once settled)."""
    tables = (publish_inflight, publish_target_output, publish_target_runs)
    with store.read() as conn:
        return sum(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables)
