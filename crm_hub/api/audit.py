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
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.engine import Dialect
from starlette.concurrency import run_in_threadpool

from crm_hub.api.policy import Principal
from crm_hub.store import Store
from crm_hub.store.compiled import KeptConnection
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import audit_log

__all__ = ["CHECKPOINT_EVERY", "WAL_RESET_FRAMES", "AuditBatcher", "audit_rows", "record_reads"]

log = logging.getLogger(__name__)


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
    stored, and a busy process makes one transaction per batch, on a connection the batcher
    keeps (no pool checkout or PostgreSQL ping per batch).

    On SQLite that connection never checkpoints
    the WAL itself: SQLite's automatic checkpoint runs in the commit that crosses its size, and
    copying the WAL into the database (fsync included) took that commit from 0.05 ms to tens or
    hundreds, while every request of the process waited for it. Here a checkpoint runs every
    :data:`CHECKPOINT_EVERY` batches on another connection, beside the next batches, so no
    request waits for one; only when the WAL has grown to :data:`WAL_RESET_FRAMES` does one
    hold commits while it starts the WAL over (see there).

    A SQLite batch is committed on the event loop itself when the write lock is free (a WAL
    commit without fsync takes tens of microseconds, less than handing the batch to a thread and
    waking the loop again, which cost about a tenth of a busy worker's CPU); when another
    process holds the lock, the batch goes to the thread pool, which waits for it there.

    A batch starts one turn of the event loop after its first rows arrive, so the requests read
    in that turn join it: under the API benchmark, 21 rows a commit instead of 9, half the
    commits, and fewer WAL pages per row (the table's and the time index's last page are
    written once per batch).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict[str, Any]] = []
        self._committed: asyncio.Future[None] | None = None  # the batch rows join now
        self._writer: asyncio.Task[None] | None = None
        sqlite = store.dialect == "sqlite"
        self._own = KeptConnection(store.engine, self._no_autocheckpoint if sqlite else None)
        self._busy_ms = 0  # the store's lock wait, for batches committed in the thread pool
        self._batches = 0
        self._checkpoint: asyncio.Future[None] | None = None

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
        await asyncio.sleep(0)  # one loop turn: the requests being read now join this batch
        while self._rows and self._committed is not None:
            rows, committed = self._rows, self._committed
            self._rows, self._committed = [], None
            try:
                if not self._inserted_now(rows):
                    await run_in_threadpool(self._insert, rows)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
                committed.set_exception(exc)
            else:
                committed.set_result(None)
                self._after_batch()

    def _inserted_now(self, rows: list[dict[str, Any]]) -> bool:
        """SQLite: commit ``rows`` here unless another connection holds the write lock (False:
        nothing was written)."""
        if self.store.dialect != "sqlite":
            return False
        try:
            self._insert(rows, wait=False)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                return False
            raise
        return True

    def _insert(self, rows: list[dict[str, Any]], *, wait: bool = True) -> None:
        driver: Any = self._own.get().driver_connection
        try:
            if self.store.dialect == "sqlite":
                driver.execute(f"PRAGMA busy_timeout = {self._busy_ms if wait else 0}")
            _insert_on(driver, rows, self.store)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                self._own.discard()
            raise  # busy: nothing was written, the connection is sound
        except Exception:
            self._own.discard()
            raise

    def _no_autocheckpoint(self, driver: Any) -> None:
        driver.execute("PRAGMA wal_autocheckpoint = 0")
        self._busy_ms = driver.execute("PRAGMA busy_timeout").fetchone()[0]

    def _after_batch(self) -> None:
        """Every CHECKPOINT_EVERY SQLite batches, start a checkpoint unless one is running."""
        self._batches += 1
        if self.store.dialect != "sqlite" or self._batches % CHECKPOINT_EVERY:
            return
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.ensure_future(run_in_threadpool(_checkpoint, self.store))


CHECKPOINT_EVERY = 40
"""SQLite batches between two checkpoints of the audit writes' WAL (a batch adds a few dozen
pages; SQLite's own default is every 1,000 pages). About 800 rows under the API benchmark:
what a WAL reset has left to copy, holding every commit, is what came since the last one
(every 100 batches of 21 rows, resets took 160-260 ms; every 40, 10-140 ms)."""

WAL_RESET_FRAMES = 65_536
"""WAL frames (256 MB of 4 KB pages) past which a checkpoint also starts the log over. SQLite
reuses the WAL from its start only after a checkpoint that caught up with the last commit; a
passive one beside steady audit commits never does, and the file grew by about 45 MB/s under
the API benchmark, without end. A reset holds every audit commit, so every request of both
workers, while it copies the last frames and syncs the files; each one makes the fifty
requests then in flight slow, whatever it lasts, so fewer, larger resets leave fewer slow
requests. Under the benchmark's mixed phase, at 64 MB: a reset every 1.1 s taking 50-120 ms,
and 40 % of the requests slower than 20 ms were caught in one; at 256 MB: every 4 s, 10-140 ms."""

RESET_WAIT_MS = 200
"""How long a reset waits for the write lock and for readers of older frames, holding audit
commits meanwhile; when a long reader is still there, the next checkpoint tries again."""


def _checkpoint(store: Store) -> None:
    """Copy what the WAL holds into the database, without waiting for readers or writers
    (PASSIVE); once the WAL holds :data:`WAL_RESET_FRAMES`, also start it over (RESTART). A
    failure is logged, and the next checkpoint tries again."""
    try:
        raw = store.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            _, frames, _ = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= WAL_RESET_FRAMES:
                _reset_wal(driver)
        finally:
            raw.close()
    except Exception:  # noqa: BLE001 - a checkpoint missed is caught up by the next
        log.warning("audit log: WAL checkpoint failed", exc_info=True)


def _reset_wal(driver: Any) -> None:
    """Checkpoint all of the WAL so that the next commit writes it from its start, waiting at
    most :data:`RESET_WAIT_MS`. The file keeps its size (RESTART, not TRUNCATE): the reset then
    frees no disk blocks and later commits overwrite the file rather than grow it (beside steady
    commits in a stand-alone test, truncating resets of 256 MB took 190-220 ms, restarting ones
    20-200 ms)."""
    (busy_ms,) = driver.execute("PRAGMA busy_timeout").fetchone()
    driver.execute(f"PRAGMA busy_timeout = {RESET_WAIT_MS}")
    try:
        (blocked, _, _) = driver.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    finally:
        driver.execute(f"PRAGMA busy_timeout = {busy_ms}")
    if blocked:
        log.info("audit log: WAL reset waited %d ms for a reader; trying later", RESET_WAIT_MS)


def _insert(store: Store, rows: list[dict[str, Any]]) -> None:
    """One transaction of audit rows on a pooled driver connection."""
    raw = store.engine.raw_connection()
    try:
        _insert_on(raw.driver_connection, rows, store)
    finally:
        raw.close()  # back to the pool


def _insert_on(driver: Any, rows: list[dict[str, Any]], store: Store) -> None:
    """One transaction of audit rows on ``driver`` (a DB-API connection), with the statement
    compiled once: SQLAlchemy's transaction and statement handling cost as much as SQLite's
    commit."""
    insert = _compiled_insert(store.engine.dialect)
    values = [insert.values(row) for row in rows]
    sqlite = store.dialect == "sqlite"
    cursor = driver.cursor()
    try:
        if sqlite:  # an autocommit driver connection: the engine's BEGIN, as store.begin()
            cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(insert.sql, values)
        driver.commit()
    except BaseException:
        if not sqlite or driver.in_transaction:
            driver.rollback()
        raise
    finally:
        cursor.close()


_COLUMNS = ("occurred_at", "token_id", "role", "branch", "action", "path", "master_id", "status")


@dataclass(frozen=True, slots=True)
class _Insert:
    """The audit insert as driver SQL, with each column's conversion of a value for the driver."""

    sql: str
    names: tuple[str, ...]  # the bind order of a positional driver (SQLite); () for named
    converters: tuple[Callable[[Any], Any] | None, ...]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        pairs = zip(_COLUMNS, self.converters, strict=True)
        bound = [row.get(n) if f is None else f(row.get(n)) for n, f in pairs]
        return tuple(bound) if self.names else dict(zip(_COLUMNS, bound, strict=True))


@lru_cache(maxsize=8)
def _compiled_insert(dialect: Dialect) -> _Insert:
    statement = insert(audit_log).values({name: bindparam(name) for name in _COLUMNS})
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ()) if compiled.positional else ()
    if names and names != _COLUMNS:
        raise AssertionError(f"audit insert binds {names}, expected {_COLUMNS}")
    converters = tuple(audit_log.c[n].type.bind_processor(dialect) for n in _COLUMNS)
    return _Insert(compiled.string, names, converters)


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
