"""The audit log: one row per customer whose personal data a request read (or tried to).

Rows say who (token id, role, branch), what (action, path without the query string: a search
term is itself personal data), which customer and the answer's status. A search that returns
five customers writes five rows; a denied read writes one row with the id asked for, so probing
shows up too.

Writes are grouped: concurrent requests of one process hand their rows to whichever of them
holds the write turn, which commits everyone's rows in one transaction. Each request still
returns only after its own rows are committed, but a busy server makes one audit transaction
where it would make dozens, and SQLite's single write lock is fought over far less.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from starlette.concurrency import run_in_threadpool

from crm_hub.api.policy import Principal
from crm_hub.store import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import audit_log

__all__ = ["AuditBatcher", "audit_rows", "record_reads"]


def record_reads(
    store: Store,
    principal: Principal,
    *,
    action: str,
    path: str,
    status: int,
    master_ids: Iterable[str | None],
) -> None:
    """Write one audit row per master id (None: a read not about one customer)."""
    rows = audit_rows(principal, action=action, path=path, status=status, master_ids=master_ids)
    if not rows:
        return
    with _lock:
        group = _groups.get(store)
        if group is None:
            group = _groups[store] = _GroupCommit()
    group.write(store, rows)


def audit_rows(
    principal: Principal,
    *,
    action: str,
    path: str,
    status: int,
    master_ids: Iterable[str | None],
) -> list[dict[str, Any]]:
    """The audit rows of one request: one per master id (None: not about one customer)."""
    now = utcnow()
    return [
        {
            "occurred_at": now,
            "token_id": principal.token_id,
            "role": principal.role,
            "branch": principal.branch,
            "action": action,
            "path": path[:2000],
            "master_id": master_id,
            "status": status,
        }
        for master_id in dict.fromkeys(master_ids)
    ]


class AuditBatcher:
    """Group commit for requests answered on the event loop (the fast lookups).

    Rows of requests arriving while a batch is being written wait for the next one; each request
    awaits the commit of the batch holding its rows, so it still answers only after they are
    stored, and a busy process makes one thread-pool trip and one transaction per batch.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict[str, Any]] = []
        self._committed: asyncio.Future[None] | None = None  # the batch rows join now
        self._writer: asyncio.Task[None] | None = None

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed; raise what their batch's commit raised."""
        self._rows.extend(rows)
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
        committed = self._committed
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        await asyncio.shield(committed)

    async def _write_batches(self) -> None:
        while self._rows and self._committed is not None:
            rows, committed = self._rows, self._committed
            self._rows, self._committed = [], None
            try:
                await run_in_threadpool(_insert, self.store, rows)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
                committed.set_exception(exc)
            else:
                committed.set_result(None)


def _insert(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.begin() as conn:
        conn.execute(audit_log.insert(), rows)


class _GroupCommit:
    """Rows waiting to be written, and whose turn it is to write them (one store)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below
        self._turn = threading.Lock()  # held by the request writing a batch
        self._pending: list[dict[str, Any]] = []
        self._batch = 0  # number of the batch rows join now
        self._failed: dict[int, BaseException] = {}

    def write(self, store: Store, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are committed (by this thread or another); raise if they fail."""
        with self._lock:
            self._pending.extend(rows)
            mine = self._batch
        with self._turn:
            with self._lock:
                if mine < self._batch:  # an earlier writer took our rows and has finished
                    failure = self._failed.get(mine)
                    if failure is not None:
                        raise failure
                    return
                batch, self._pending = self._pending, []
                self._batch += 1
            try:
                _insert(store, batch)
            except BaseException as exc:
                with self._lock:
                    self._failed = {k: v for k, v in self._failed.items() if k > mine - 100}
                    self._failed[mine] = exc
                raise


_lock = threading.Lock()
_groups: weakref.WeakKeyDictionary[Store, _GroupCommit] = weakref.WeakKeyDictionary()
