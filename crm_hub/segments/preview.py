"""Preview a segment: how many it selects, a sample, and who would enter or exit. Writes nothing.

No lease, no runs row, no temporary table: read-only queries in one read transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError
from crm_hub.segments.compile import compile_segments, population
from crm_hub.segments.members import Unit, existing_rows, is_member, leaving, member_rows
from crm_hub.segments.spec import LoadedSegments
from crm_hub.segments.stage import load_definitions, plan_unit
from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import profiles, segment_memberships

__all__ = ["SegmentPreview", "preview_segment"]


@dataclass(slots=True)
class SegmentPreview:
    """What evaluating a segment now would give, beside its current membership."""

    name: str
    members: int  # who the definition selects now
    current: int  # members recorded in the store
    would_enter: int
    would_exit: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    entering: list[dict[str, Any]] = field(default_factory=list)
    exiting: list[dict[str, Any]] = field(default_factory=list)


People = list[dict[str, Any]]


def _grouped_count(conn: Connection, query: Any) -> dict[str, int]:
    sub = query.subquery()
    rows = conn.execute(select(sub.c.segment, func.count()).group_by(sub.c.segment))
    return {str(name): int(n) for name, n in rows}


def _samples(
    conn: Connection, query: Any, order: Any, size: int
) -> dict[str, list[dict[str, Any]]]:
    """The first ``size`` people of each segment (one query, a window per segment)."""
    if size == 0:
        return {}
    rank = func.row_number().over(partition_by=query.selected_columns.segment, order_by=order)
    sub = query.add_columns(rank.label("rank")).subquery()
    rows = conn.execute(
        select(sub.c.segment, sub.c.master_id, sub.c.full_name, sub.c.email)
        .where(sub.c.rank <= size)
        .order_by(sub.c.segment, sub.c.master_id)
    ).mappings()
    found: dict[str, People] = {}
    for row in rows:
        person = {k: row[k] for k in ("master_id", "full_name", "email")}
        found.setdefault(str(row["segment"]), []).append(person)
    return found


def _preview(conn: Connection, unit: Unit, size: int) -> list[SegmentPreview]:
    m = segment_memberships
    person = (profiles.c.master_id, profiles.c.full_name, profiles.c.email)
    selected = (
        select(unit.segment_of().label("segment"), *person)
        .select_from(population())
        .where(unit.selects())
    )
    entering = selected.where(~is_member(unit))
    exiting = (
        select(m.c.segment, m.c.master_id, profiles.c.full_name, profiles.c.email)
        .select_from(member_rows())
        .where(leaving(unit))
    )
    current = select(m.c.segment, m.c.master_id).where(unit.owns(m.c.segment))
    counts = [_grouped_count(conn, q) for q in (selected, current, entering, exiting)]
    samples = [
        _samples(conn, selected, profiles.c.master_id, size),
        _samples(conn, entering, profiles.c.master_id, size),
        _samples(conn, exiting, m.c.master_id, size),
    ]
    names = sorted(set().union(*counts)) or [unit.name if unit.per is None else unit.prefix]
    return [
        SegmentPreview(
            name, counts[0].get(name, 0), counts[1].get(name, 0), counts[2].get(name, 0),
            counts[3].get(name, 0), samples[0].get(name, []), samples[1].get(name, []),
            samples[2].get(name, []),
        )
        for name in names
        if unit.per is None or name != unit.prefix
    ]  # fmt: skip


def preview_segment(
    store: Store,
    config: HubConfig,
    name: str,
    *,
    sample: int = 10,
    today: date | None = None,
    definitions: LoadedSegments | None = None,
) -> list[SegmentPreview]:
    """Preview segment ``name`` (one preview per value when it is split with ``per``; none when
    such a segment selects nobody).

    Raises:
        ConfigError: the file is broken or ``name`` is not defined.
    """
    loaded = definitions if definitions is not None else load_definitions(config)
    day = today or utcnow().date()
    compiled = compile_segments(loaded, dialect=store.dialect, today=day)
    if name not in compiled:
        known = ", ".join(sorted(compiled)) or "none"
        raise ConfigError(f"no segment named {name} in {loaded.display} (segments: {known})")
    with store.read() as conn:
        unit = plan_unit(compiled[name], existing_rows(conn), day)
        return _preview(conn, unit, sample)
