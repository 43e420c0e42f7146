"""A Singer-target push in flight, as rows of the store (migration 0010): the recorder process
(``publish_target_runs``), each batch sent (``publish_inflight``, written before the target gets
it) and the target's stdout lines (``publish_target_output``, written by the recorder). The hub
follows a push through these rows and the next push settles a killed one from them.

A recorder beats (``heartbeat_at``, migration 0011) every :data:`HEARTBEAT_SECONDS` while its
target runs: a hub on another host cannot look at its process, so it takes a recorder silent for
:data:`SILENT_LIMIT_SECONDS` as dead. On PostgreSQL beats and their age use the database's clock,
so two machines whose clocks differ still agree; a SQLite store has one host.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import RowMapping

from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import publish_inflight, publish_target_output, publish_target_runs

if TYPE_CHECKING:  # the recorder imports this module: it needs neither (start-up time)
    from crm_hub.publish.payload import Outgoing

__all__ = [
    "HEARTBEAT_SECONDS",
    "SILENT_LIMIT_SECONDS",
    "STORE_ENV",
    "beat",
    "forget_runs",
    "read_output",
    "read_runs",
    "read_sent",
    "recorder_command",
    "register",
    "save_batch",
    "silent_seconds",
    "still_running",
]

STORE_ENV = "CRM_HUB_RECORDER_STORE"  # how the recorder gets the store URL (not argv: visible)
HEARTBEAT_SECONDS = 5.0
# Generous: three beats missed, plus room for a slow store or a loaded machine.
SILENT_LIMIT_SECONDS = 3 * HEARTBEAT_SECONDS + 15


def recorder_command(destination: str, run_id: str, workdir: Path, target: list[str]) -> list[str]:
    """The command line of a recorder running ``target`` (it names the run: liveness checks)."""
    return [sys.executable, "-m", "crm_hub.publish.recorder", "--destination", destination,
            "--run-id", run_id, "--workdir", str(workdir), "--", *target]  # fmt: skip


def register(store: Store, destination: str, run_id: str, workdir: Path, pid: int,
             **extra: Any) -> None:  # fmt: skip
    """Record (or complete) the ``publish_target_runs`` row of a recorder (hub and recorder both
    call this, so the row exists as soon as either got that far)."""
    t = publish_target_runs
    known = {"host": socket.gethostname(), "pid": pid, "workdir": str(workdir), **extra}
    with store.begin() as conn:
        this_run = (t.c.destination == destination) & (t.c.run_id == run_id)
        if conn.execute(update(t).where(this_run).values(known)).rowcount:
            return  # the usual case for the recorder: the hub registered it as it started
        from crm_hub.store.upsert import upsert

        row = {"destination": destination, "run_id": run_id, "started_at": utcnow(), **known}
        upsert(conn, t, [row], keys=["destination", "run_id"], update=list(known))


def save_batch(store: Store, destination: str, run_id: str, number: int,
               batch: list[Outgoing]) -> None:  # fmt: skip
    """Keep batch ``number`` before any of it goes to the target (one statement)."""
    rows = [{"destination": destination, "run_id": run_id, "master_id": item.master_id,
             "batch": number, "action": item.action, "payload_hash": item.payload_hash,
             "payload": item.payload, "record": item.record} for item in batch]  # fmt: skip
    with store.begin() as conn:
        conn.execute(publish_inflight.insert(), rows)


def read_runs(store: Store, destination: str, run_id: str | None = None) -> list[RowMapping]:
    """The recorders of a destination (or of one run) whose rows are still in the store."""
    t = publish_target_runs
    where = t.c.destination == destination
    if run_id is not None:
        where &= t.c.run_id == run_id
    with store.read() as conn:
        return list(conn.execute(select(t).where(where)).mappings())


def read_sent(store: Store, destination: str, run_id: str) -> dict[str, tuple[Outgoing, int]]:
    """What a push sent: master id → the record and its batch number."""
    from crm_hub.publish.payload import Outgoing

    t = publish_inflight
    with store.read() as conn:
        rows = conn.execute(
            select(t).where((t.c.destination == destination) & (t.c.run_id == run_id))
        ).mappings()
        return {r["master_id"]: (Outgoing(r["master_id"], r["action"], r["record"],
                                          r["payload_hash"], r["payload"]), r["batch"])
                for r in rows}  # fmt: skip


def read_output(store: Store, destination: str, run_id: str, after: int = 0) -> list[Any]:
    """The target's stdout lines past ``after``, as ``(seq, line)`` in order."""
    t = publish_target_output
    with store.read() as conn:
        return list(
            conn.execute(
                select(t.c.seq, t.c.line)
                .where((t.c.destination == destination) & (t.c.run_id == run_id)
                       & (t.c.seq > after))
                .order_by(t.c.seq)
            ).tuples()
        )  # fmt: skip


def forget_runs(store: Store, destination: str, run_id: str | None = None) -> None:
    """Delete the in-flight rows of a destination (of one run, or of every run)."""
    with store.begin() as conn:
        for table in (publish_inflight, publish_target_output, publish_target_runs):
            where = table.c.destination == destination
            if run_id is not None:
                where &= table.c.run_id == run_id
            conn.execute(delete(table).where(where))


def beat(store: Store, destination: str, run_id: str) -> None:
    """Say that the recorder of ``run_id`` is alive (``heartbeat_at`` := the store's now)."""
    t = publish_target_runs
    with store.begin() as conn:
        conn.execute(
            update(t)
            .where((t.c.destination == destination) & (t.c.run_id == run_id))
            .values(heartbeat_at=_store_clock(store))
        )


def silent_seconds(store: Store, run: RowMapping) -> float:
    """How long the recorder of ``run`` has not beaten (since it started, if it never did)."""
    last: datetime = run["heartbeat_at"] or run["started_at"]
    return (_store_now(store) - last).total_seconds()


def still_running(store: Store, run: RowMapping) -> bool:
    """Whether the recorder of ``run`` (a ``publish_target_runs`` row) or its target still runs.

    On this host its processes are looked at; on another host nothing can be, so it counts as
    running until it records its end or stays silent for :data:`SILENT_LIMIT_SECONDS`.
    """
    if run["finished_at"] is not None:
        return False
    if run["host"] != socket.gethostname():
        return silent_seconds(store, run) <= SILENT_LIMIT_SECONDS
    return _is_ours(run["pid"], run["run_id"]) or (
        run["target_pid"] is not None and _is_ours(run["target_pid"], run["workdir"])
    )


def _store_clock(store: Store) -> Any:
    """Now for a column: the database's clock on PostgreSQL (shared by every host), else ours."""
    return func.now() if store.dialect == "postgresql" else utcnow()


def _store_now(store: Store) -> datetime:
    if store.dialect != "postgresql":
        return utcnow()
    with store.read() as conn:
        now: datetime = conn.execute(select(func.now())).scalar_one()
    return now


def _is_ours(pid: int, marker: str) -> bool:
    """Whether ``pid`` lives and its command line holds ``marker`` (not a recycled pid)."""
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if sys.platform.startswith("linux"):
            return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
