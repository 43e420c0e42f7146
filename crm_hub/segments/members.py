"""Set-based membership: who enters and who exits a segment, computed and applied in the database.

One segment is one transaction. The diff (entered / exited, each with its cause) is computed by
one ``INSERT ... SELECT`` into a temporary table, so it is taken from one consistent view of the
store; history rows, membership deletes and inserts are then copied from it. Nothing is loaded
into Python but counts. A ``per`` segment is evaluated in the same single pass: the membership's
segment name is computed in SQL as ``NAME:`` followed by the person's value.

A cause is ``{"reason": ..., "values": {field: value}, "before": {field: value} | null}``:
``values`` are the referenced fields now, ``before`` the values recorded at the person's
previous entry or exit of the same segment (what changed since). Reasons: ``matched``,
``no_longer_matches``, ``not_active`` (merged, erased or no profile), ``definition_changed``,
``segment_removed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from crm_hub.segments.compile import population, values_json
from crm_hub.store.raw import next_change_seq
from crm_hub.store.schema import (
    JsonDocument,
    MasterId,
    counters,
    masters,
    profiles,
    segment_history,
    segment_memberships,
    segments,
    traits,
)
from crm_hub.store.upsert import upsert

__all__ = [
    "MAX_NAME",
    "Diff",
    "Unit",
    "apply_unit",
    "changed_since",
    "existing_rows",
    "leaving",
    "member_rows",
    "remove_segment",
]

MAX_NAME = 128  # segments.name, segment_memberships.segment

# No key: a person enters only if not a member and exits only if one, so (segment, master_id)
# is unique by construction, and indexing 437 k entries of a first evaluation cost about 1 s.
_diff = Table(
    "segment_diff",
    MetaData(),
    Column("segment", String(MAX_NAME), nullable=False),
    Column("master_id", MasterId, nullable=False),
    Column("action", String(8), nullable=False),
    Column("cause", JsonDocument(), nullable=True),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class Unit:
    """One defined segment, ready to evaluate (with ``per``: all its values at once)."""

    name: str
    description: str | None
    definition_hash: str
    expr: ColumnElement[bool]
    fields: tuple[str, ...]
    since: int | None  # incremental: only masters changed after this change_seq; None: everyone
    reason: str  # why people entering now enter: matched or definition_changed
    per: Column[Any] | None = None

    @property
    def prefix(self) -> str:
        """``NAME:``, the start of every per-value segment name."""
        return f"{self.name}:"

    def segment_of(self) -> ColumnElement[Any]:
        """On :func:`crm_hub.segments.compile.population`: the segment a selected person is in."""
        if self.per is None:
            return literal(self.name, String)
        return literal(self.prefix, String) + self.per

    def selects(self) -> ColumnElement[bool]:
        """On the population: the person is in one of this unit's segments."""
        if self.per is None:
            return self.expr
        room = MAX_NAME - len(self.prefix)
        return and_(self.expr, self.per.is_not(None), func.length(self.per) <= room)

    def owns(self, name: Any) -> ColumnElement[bool]:
        """A segment-name column names one of this unit's segments."""
        if self.per is None:
            return name == self.name  # type: ignore[no-any-return]
        return name.startswith(self.prefix, autoescape=True)  # type: ignore[no-any-return]


@dataclass(slots=True)
class Diff:
    """What applying a unit did; ``members`` per segment name (per values apart)."""

    entered: int = 0
    exited: int = 0
    members: dict[str, int] = field(default_factory=dict)


def store_position(conn: Connection) -> int:
    """The store-wide change_seq committed so far (read before computing a diff)."""
    value = conn.execute(
        select(counters.c.value).where(counters.c.name == "change_seq")
    ).scalar_one_or_none()
    return int(value or 0)


def changed_since(since: int) -> Any:
    """Masters whose profile, traits or master row changed after ``since`` (a subquery)."""
    return union(
        select(profiles.c.master_id).where(profiles.c.change_seq > since),
        select(traits.c.master_id).where(traits.c.change_seq > since),
        select(masters.c.master_id).where(masters.c.change_seq > since),
    )


def _cause(
    reason: ColumnElement[Any] | str,
    fields: tuple[str, ...],
    segment: Any,
    master_id: Any,
    dialect: str,
    with_before: bool = True,
) -> ColumnElement[Any]:
    """The cause JSON: reason, the fields' values now, and their values at the last change.

    ``with_before=False`` (the segment has no history yet) spares a lookup per person.
    """
    h = segment_history.alias("previous")
    postgres = dialect == "postgresql"

    def key(text: str) -> ColumnElement[Any]:
        return cast(literal(text), String) if postgres else literal(text)

    if postgres:
        previous: Any = func.json_extract_path(h.c.cause, key("values"))
    else:
        previous = func.json(func.json_extract(h.c.cause, literal("$.values")))
    before: Any = (
        select(previous)
        .where(h.c.segment == segment, h.c.master_id == master_id)
        .order_by(h.c.id.desc())
        .limit(1)
        .scalar_subquery()
        if with_before
        else null()
    )
    why = reason if not isinstance(reason, str) else literal(reason)
    parts = [key("reason"), cast(why, String), key("values"), values_json(fields, dialect)]
    parts += [key("before"), before]
    built: ColumnElement[Any] = (
        func.json_build_object(*parts) if postgres else func.json_object(*parts)
    )
    return built


def is_member(unit: Unit) -> ColumnElement[bool]:
    """On the population: the person is already a member of the segment they are selected for."""
    return exists().where(
        segment_memberships.c.segment == unit.segment_of(),
        segment_memberships.c.master_id == profiles.c.master_id,
    )


def _entering(unit: Unit, dialect: str, with_before: bool) -> Any:
    segment = unit.segment_of()
    cause = _cause(unit.reason, unit.fields, segment, profiles.c.master_id, dialect, with_before)
    query = (
        select(segment, profiles.c.master_id, literal("entered"), cause)
        .select_from(population())
        .where(unit.selects(), ~is_member(unit))
    )
    if unit.since is not None:
        query = query.where(profiles.c.master_id.in_(changed_since(unit.since)))
    return query


def member_rows() -> Any:
    """Memberships joined to each member's profile, master and traits (all may be missing)."""
    m = segment_memberships
    return (
        m.outerjoin(profiles, profiles.c.master_id == m.c.master_id)
        .outerjoin(masters, masters.c.master_id == m.c.master_id)
        .outerjoin(traits, traits.c.master_id == m.c.master_id)
    )


def not_active() -> ColumnElement[bool]:
    """On :func:`member_rows`: the member's master is gone, merged or erased, or has no profile."""
    return or_(
        masters.c.master_id.is_(None),
        masters.c.status != "active",
        profiles.c.master_id.is_(None),
    )


def leaving(unit: Unit) -> ColumnElement[bool]:
    """On :func:`member_rows`: members of the unit's segments its condition no longer puts there."""
    m = segment_memberships
    stays = and_(unit.selects(), m.c.segment == unit.segment_of())
    return and_(unit.owns(m.c.segment), or_(not_active(), not_(stays)))


def _exiting(unit: Unit, dialect: str) -> Any:
    m = segment_memberships
    changed = unit.reason == "definition_changed"
    reason = case(
        (not_active(), "not_active"),
        else_="definition_changed" if changed else "no_longer_matches",
    )
    cause = _cause(reason, unit.fields, m.c.segment, m.c.master_id, dialect)
    query = (
        select(m.c.segment, m.c.master_id, literal("exited"), cause)
        .select_from(member_rows())
        .where(leaving(unit))
    )
    if unit.since is not None:
        query = query.where(m.c.master_id.in_(changed_since(unit.since)))
    return query


def _fresh_diff_table(conn: Connection) -> None:
    _diff.drop(conn, checkfirst=True)
    _diff.create(conn)


def _write_diff(conn: Connection, now: datetime, run_id: str) -> tuple[int, int]:
    grouped = conn.execute(select(_diff.c.action, func.count()).group_by(_diff.c.action))
    counts: dict[str, int] = {str(action): int(n) for action, n in grouped}
    entered, exited = counts.get("entered", 0), counts.get("exited", 0)
    if entered or exited:
        seq = next_change_seq(conn)  # taken late: the counter row stays locked until commit
        conn.execute(
            insert(segment_history).from_select(
                ["segment", "master_id", "action", "cause", "occurred_at", "change_seq", "run_id"],
                select(
                    _diff.c.segment,
                    _diff.c.master_id,
                    _diff.c.action,
                    _diff.c.cause,
                    literal(now, segment_history.c.occurred_at.type),
                    literal(seq),
                    literal(run_id),
                ),
            )
        )
        m = segment_memberships
        if exited:
            gone = exists().where(
                _diff.c.segment == m.c.segment,
                _diff.c.master_id == m.c.master_id,
                _diff.c.action == "exited",
            )
            conn.execute(delete(m).where(gone))
        if entered:
            conn.execute(
                insert(m).from_select(
                    ["segment", "master_id", "entered_at", "change_seq"],
                    select(
                        _diff.c.segment,
                        _diff.c.master_id,
                        literal(now, m.c.entered_at.type),
                        literal(seq),
                    ).where(_diff.c.action == "entered"),
                )
            )
    _diff.drop(conn)
    return entered, exited


def _save_rows(
    conn: Connection, unit: Unit, now: datetime, today: date, position: int
) -> dict[str, int]:
    """Upsert the ``segments`` rows of the unit; a per value nobody holds loses its row."""
    m = segment_memberships
    counted = conn.execute(
        select(m.c.segment, func.count()).where(unit.owns(m.c.segment)).group_by(m.c.segment)
    )
    members = {str(name): int(n) for name, n in counted}
    if unit.per is None:
        members.setdefault(unit.name, 0)
    else:
        conn.execute(
            delete(segments).where(
                unit.owns(segments.c.name), segments.c.name.not_in(list(members))
            )
        )
    rows = []
    for name, count in sorted(members.items()):
        description = unit.description
        if unit.per is not None:
            value = name[len(unit.prefix) :]
            description = f"{unit.description or unit.name} ({unit.per.name} = {value})"
        rows.append(
            {
                "name": name,
                "description": description,
                "definition_hash": unit.definition_hash,
                "member_count": count,
                "evaluated_at": now,
                "evaluated_change_seq": position,
                "evaluated_for": today,
            }
        )
    update = ["description", "definition_hash", "member_count", "evaluated_at"]
    update += ["evaluated_change_seq", "evaluated_for"]
    for start in range(0, len(rows), 500):
        upsert(conn, segments, rows[start : start + 500], keys=["name"], update=update)
    return members


def apply_unit(
    conn: Connection, unit: Unit, *, dialect: str, now: datetime, today: date, run_id: str
) -> Diff:
    """Compute and apply one unit's entries and exits, and update its ``segments`` rows."""
    position = store_position(conn)
    h = segment_history
    with_before = unit.since is not None or bool(  # full: skip lookups when there is no past
        conn.execute(select(exists().where(unit.owns(h.c.segment)))).scalar_one()
    )
    _fresh_diff_table(conn)
    conn.execute(
        insert(_diff).from_select(
            ["segment", "master_id", "action", "cause"],
            union_all(_entering(unit, dialect, with_before), _exiting(unit, dialect)),
        )
    )
    entered, exited = _write_diff(conn, now, run_id)
    return Diff(entered, exited, _save_rows(conn, unit, now, today, position))


def remove_segment(conn: Connection, name: str, *, dialect: str, now: datetime, run_id: str) -> int:
    """A segment no longer defined: every member exits (history kept), its row goes."""
    m = segment_memberships
    _fresh_diff_table(conn)
    cause = _cause("segment_removed", (), m.c.segment, m.c.master_id, dialect)
    conn.execute(
        insert(_diff).from_select(
            ["segment", "master_id", "action", "cause"],
            select(m.c.segment, m.c.master_id, literal("exited"), cause).where(m.c.segment == name),
        )
    )
    _, exited = _write_diff(conn, now, run_id)
    conn.execute(delete(segments).where(segments.c.name == name))
    return exited


def existing_rows(conn: Connection) -> dict[str, Any]:
    """Every ``segments`` row, by name."""
    return {row.name: row for row in conn.execute(select(segments))}
