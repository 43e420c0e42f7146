"""KeptConnection: one pooled driver connection kept across calls, replaced after a failure."""

from __future__ import annotations

import gc
from typing import Any

import psycopg

from crm_hub.store import Store
from crm_hub.store.compiled import KeptConnection


def test_the_same_connection_serves_every_call_until_discarded(store: Store) -> None:
    opened: list[Any] = []
    kept = KeptConnection(store.engine, opened.append)
    first = kept.get()
    first_driver = first.driver_connection
    assert kept.get() is first and opened == [first_driver]
    kept.discard()
    assert not first.is_valid  # a connection that failed once is never handed out again
    second = kept.get()
    assert second is not first and opened == [first_driver, second.driver_connection]


def test_the_kept_connection_goes_back_to_the_pool_with_its_owner(store: Store) -> None:
    kept = KeptConnection(store.engine)
    kept.get()
    assert store.engine.pool.checkedout() == 1
    del kept
    gc.collect()
    assert store.engine.pool.checkedout() == 0


def test_dispose_gives_kept_connections_back_first(store: Store) -> None:
    kept = KeptConnection(store.engine)
    driver = kept.get().driver_connection
    store.dispose()  # a checked-out connection would be dropped by the old pool, still open
    assert store.engine.pool.checkedout() == 0
    assert kept.get().driver_connection is not driver  # a new one, from the new pool


def test_a_reader_reads_outside_transactions_and_is_reset_for_the_pool(store: Store) -> None:
    reader = KeptConnection.reader(store.engine)
    driver: Any = reader.get().driver_connection
    cursor = driver.cursor()
    cursor.execute("SELECT 1")
    cursor.close()
    if store.dialect == "postgresql":  # one statement, no BEGIN left open
        assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    else:
        assert not driver.in_transaction
    reader.release()
    if store.dialect == "postgresql":  # the pool's next user runs transactions again
        assert driver.autocommit is False
    with store.begin() as conn:  # and the pool still works as transactions expect
        assert conn.exec_driver_sql("SELECT 2").scalar_one() == 2
