"""One way to run a stage: its lease, its runs row, its timing, and failure recording.

Every stage entry point calls `run_stage` with the work to do; the work fills in a result object
(a dataclass with ``seconds`` and ``counts()``). A run whose process died is marked failed by the
next run of the same stage and source.

A stage that writes in one long transaction calls `keep_lease` as that transaction's last
statement: on SQLite the lease heartbeat cannot write while the transaction holds the write lock,
so the renewal commits with the work (nobody sees the lease lapse), and a run that lost its lease
meanwhile rolls its work back instead of committing over the new holder's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, and_, update

from crm_hub.errors import BusyError, CrmHubError
from crm_hub.logging import bind, get_logger
from crm_hub.settings import get_settings
from crm_hub.store.engine import Store
from crm_hub.store.leases import hold_lease
from crm_hub.store.runs import finish_run, new_run_id, start_run, utcnow
from crm_hub.store.schema import leases, runs

__all__ = ["StageResult", "describe", "keep_lease", "run_stage"]

log = get_logger(__name__)


class StageResult(Protocol):
    """What `run_stage` needs of a stage's result."""

    seconds: float

    def counts(self) -> dict[str, object]:
        """The counts kept in the runs table."""
        ...


R = TypeVar("R", bound=StageResult)


def describe(exc: BaseException) -> str:
    """The message a person reads for a failure: ours as written, others with their type."""
    return exc.message if isinstance(exc, CrmHubError) else f"{type(exc).__name__}: {exc}"


def _lease_name(stage: str, source: str | None) -> str:
    return stage if source is None else f"{stage}:{source}"


def keep_lease(conn: Connection, stage: str, run_id: str, *, source: str | None = None) -> None:
    """Renew run ``run_id``'s lease inside the caller's write transaction, or fail it.

    Raises:
        BusyError: the lease is no longer this run's (it lapsed and another run took it over);
            the caller's transaction rolls back.
    """
    name = _lease_name(stage, source)
    ttl = get_settings().sync.lease_ttl_seconds
    renewed = conn.execute(
        update(leases)
        .where(and_(leases.c.name == name, leases.c.holder == run_id))
        .values(expires_at=utcnow() + timedelta(seconds=ttl))
    )
    if renewed.rowcount != 1:
        raise BusyError(f"{name}: run {run_id} lost its lease to another run; its work is not "
                        "saved, the other run's stands")  # fmt: skip


def _close_dead_runs(store: Store, stage: str, source: str | None) -> None:
    """Runs of this stage still 'running' belong to a dead process: we hold the lease."""
    same_source = runs.c.source.is_(None) if source is None else runs.c.source == source
    with store.begin() as conn:
        conn.execute(
            update(runs)
            .where(and_(runs.c.stage == stage, same_source, runs.c.status == "running"))
            .values(status="failed", finished_at=utcnow(), error="interrupted: the process died")
        )


def run_stage(
    store: Store,
    stage: str,
    new_result: Callable[[str], R],
    work: Callable[[R], None],
    *,
    source: str | None = None,
    wait: float = 0.0,
) -> R:
    """Run ``work`` under the lease ``stage`` (or ``stage:source``) with a runs row.

    Args:
        store: the store.
        stage: the stage name (runs.stage, the lease name).
        new_result: makes the empty result from the run id.
        work: does the stage's work, filling in the result.
        source: the source the run is about, if any.
        wait: seconds to wait for the lease (0: fail at once with BusyError).

    Raises:
        BusyError: another run holds the lease.
        Exception: whatever ``work`` raised, after the run was recorded as failed.
    """
    run_id = new_run_id()
    bind(run_id=run_id, stage=stage, source=source)
    lease = _lease_name(stage, source)
    ttl = get_settings().sync.lease_ttl_seconds
    with hold_lease(store, lease, run_id, ttl=ttl, wait=wait):
        _close_dead_runs(store, stage, source)
        with store.begin() as conn:
            start_run(conn, run_id, stage, source)
        result, started = new_result(run_id), time.monotonic()
        try:
            work(result)
        except Exception as exc:
            error = describe(exc)
            if hasattr(result, "status"):
                result.status = "failed"
            if hasattr(result, "error"):
                result.error = error
            result.seconds = round(time.monotonic() - started, 3)
            with store.begin() as conn:
                finish_run(conn, run_id, counts=result.counts(), error=error)
            log.error(f"{stage} failed", error=error)
            raise
        result.seconds = round(time.monotonic() - started, 3)
        with store.begin() as conn:  # a stage may report a failure in its result, not raise
            finish_run(conn, run_id, counts=result.counts(), error=getattr(result, "error", None))
        fields: dict[str, Any] = {
            k: v for k, v in result.counts().items() if isinstance(v, int | float | str)
        }
        log.info(f"{stage} finished", **fields)
        return result
