"""The runs ledger: one row per stage run, with its counts and error."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update
from ulid import ULID

from crm_hub.store.schema import runs

__all__ = ["finish_run", "new_run_id", "record_progress", "start_run", "utcnow"]


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def new_run_id() -> str:
    """A sortable unique run id (ULID)."""
    return str(ULID())


def start_run(conn: Connection, run_id: str, stage: str, source: str | None) -> None:
    """Record that a run started."""
    conn.execute(
        runs.insert().values(
            id=run_id,
            stage=stage,
            source=source,
            status="running",
            started_at=utcnow(),
            counts={},
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    )


def record_progress(conn: Connection, run_id: str, counts: dict[str, Any]) -> None:
    """Update the counts of a running run (in the caller's transaction)."""
    conn.execute(update(runs).where(runs.c.id == run_id).values(counts=counts))


def finish_run(
    conn: Connection,
    run_id: str,
    *,
    counts: dict[str, Any],
    error: str | None = None,
) -> None:
    """Record how a run ended: succeeded without an error, failed with one."""
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(
            status="failed" if error else "succeeded",
            finished_at=utcnow(),
            counts=counts,
            error=error,
        )
    )


def last_runs(conn: Connection, stage: str) -> dict[str | None, dict[str, Any]]:
    """The latest run of ``stage`` per source (reads one row per source, not the history)."""
    latest = (
        select(runs.c.source, func.max(runs.c.started_at).label("started_at"))
        .where(runs.c.stage == stage)
        .group_by(runs.c.source)
        .subquery()
    )
    query = (
        select(runs)
        .join(
            latest,
            and_(
                runs.c.source.is_not_distinct_from(latest.c.source),
                runs.c.started_at == latest.c.started_at,
            ),
        )
        .where(runs.c.stage == stage)
        .order_by(runs.c.started_at, runs.c.id)
    )
    return {row["source"]: dict(row) for row in conn.execute(query).mappings()}
