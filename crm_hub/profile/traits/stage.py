"""The traits stage: recompute the traits of the masters whose inputs changed.

Incremental by default. The watermark (``identity_state`` row ``traits_watermark``) remembers,
per canonical table and source, the highest ``raw_change_seq`` seen (the map stage writes a
source's rows in that order, so a later row always has a higher one), and the store-wide
``change_seq`` for links, masters and profiles. A run recomputes the masters reached by rows
past it. Date-relative traits (days since the last order, days to the birthday, overdue days,
churn risk, RFM recency) and the population model (RFM cut points, CLV fit) move with the day:
**the first run of each day is a full run**, which also repairs anything an incremental run
cannot see (a mapping replayed or re-mapped with old sequence numbers). Later runs that day
reuse the day's model, so a master scores the same whichever run computed it.

Only rows whose values changed are written (compared by ``values_hash``), each batch with a
new ``change_seq``; rows of masters no longer active are deleted. The watermark and model are
saved with the last batch: a crash loses nothing, and the rerun rewrites nothing already
written. One run at a time (lease ``traits``); every run has a ``runs`` row (stage
``traits``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from crm_hub.config.models import HubConfig
from crm_hub.logging import get_logger
from crm_hub.profile.traits.compute import finish, per_master
from crm_hub.profile.traits.halves import per_master_in_halves, splits
from crm_hub.profile.traits.load import load_frames, prepare_scope, read_snapshot
from crm_hub.profile.traits.write import delete_rows, row_texts, stored_hashes, write_rows
from crm_hub.store.engine import Store
from crm_hub.store.raw import next_change_seq
from crm_hub.store.runs import record_progress, utcnow
from crm_hub.store.schema import identity_state, map_watermarks
from crm_hub.store.stage_run import run_stage
from crm_hub.store.upsert import upsert

__all__ = ["WATERMARK", "MODEL", "TraitsResult", "compute_traits"]

log = get_logger(__name__)

WATERMARK = "traits_watermark"
MODEL = "traits_model"
WRITE_BATCH = 100_000
# PostgreSQL: after writing this many rows, ANALYZE traits at once. Autovacuum comes too late
# for the segments stage that runs next: planning its joins for a table it believes tiny, it
# walked every member instead of the few changed people (seconds per segment at 1 M masters).
ANALYZE_AFTER = 10_000

# Canonical table → the column naming its customer (payments also reach theirs via invoices).
_CUSTOMER_KEY = {
    "source_customers": "source_id",
    "orders": "customer_source_id",
    "invoices": "customer_source_id",
    "payments": "customer_source_id",
    "events": "customer_source_id",
}


@dataclass(slots=True)
class TraitsResult:
    """How a traits run ended."""

    run_id: str
    status: str = "succeeded"
    mode: str = "incremental"  # full, incremental
    reason: str = ""  # why full, e.g. "new day"
    masters: int = 0  # masters computed
    written: int = 0  # rows whose values changed
    unchanged: int = 0
    deleted: int = 0  # rows of masters no longer active
    clv_model: str = ""
    seconds: float = 0.0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The counts as stored in the runs table."""
        data = asdict(self)
        for key in ("run_id", "status", "error"):
            data.pop(key)
        return data


def _state(conn: Connection, name: str) -> dict[str, Any] | None:
    value = conn.execute(
        select(identity_state.c.value).where(identity_state.c.name == name)
    ).scalar()
    return value if isinstance(value, dict) else None


def _save_state(conn: Connection, name: str, value: dict[str, Any], now: datetime) -> None:
    upsert(conn, identity_state, [{"name": name, "value": value, "updated_at": now}],
           keys=["name"], update=["value", "updated_at"])  # fmt: skip


def _current_seq(conn: Connection) -> int:
    value = conn.exec_driver_sql("SELECT value FROM counters WHERE name = 'change_seq'").scalar()
    return int(value or 0)


def _maps(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(map_watermarks.c.source, map_watermarks.c.mapping_hash))
    return {str(s): str(h) for s, h in rows}


# The distinct sources of a table by index hops (one per source), not by reading every row.
_SOURCES = (
    "WITH RECURSIVE s(source) AS (SELECT MIN(source) FROM {0} UNION ALL "
    "SELECT (SELECT MIN(t.source) FROM {0} t WHERE t.source > s.source) FROM s "
    "WHERE s.source IS NOT NULL) SELECT source FROM s WHERE source IS NOT NULL"
)
# A source's highest raw_change_seq, walking the raw_change_seq index from the top (`|| ''`
# keeps both databases off the (source, ...) indexes, which would visit all its rows).
_HIGHEST = (
    "SELECT raw_change_seq FROM {0} WHERE source || '' = {1} ORDER BY raw_change_seq DESC LIMIT 1"
)


def _canonical_marks(conn: Connection) -> dict[str, dict[str, int]]:
    """Per table and source, the highest raw_change_seq (a full run's starting watermark)."""
    p = "%s" if conn.dialect.name == "postgresql" else "?"
    marks: dict[str, dict[str, int]] = {}
    for table in _CUSTOMER_KEY:
        sources = conn.exec_driver_sql(_SOURCES.format(table)).scalars().all()
        marks[table] = {
            str(source): int(
                conn.exec_driver_sql(_HIGHEST.format(table, p), (source,)).scalar_one()
            )
            for source in sources
        }
    return marks


def _changed_masters(
    conn: Connection, mark: dict[str, Any], seq_now: int
) -> tuple[set[str], dict[str, dict[str, int]]]:
    """Masters whose inputs changed after ``mark``, and the canonical watermarks moved on."""
    pg = conn.dialect.name == "postgresql"
    p = "%s" if pg else "?"
    found: set[str] = set()
    since = int(mark.get("change_seq", 0))
    for table in ("master_links", "masters", "profiles"):
        rows = conn.exec_driver_sql(
            f"SELECT master_id FROM {table} WHERE change_seq > {p} AND change_seq <= {p}",
            (since, seq_now),
        )
        found.update(str(r[0]) for r in rows)
    old: dict[str, dict[str, int]] = mark.get("canonical", {})
    marks = {table: dict(old.get(table, {})) for table in _CUSTOMER_KEY}
    for table, key in _CUSTOMER_KEY.items():
        via_invoice = (
            "LEFT JOIN invoices i ON i.source = t.source AND i.source_id = t.invoice_source_id "
            "LEFT JOIN master_links li ON li.source = i.source "
            "AND li.source_id = i.customer_source_id"
            if table == "payments"
            else ""
        )
        second = ", li.master_id" if table == "payments" else ", NULL"
        # Only the sources the table has rows of: for one without, the raw_change_seq index
        # below would walk the whole table to find nothing (the newsletter's orders).
        for source in conn.exec_driver_sql(_SOURCES.format(table)).scalars().all():
            hi = marks[table].get(source, 0)
            found_rows = conn.exec_driver_sql(
                f"SELECT t.raw_change_seq, l.master_id{second} FROM {table} t "
                f"LEFT JOIN master_links l ON l.source = t.source AND l.source_id = t.{key} "
                # `|| ''` keeps SQLite on the raw_change_seq index, off (source, source_id).
                f"{via_invoice} WHERE t.source || '' = {p} AND t.raw_change_seq > {p}",
                (source, hi),
            ).all()
            for raw_seq, master, other in found_rows:
                hi = max(hi, int(raw_seq))
                found.update(str(m) for m in (master, other) if m is not None)
            if hi:
                marks[table][source] = hi
    return found, marks


@dataclass(slots=True)
class _Plan:
    full: bool
    reason: str
    scope: set[str] | None  # None: every active master
    mark: dict[str, Any]
    model: dict[str, Any] | None


def _plan(conn: Connection, full: bool, today: date) -> _Plan:
    mark = _state(conn, WATERMARK)
    model = _state(conn, MODEL)
    seq_now = _current_seq(conn)
    maps = _maps(conn)
    reason = ""
    if full:
        reason = "asked"
    elif mark is None or model is None:
        reason = "first run"
    elif mark.get("day") != today.isoformat() or model.get("day") != today.isoformat():
        reason = "new day"
    elif any(mark.get("maps", {}).get(s) not in (None, h) for s, h in maps.items()):
        reason = "a mapping changed"
    new_mark: dict[str, Any] = {"day": today.isoformat(), "change_seq": seq_now, "maps": maps}
    if reason:
        new_mark["canonical"] = _canonical_marks(conn)
        return _Plan(True, reason, None, new_mark, None)
    assert mark is not None
    scope, canonical = _changed_masters(conn, mark, seq_now)
    new_mark["canonical"] = canonical
    return _Plan(False, "", scope, new_mark, model)


def _read_phase(
    store: Store, full: bool, today: date, result: TraitsResult
) -> tuple[_Plan, list[tuple[Any, ...]], int, list[str]]:
    """One consistent snapshot: plan, read, compute, diff. Returns the rows to write (those
    of masters without a traits row first, and how many they are) and the masters gone."""
    with read_snapshot(store) as conn:
        started = time.monotonic()
        plan = _plan(conn, full, today)
        result.mode, result.reason = ("full", plan.reason) if plan.full else ("incremental", "")
        ids = prepare_scope(conn, plan.scope)
        result.timings["plan"] = round(time.monotonic() - started, 3)
        if plan.scope is not None and not plan.scope:
            return plan, [], 0, []
        halves = splits(store, len(ids))
        if halves:
            ids, own = per_master_in_halves(store, conn, ids, today)
        else:
            own = per_master(load_frames(conn, ids, few=plan.scope is not None), today)
        result.timings["read"] = round(time.monotonic() - started, 3)  # + per-master traits
        traits, plan.model = finish(own, today, plan.model)
        result.timings["compute"] = round(time.monotonic() - started, 3)  # the model
        texts = row_texts(traits)
        # The halves left the scope tables holding the lower half: read every stored hash.
        stored = stored_hashes(conn, scoped=not halves)
        result.timings["diff"] = round(time.monotonic() - started, 3)
    result.masters = len(ids)
    result.clv_model = str(plan.model["clv"].get("model", "")) if plan.model else ""
    new: list[int] = []
    changed: list[int] = []
    for i, (master_id, values_hash) in enumerate(zip(ids, texts["values_hash"], strict=True)):
        before = stored.get(master_id)
        if before is None:
            new.append(i)
        elif before != values_hash:
            changed.append(i)
    result.unchanged = len(ids) - len(new) - len(changed)
    picked = np.asarray(new + changed, dtype=np.int64)
    columns = [texts[c].to_numpy()[picked] for c in texts.columns]
    rows = list(zip(np.asarray(ids, dtype=object)[picked], *columns, strict=True))
    gone = sorted(plan.scope - set(ids)) if plan.scope is not None else []
    return plan, rows, len(new), gone


def compute_traits(
    store: Store,
    config: HubConfig | None = None,
    *,
    full: bool = False,
    today: date | None = None,
    on_progress: Callable[[TraitsResult], None] | None = None,
    wait: float = 0.0,
) -> TraitsResult:
    """Recompute the traits of masters whose inputs changed (every master when ``full``).

    Args:
        store: the store.
        config: the hub configuration (not needed yet; kept for the flow's uniform call).
        full: recompute every active master and refit the day's model.
        today: the day date-relative traits are computed for (default: today in UTC).
        on_progress: called with the result after each phase and written batch.
        wait: seconds to wait for a running traits stage before giving up.

    Raises:
        BusyError: another traits run holds the lease.
        CrmHubError: the store failed; batches committed before it are kept.
    """
    del config
    day = today or datetime.now(UTC).date()

    def work(result: TraitsResult) -> None:
        _run(store, day, full, result, on_progress)

    return run_stage(store, "traits", lambda run_id: TraitsResult(run_id=run_id), work,
                     wait=wait)  # fmt: skip


def _run(
    store: Store,
    day: date,
    full: bool,
    result: TraitsResult,
    on_progress: Callable[[TraitsResult], None] | None,
) -> None:
    started = time.monotonic()
    plan, rows, new, gone = _read_phase(store, full, day, result)
    if on_progress is not None:
        on_progress(result)
    batches = [*_batches(rows[:new], new=True), *_batches(rows[new:], new=False)] or [([], False)]
    for number, (batch, fresh) in enumerate(batches, start=1):
        now = utcnow()
        with store.begin() as conn:
            if batch:
                seq = next_change_seq(conn)
                write_rows(conn, batch, now=now, seq=seq, run_id=result.run_id, new=fresh)
                result.written += len(batch)
            if number == len(batches):
                result.deleted = delete_rows(conn, None if plan.full else gone)
                _save_state(conn, WATERMARK, plan.mark, now)
                if plan.model is not None:
                    _save_state(conn, MODEL, plan.model, now)
            record_progress(conn, result.run_id, result.counts())
        if on_progress is not None:
            on_progress(result)
    if store.dialect == "postgresql" and result.written >= ANALYZE_AFTER:
        with store.begin() as conn:
            conn.exec_driver_sql("ANALYZE traits")
    result.timings["write"] = round(time.monotonic() - started, 3)


def _batches(rows: list[tuple[Any, ...]], *, new: bool) -> list[tuple[list[tuple[Any, ...]], bool]]:
    """``rows`` in batches of ``WRITE_BATCH``, each marked with ``new``."""
    return [(rows[i : i + WRITE_BATCH], new) for i in range(0, len(rows), WRITE_BATCH)]
