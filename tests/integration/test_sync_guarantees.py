"""The sync contract under failure: state never ahead of data, one run per source, dead
holders taken over, failures recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_hub.config import HubConfig, load_config
from crm_hub.errors import BusyError, RetryableSourceError
from crm_hub.store import Store
from crm_hub.store.leases import hold_lease
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import leases, raw_records, runs, sync_state
from crm_hub.sync import sync_source
from crm_hub.sync.messages import Message, RecordMessage, StateMessage


class FlakyReader:
    """Yields records with a checkpoint after every 10, then fails after ``fail_after``."""

    def __init__(self, total: int, fail_after: int | None) -> None:
        self.total, self.fail_after = total, fail_after

    def streams(self) -> dict[str, list[str]]:
        return {"people": ["id"]}

    def position(self) -> tuple[int, int | None]:
        return 0, None

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        start = (state.get("people") or {}).get("next", 0)
        for i in range(start, self.total):
            if self.fail_after is not None and i == self.fail_after:
                raise RetryableSourceError("vendor answered 503")
            yield RecordMessage("people", {"id": str(i), "n": i})
            if (i + 1) % 10 == 0:
                yield StateMessage("people", {"next": i + 1})
        yield StateMessage("people", {"next": self.total})


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> HubConfig:
    (tmp_path / "x.csv").write_text("id\n1\n")
    hub = tmp_path / "hub.yaml"
    hub.write_text(
        f"store: {store_url}\nsources:\n  api:\n    type: file\n    path: x.csv\n"
        "    stream: people\n    primary_key: [id]\n"
    )
    return load_config(hub)


def saved_next(store: Store) -> int:
    with store.read() as conn:
        state = conn.execute(select(sync_state.c.state)).scalar_one_or_none()
    return (state or {}).get("next", 0)


def raw_count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(raw_records)).scalar_one())


def test_failure_keeps_what_was_read_and_state_never_runs_ahead(
    store: Store, config: HubConfig
) -> None:
    with pytest.raises(RetryableSourceError):
        sync_source(store, config, "api", reader=FlakyReader(100, fail_after=37))
    assert raw_count(store) == 37  # records read before the failure are kept
    assert saved_next(store) == 30  # the last checkpoint, never past the data
    with store.read() as conn:
        run = conn.execute(select(runs.c.status, runs.c.error)).one()
    assert run == ("failed", "vendor answered 503")

    result = sync_source(store, config, "api", reader=FlakyReader(100, fail_after=None))
    assert (result.inserted, result.unchanged) == (63, 7)  # resumed at 30: 7 re-read, no dupes
    assert raw_count(store) == 100 and saved_next(store) == 100


def test_second_sync_of_a_running_source_is_refused_with_who_holds_it(
    store: Store, config: HubConfig
) -> None:
    busy = pytest.raises(BusyError, match=r"sync:api is already running \(run OTHER-RUN")
    with hold_lease(store, "sync:api", "OTHER-RUN"), busy:
        sync_source(store, config, "api", reader=FlakyReader(5, None))
    assert sync_source(store, config, "api", reader=FlakyReader(5, None)).inserted == 5


def test_lease_of_a_dead_process_is_taken_over_at_once(store: Store, config: HubConfig) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    now = utcnow()
    with store.begin() as conn:
        conn.execute(
            leases.insert().values(
                name="sync:api",
                holder="DEAD-RUN",
                host=os.uname().nodename,
                pid=int(dead.stdout),
                acquired_at=now,
                expires_at=now.replace(year=now.year + 1),
            )
        )
    assert sync_source(store, config, "api", reader=FlakyReader(3, None)).inserted == 3


def test_wait_option_waits_for_the_holder(store: Store, config: HubConfig) -> None:
    import threading

    released = threading.Event()

    def hold() -> None:
        with hold_lease(store, "sync:api", "SHORT-RUN"):
            released.wait(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    while not any(t.name.startswith("lease-heartbeat") for t in threading.enumerate()):
        pass
    result = sync_source(store, config, "api", wait=10, reader=FlakyReader(3, None))
    holder.join()
    assert result.inserted == 3


def test_a_reader_that_cannot_start_is_a_failed_run_with_its_message(
    store: Store, config: HubConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_hub.errors import FatalSourceError
    from crm_hub.sync import registry

    def broken(name: str, source: Any, base_dir: Path) -> Any:
        raise FatalSourceError(f"source {name}: manifest is missing")

    monkeypatch.setitem(registry.READERS, "file", broken)
    with pytest.raises(FatalSourceError):
        sync_source(store, config, "api")
    with store.read() as conn:
        run = conn.execute(select(runs.c.status, runs.c.error)).one()
    assert run == ("failed", "source api: manifest is missing")
