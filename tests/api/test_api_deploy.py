"""Serving as a deployment does: uvicorn workers from the ASGI factory, grouped audit writes,
one token lookup for a burst of requests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Text, cast, create_engine, func, select

from crm_hub.api import audit, deps
from crm_hub.api.asgi import http_protocol
from crm_hub.api.audit import AuditBatcher, _insert, audit_rows, record_reads
from crm_hub.api.deps import ApiContext, principal_of
from crm_hub.api.policy import Principal
from crm_hub.api.tokens import authenticate, create_token
from crm_hub.store import Store, open_store
from crm_hub.store.schema import audit_log
from tests.live_server import free_port, wait_healthy


@pytest.mark.slow
def test_uvicorn_workers_from_the_factory_answer_keep_alive_requests_without_nagle_delay(
    tmp_path: Path,
) -> None:
    database = tmp_path / "store.db"
    store = open_store(f"sqlite:///{database}")
    secret = create_token(store, name="t", role="admin").secret
    store.dispose()
    (tmp_path / "hub.yaml").write_text(f"store: sqlite:///{database}\n", encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "crm_hub.api.asgi:app_from_config",
         "--workers", "2", "--http", http_protocol(),
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "CRM_HUB_CONFIG": str(tmp_path / "hub.yaml")},
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, "uvicorn workers")
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers) as client:  # one keep-alive connection
            timings = []
            for _ in range(10):
                started = time.perf_counter()
                assert client.get("/traits").status_code == 200
                timings.append((time.perf_counter() - started) * 1000)
        # With Nagle on, every request after the first waits for a delayed ACK (>= 40 ms).
        assert min(timings[1:]) < 30, timings
    finally:
        server.terminate()
        server.wait(30)


def test_concurrent_audit_writes_land_once_each(store: Store) -> None:
    principal = Principal("tok", "till", "staff", "north")
    failures: list[BaseException] = []

    def read(n: int) -> None:
        try:
            for k in range(20):
                record_reads(store, principal, action="read", path="/customers/x", status=200,
                             master_ids=[f"m_{n:02d}{k:02d}"])  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with store.read() as conn:
        rows = conn.execute(
            select(audit_log.c.master_id, func.count()).group_by(audit_log.c.master_id)
        )
        counts = dict(rows.all())
    assert len(counts) == 12 * 20 and set(counts.values()) == {1}


def test_batched_audit_writes_are_committed_before_they_return(store: Store) -> None:
    principal = Principal("tok", "till", "staff", "north")
    batcher = AuditBatcher(store)

    def stored(master_id: str) -> int:
        with store.read() as conn:
            query = select(func.count()).select_from(audit_log)
            return int(conn.execute(query.where(audit_log.c.master_id == master_id)).scalar_one())

    async def read(n: int) -> list[int]:
        seen = []
        for k in range(10):
            rows = audit_rows(principal, action="read", path="/customers/x", status=200,
                              master_ids=[f"m_{n:02d}{k:02d}"])  # fmt: skip
            await batcher.write(rows)
            seen.append(stored(f"m_{n:02d}{k:02d}"))
        return seen

    async def clients() -> list[list[int]]:
        return await asyncio.gather(*(read(n) for n in range(12)))

    assert asyncio.run(clients()) == [[1] * 10] * 12


def test_rows_arriving_in_the_next_loop_turn_join_the_batch(store: Store) -> None:
    principal = Principal("tok", "till", "staff", "north")
    batcher = AuditBatcher(store)

    def rows(master_id: str) -> list[dict[str, Any]]:
        return audit_rows(principal, action="read", path="/customers/x", status=200,
                          master_ids=[master_id])  # fmt: skip

    async def one_turn_apart() -> None:
        first = asyncio.ensure_future(batcher.write(rows("m_1")))
        await asyncio.sleep(0)  # the first request has handed its rows in
        await asyncio.gather(first, batcher.write(rows("m_2")))

    asyncio.run(one_turn_apart())
    assert batcher._batches == 1
    assert _stored_master_ids(store) == ["m_1", "m_2"]


def test_a_failed_audit_batch_fails_every_request_in_it(store: Store) -> None:
    batcher = AuditBatcher(store)

    async def two_bad_writes() -> list[BaseException | None]:
        bad = [{"master_id": "m_x"}]  # no occurred_at, token, action...: NOT NULL fails
        return await asyncio.gather(batcher.write(bad), batcher.write(bad), return_exceptions=True)

    failures = asyncio.run(two_bad_writes())
    driver_error = store.engine.dialect.loaded_dbapi.IntegrityError
    assert isinstance(failures[0], driver_error) and failures[1] is failures[0]


def _counted_lookups(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    """Token lookups made (each slow enough for a burst to arrive while it runs)."""
    calls: list[str] = []

    def lookup(store: Store, secret: str) -> Principal | None:
        calls.append(secret)
        time.sleep(0.05)
        if fail:
            raise OSError("store gone")
        return authenticate(store, secret)

    monkeypatch.setattr(deps, "authenticate", lookup)
    return calls


async def _burst(context: ApiContext, secret: str, count: int) -> list[Any]:
    calls = (principal_of(context, secret) for _ in range(count))
    return await asyncio.gather(*calls, return_exceptions=True)


def test_requests_in_flight_with_an_unchecked_token_share_one_lookup(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create_token(store, name="till", role="staff", branch="north")
    context = ApiContext(store)
    lookups = _counted_lookups(monkeypatch)
    found = asyncio.run(_burst(context, created.secret, 20))
    assert len(lookups) == 1 and {p.token_id for p in found} == {created.info.id}
    assert context.checking == {}


def test_a_failed_shared_lookup_fails_each_request_and_is_tried_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create_token(store, name="till", role="staff", branch="north")
    context = ApiContext(store)
    lookups = _counted_lookups(monkeypatch, fail=True)
    failed = asyncio.run(_burst(context, created.secret, 5))
    assert len(lookups) == 1 and all(isinstance(f, OSError) for f in failed)
    assert context.checking == {}
    asyncio.run(_burst(context, created.secret, 1))
    assert len(lookups) == 2


def test_audit_rows_are_stored_as_sqlalchemy_stores_them(store: Store) -> None:
    principal = Principal("tok", "till", "staff", None)
    rows = audit_rows(principal, action="read", path="/customers/m_1", status=200,
                      master_ids=["m_1", None])  # fmt: skip
    with store.begin() as conn:
        conn.execute(audit_log.insert(), rows)  # the reference
    _insert(store, rows)
    columns = [cast(c, Text) for c in audit_log.c if c.name != "id"]
    with store.read() as conn:
        stored = conn.execute(select(*columns).order_by(audit_log.c.id)).all()
    assert stored[:2] == stored[2:] and stored[0][0] is not None and stored[1][6] is None


def _wal_state(store: Store) -> tuple[int, int]:
    """Frames the WAL holds since it was last started over, and how many are in the database
    (a passive checkpoint first copies what it can)."""
    raw = store.engine.raw_connection()
    try:
        _, frames, copied = raw.driver_connection.execute(  # type: ignore[union-attr]
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
        return int(frames), int(copied)
    finally:
        raw.close()


def _wal_frames(store: Store) -> int:
    return _wal_state(store)[0]


def _wal_frames_left(store: Store) -> int:
    """WAL frames not yet copied into the database (what a checkpoint now would copy)."""
    frames, copied = _wal_state(store)
    return frames - copied


def test_sqlite_audit_batches_never_checkpoint_in_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    batcher = AuditBatcher(store)
    monkeypatch.setattr(audit, "CHECKPOINT_EVERY", 3)
    checkpoints: list[int] = []
    real = audit._checkpoint

    def counted(on: Store) -> None:
        checkpoints.append(len(checkpoints))
        real(on)

    monkeypatch.setattr(audit, "_checkpoint", counted)
    principal = Principal("tok", "till", "staff", "north")

    async def reads(count: int) -> None:
        for k in range(count):
            rows = audit_rows(principal, action="read", path="/customers/x", status=200,
                              master_ids=[f"m_{k}"])  # fmt: skip
            await batcher.write(rows)
            if batcher._checkpoint is not None:
                await batcher._checkpoint  # done before the next is due (no skipped one)

    asyncio.run(reads(7))
    own: Any = batcher._own.get().driver_connection
    assert own.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    assert len(checkpoints) == 2  # after batches 3 and 6, beside the requests
    assert _wal_frames_left(store) == 0  # and they copied what the WAL held
    store.dispose()


def _audit_reads(store: Store, *master_ids: str) -> None:
    principal = Principal("tok", "till", "staff", "north")
    for master_id in master_ids:
        _insert(store, audit_rows(principal, action="read", path="/customers/x", status=200,
                                  master_ids=[master_id]))  # fmt: skip


def _reader_behind(store: Store) -> Any:
    """A connection in a read transaction that sees the WAL as it is now (an older snapshot
    once more is committed)."""
    reader: Any = sqlite3.connect(store.engine.url.database, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM audit_log").fetchone()
    return reader


def _wal_behind_a_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *later: str
) -> tuple[Store, Path, Any]:
    """A store whose WAL is due a reset, with commits (``later``) beside a reader of older
    frames: a passive checkpoint cannot catch up with them."""
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setattr(audit, "WAL_RESET_FRAMES", 1)
    _audit_reads(store, "m_0")
    reader = _reader_behind(store)
    _audit_reads(store, *later)
    return store, tmp_path / "audit.db-wal", reader


def test_a_checkpoint_starts_a_large_wal_over_once_older_readers_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the reset SQLite never reuses the WAL from its start, and under steady audit
    # writes the file grew without end.
    store, wal, reader = _wal_behind_a_reader(tmp_path, monkeypatch, "m_1", "m_2")
    threading.Timer(0.05, reader.close).start()  # leaves within the reset's wait
    before, size = _wal_frames(store), wal.stat().st_size
    audit._checkpoint(store)
    _audit_reads(store, "m_3")
    assert 0 < _wal_frames(store) < before  # m_3 was written from the WAL's start
    assert wal.stat().st_size == size  # over the old frames: no blocks freed, none added
    assert _stored_master_ids(store) == ["m_0", "m_1", "m_2", "m_3"]
    store.dispose()


def test_a_wal_reset_gives_up_on_a_long_reader_and_holds_commits_only_briefly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "RESET_WAIT_MS", 50)
    store, wal, reader = _wal_behind_a_reader(tmp_path, monkeypatch, "m_1")
    size = wal.stat().st_size
    started = time.monotonic()
    audit._checkpoint(store)  # the reader stays: no reset, nothing raised
    assert time.monotonic() - started < 5
    assert wal.stat().st_size == size
    _audit_reads(store, "m_2")  # the connection's own lock wait is back
    reader.close()
    assert _stored_master_ids(store) == ["m_0", "m_1", "m_2"]
    store.dispose()


def test_a_small_wal_is_checkpointed_without_waiting_or_truncating(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    wal = tmp_path / "audit.db-wal"
    _audit_reads(store, "m_0", "m_1")
    size = wal.stat().st_size
    audit._checkpoint(store)
    assert wal.stat().st_size == size > 0 and _wal_frames_left(store) == 0
    store.dispose()


def _stored_master_ids(store: Store) -> list[str]:
    with store.read() as conn:
        return sorted(conn.execute(select(audit_log.c.master_id)).scalars())


def test_sqlite_audit_batches_commit_on_the_loop_when_the_lock_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    batcher = AuditBatcher(store)

    async def no_thread(*args: Any) -> None:
        raise AssertionError("a free lock needs no thread-pool trip")

    monkeypatch.setattr(audit, "run_in_threadpool", no_thread)
    principal = Principal("tok", "till", "staff", "north")

    async def reads() -> None:
        for k in range(3):
            await batcher.write(audit_rows(principal, action="read", path="/customers/x",
                                           status=200, master_ids=[f"m_{k}"]))  # fmt: skip

    asyncio.run(reads())
    assert _stored_master_ids(store) == ["m_0", "m_1", "m_2"]
    store.dispose()


def test_a_sqlite_audit_batch_waits_for_a_held_lock_in_the_thread_pool(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    batcher = AuditBatcher(store)
    principal = Principal("tok", "till", "staff", "north")
    other = store.engine.raw_connection()  # another process's writer, as far as SQLite knows
    other.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
    loop_turns = 0

    async def release_later() -> None:
        nonlocal loop_turns
        for _ in range(20):  # the loop keeps turning while the batch waits for the lock
            loop_turns += 1
            await asyncio.sleep(0.01)
        other.driver_connection.commit()  # type: ignore[union-attr]

    async def read_while_locked() -> None:
        rows = audit_rows(principal, action="read", path="/customers/x", status=200,
                          master_ids=["m_locked"])  # fmt: skip
        await asyncio.gather(batcher.write(rows), release_later())

    started = time.monotonic()
    asyncio.run(read_while_locked())
    other.close()
    assert loop_turns == 20
    assert time.monotonic() - started < 30  # not the store's 60 s lock wait, on the loop
    assert _stored_master_ids(store) == ["m_locked"]  # written once, after the lock was freed
    store.dispose()


def test_a_failed_checkpoint_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Store(create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with caplog.at_level("WARNING", logger="crm_hub.api.audit"):
        audit._checkpoint(broken)  # cannot even connect: logged, not raised
    assert "WAL checkpoint failed" in caplog.text
