"""Tiny inline people for the segments tests: masters, profiles and traits written directly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_hub.config.models import HubConfig
from crm_hub.segments.spec import LoadedSegments, load_segments
from crm_hub.store import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import masters, profiles, segment_history, traits
from crm_hub.store.upsert import upsert

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

TRAIT_DEFAULTS: dict[str, Any] = {"orders_count": 0, "visits_count": 0}


def put(store: Store, master_id: str, *, status: str = "active", name: str | None = None,
        email: str | None = None, profile: dict[str, Any] | None = None,
        **trait_values: Any) -> None:  # fmt: skip
    """Write (or overwrite) one person: master row, profile and traits, with a new change_seq."""
    with store.begin() as conn:
        seq = next_change_seq(conn)
        upsert(
            conn, masters,
            [{"master_id": master_id, "status": status, "member_count": 1, "created_at": NOW,
              "updated_at": NOW, "change_seq": seq}],
            keys=["master_id"], update=["status", "change_seq"],
        )  # fmt: skip
        prof = {"master_id": master_id, "full_name": name or master_id, "email": email,
                "updated_at": NOW, "change_seq": seq, **(profile or {})}  # fmt: skip
        upsert(
            conn, profiles, [prof], keys=["master_id"], update=[k for k in prof if k != "master_id"]
        )
        row = {"master_id": master_id, **TRAIT_DEFAULTS, **trait_values, "computed_at": NOW,
               "change_seq": seq}  # fmt: skip
        upsert(conn, traits, [row], keys=["master_id"], update=[k for k in row if k != "master_id"])


@pytest.fixture
def segments_file(tmp_path: Path) -> Callable[[str], LoadedSegments]:
    """Write a segments.yaml from text and load it."""

    def write(text: str) -> LoadedSegments:
        path = tmp_path / "segments.yaml"
        path.write_text(text, encoding="utf-8")
        return load_segments(path)

    return write


@pytest.fixture
def hub(tmp_path: Path) -> HubConfig:
    """A hub.yaml model whose segments file is tmp_path/segments.yaml."""
    return HubConfig(base_dir=tmp_path, segments="segments.yaml")


def history(store: Store, segment: str | None = None) -> list[dict[str, Any]]:
    """Every history row, oldest first."""
    query = select(segment_history).order_by(segment_history.c.id)
    if segment is not None:
        query = query.where(segment_history.c.segment == segment)
    with store.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
