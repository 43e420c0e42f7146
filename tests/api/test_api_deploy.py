"""Serving as a deployment does: uvicorn workers from the ASGI factory, grouped audit writes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from crm_hub.api.asgi import http_protocol
from crm_hub.api.audit import AuditBatcher, audit_rows, record_reads
from crm_hub.api.policy import Principal
from crm_hub.api.tokens import create_token
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


def test_a_failed_audit_batch_fails_every_request_in_it(store: Store) -> None:
    batcher = AuditBatcher(store)

    async def two_bad_writes() -> list[BaseException | None]:
        bad = [{"master_id": "m_x"}]  # no occurred_at, token, action...: NOT NULL fails
        return await asyncio.gather(batcher.write(bad), batcher.write(bad), return_exceptions=True)

    failures = asyncio.run(two_bad_writes())
    assert type(failures[0]).__name__ == "IntegrityError" and failures[1] is failures[0]
