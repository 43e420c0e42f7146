"""Leases: one holder at a time for a piece of work (e.g. ``sync:pos_export``).

A lease row names its holder (run id, host, pid) and expires unless renewed. A holder that died
is detected two ways: on the same host its pid is gone (taken over at once), elsewhere its lease
expired (taken over after the TTL). A background heartbeat renews the lease while work runs, so
a long quiet step (a slow API) does not lose it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from crm_hub.errors import BusyError
from crm_hub.logging import get_logger
from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import leases

__all__ = ["hold_lease", "lease_holders"]

log = get_logger(__name__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_is_dead(row: Any, now: datetime, host: str) -> bool:
    if row.expires_at <= now:
        return True
    return bool(row.host == host and row.pid != os.getpid() and not _pid_alive(row.pid))


def _try_acquire(store: Store, name: str, holder: str, ttl: float) -> Any | None:
    """Take the lease if free; returns None on success, else the current holder's row."""
    now, host = utcnow(), socket.gethostname()
    values = {
        "holder": holder,
        "host": host,
        "pid": os.getpid(),
        "acquired_at": now,
        "expires_at": now + timedelta(seconds=ttl),
    }
    try:
        with store.begin() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).first()
            if row is None:
                conn.execute(leases.insert().values(name=name, **values))
                return None
            if not _holder_is_dead(row, now, host):
                return row
            log.warning("taking over a dead lease", lease=name, dead_holder=row.holder)
            conn.execute(update(leases).where(leases.c.name == name).values(**values))
            return None
    except IntegrityError:  # another process inserted it between our read and write
        with store.read() as conn:
            return conn.execute(select(leases).where(leases.c.name == name)).first()


def _renew(store: Store, name: str, holder: str, ttl: float) -> bool:
    with store.begin() as conn:
        result = conn.execute(
            update(leases)
            .where(and_(leases.c.name == name, leases.c.holder == holder))
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
        return result.rowcount == 1


def _release(store: Store, name: str, holder: str) -> None:
    with store.begin() as conn:
        conn.execute(delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder)))


class _Heartbeat(threading.Thread):
    def __init__(self, store: Store, name: str, holder: str, ttl: float) -> None:
        super().__init__(name=f"lease-heartbeat-{name}", daemon=True)
        self.store, self.lease, self.holder, self.ttl = store, name, holder, ttl
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                if not _renew(self.store, self.lease, self.holder, self.ttl):
                    self.lost = True
                    log.error("lease lost to another holder", lease=self.lease)
                    return
            except Exception as exc:  # a blip must not kill the work; the TTL covers us
                log.warning("lease renewal failed", lease=self.lease, error=str(exc))


@contextmanager
def hold_lease(
    store: Store, name: str, holder: str, *, ttl: float = 60.0, wait: float = 0.0
) -> Iterator[None]:
    """Hold lease ``name`` for the duration of the block.

    Args:
        store: the store holding the lease table.
        name: what is leased, e.g. ``sync:pos_export``.
        holder: the run id taking it.
        ttl: seconds after which an unrenewed lease counts as dead.
        wait: seconds to wait for a busy lease before giving up (0: fail at once).

    Raises:
        BusyError: someone else holds it (message names who, where and since when).
    """
    deadline = time.monotonic() + wait
    while (row := _try_acquire(store, name, holder, ttl)) is not None:
        if time.monotonic() >= deadline:
            raise BusyError(
                f"{name} is already running (run {row.holder}, pid {row.pid} on {row.host}, "
                f"since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish, "
                "or pass --wait SECONDS"
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    heartbeat = _Heartbeat(store, name, holder, ttl)
    heartbeat.start()
    try:
        yield
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        _release(store, name, holder)


def lease_holders(store: Store) -> dict[str, dict[str, Any]]:
    """Every live lease, by name."""
    with store.read() as conn:
        rows = conn.execute(select(leases).where(leases.c.expires_at > utcnow())).mappings()
        return {row["name"]: dict(row) for row in rows}
