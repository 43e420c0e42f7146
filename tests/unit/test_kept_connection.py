"""KeptConnection: one pooled driver connection kept across calls, replaced after a failure."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from crm_hub.store import open_store
from crm_hub.store.compiled import KeptConnection


def test_the_same_connection_serves_every_call_until_discarded(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    opened: list[Any] = []
    kept = KeptConnection(store.engine, opened.append)
    first = kept.get()
    first_driver = first.driver_connection
    assert kept.get() is first and opened == [first_driver]
    kept.discard()
    assert not first.is_valid  # a connection that failed once is never handed out again
    second = kept.get()
    assert second is not first and opened == [first_driver, second.driver_connection]
    store.dispose()


def test_the_kept_connection_goes_back_to_the_pool_with_its_owner(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'kept.db'}")
    kept = KeptConnection(store.engine)
    kept.get()
    assert store.engine.pool.checkedout() == 1
    del kept
    gc.collect()
    assert store.engine.pool.checkedout() == 0
    store.dispose()
