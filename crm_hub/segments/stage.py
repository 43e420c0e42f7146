"""The segments stage: evaluate every segment of ``mappings/segments.yaml`` against the store.

Guarantees (DESIGN.md): definitions are data compiled to parameterised SQL; each segment's
entries, exits, history and ``segments`` row are written in one transaction, so a crash leaves
every segment either as it was or fully updated; running twice changes nothing the second time.

Incremental: a segment whose definition did not change, and (when it uses relative dates)
was evaluated for the same day, only looks at masters whose profile, traits or master row
changed since its last evaluation. A changed definition re-evaluates everyone; a removed one
makes its members exit. One run at a time (lease ``segments``), recorded in ``runs``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError
from crm_hub.logging import get_logger
from crm_hub.segments.compile import CompiledSegment, compile_segments
from crm_hub.segments.members import Unit, apply_unit, existing_rows, remove_segment
from crm_hub.segments.spec import LoadedSegments, load_segments
from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.stage_run import run_stage

__all__ = [
    "SegmentOutcome",
    "SegmentsResult",
    "evaluate_segments",
    "load_definitions",
    "plan_unit",
]

log = get_logger(__name__)

# PostgreSQL: after a segment moved this many people, ANALYZE the membership tables. With the
# statistics of an almost empty table, the planner walks every member of a segment instead of
# the few changed people in the next (incremental) run.
ANALYZE_AFTER = 10_000


@dataclass(slots=True)
class SegmentOutcome:
    """One segment's evaluation: how (full, incremental, removed) and what moved."""

    name: str
    mode: str
    entered: int = 0
    exited: int = 0
    members: int = 0
    seconds: float = 0.0
    values: dict[str, int] | None = None  # per segments: members per value's segment


@dataclass(slots=True)
class SegmentsResult:
    """How a segments run ended."""

    run_id: str
    status: str = "succeeded"
    segments: list[SegmentOutcome] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        """The counts as stored in the runs table."""
        return {
            "segments": len(self.segments),
            "entered": sum(s.entered for s in self.segments),
            "exited": sum(s.exited for s in self.segments),
            "removed": sum(1 for s in self.segments if s.mode == "removed"),
            "seconds": self.seconds,
        }


def load_definitions(config: HubConfig) -> LoadedSegments:
    """Load the segments file named by hub.yaml (``segments:``, default mappings/segments.yaml).

    Raises:
        ConfigError: the file is missing or broken (file:line).
    """
    return load_segments(config.resolve_path(config.segments), config.segments)


def plan_unit(segment: CompiledSegment, rows: dict[str, Any], today: date) -> Unit:
    """How to evaluate a segment now: incremental from its rows' watermark, or everyone."""
    if segment.per is None:
        mine = [rows[segment.name]] if segment.name in rows else []
    else:
        prefix = f"{segment.name}:"
        mine = [row for name, row in rows.items() if name.startswith(prefix)]
    since, reason = None, "matched"
    if any(row.definition_hash != segment.definition_hash for row in mine):
        reason = "definition_changed"
    elif mine and all(
        row.evaluated_change_seq is not None
        and not (segment.uses_today and row.evaluated_for != today)
        for row in mine
    ):
        since = min(int(row.evaluated_change_seq) for row in mine)
    return Unit(
        segment.name,
        segment.description,
        segment.definition_hash,
        segment.expr,
        segment.fields,
        since,
        reason,
        segment.per.column if segment.per is not None else None,
    )


def _owner(name: str, compiled: dict[str, CompiledSegment]) -> str | None:
    """The defined segment a stored segment row belongs to (None: no longer defined)."""
    if name in compiled and compiled[name].per is None:
        return name
    parent, sep, _ = name.partition(":")
    if sep and parent in compiled and compiled[parent].per is not None:
        return parent
    return None


def _evaluate(
    store: Store, compiled: dict[str, CompiledSegment], selected: list[str], today: date,
    everything: bool, result: SegmentsResult,
) -> None:  # fmt: skip
    with store.read() as conn:
        rows = existing_rows(conn)
    for name in selected:
        unit = plan_unit(compiled[name], rows, today)
        started = time.monotonic()
        with store.begin() as conn:
            diff = apply_unit(conn, unit, dialect=store.dialect, now=utcnow(), today=today,
                              run_id=result.run_id)  # fmt: skip
        if store.dialect == "postgresql" and diff.entered + diff.exited >= ANALYZE_AFTER:
            with store.begin() as conn:
                conn.exec_driver_sql("ANALYZE segment_memberships")
                conn.exec_driver_sql("ANALYZE segment_history")
        mode = "incremental" if unit.since is not None else "full"
        result.segments.append(
            SegmentOutcome(name, mode, diff.entered, diff.exited, sum(diff.members.values()),
                           round(time.monotonic() - started, 3),
                           diff.members if unit.per is not None else None)
        )  # fmt: skip
        log.info("segment evaluated", segment=name, mode=mode, entered=diff.entered,
                 exited=diff.exited, members=sum(diff.members.values()))  # fmt: skip
    if not everything:
        return
    for name in sorted(rows):
        if _owner(name, compiled) is None:
            started = time.monotonic()
            with store.begin() as conn:
                exited = remove_segment(conn, name, dialect=store.dialect, now=utcnow(),
                                        run_id=result.run_id)  # fmt: skip
            result.segments.append(
                SegmentOutcome(name, "removed", 0, exited, 0, round(time.monotonic() - started, 3))
            )
            log.info("segment removed", segment=name, exited=exited)


def evaluate_segments(
    store: Store,
    config: HubConfig,
    *,
    names: list[str] | None = None,
    today: date | None = None,
    wait: float = 0.0,
    definitions: LoadedSegments | None = None,
) -> SegmentsResult:
    """Evaluate segments and record who entered and who exited: the segments stage's entry point.

    Args:
        store: the store.
        config: hub.yaml (names the segments file).
        names: only these segments (default: all, and members of removed segments exit).
        today: the day relative dates count from (default: today in UTC).
        wait: seconds to wait when another segments run holds the lease.
        definitions: an already loaded segments file (default: load the one hub.yaml names).

    Raises:
        ConfigError: the file is missing or broken, or a name is not defined (nothing written).
        BusyError: another segments run is going on.
        CrmHubError: the store failed; segments committed before it are kept.
    """
    loaded = definitions if definitions is not None else load_definitions(config)
    day = today or utcnow().date()
    compiled = compile_segments(loaded, dialect=store.dialect, today=day)
    unknown = [n for n in names or [] if n not in compiled]
    if unknown:
        known = ", ".join(sorted(compiled)) or "none"
        raise ConfigError(
            f"no segment named {', '.join(unknown)} in {loaded.display} (segments: {known})"
        )
    selected = list(dict.fromkeys(names)) if names else list(compiled)

    def work(result: SegmentsResult) -> None:
        _evaluate(store, compiled, selected, day, not names, result)

    return run_stage(store, "segments", lambda run_id: SegmentsResult(run_id=run_id), work,
                     wait=wait)  # fmt: skip
