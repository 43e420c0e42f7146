"""A large backlog into a table smaller than it loads without the secondary indexes (but those
cheap to keep as rows arrive) and builds them at the end; a map that dies meanwhile leaves them
to the next map run to build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from crm_hub.mapping import map_source, stage
from crm_hub.store import Store
from crm_hub.store.leases import hold_lease
from crm_hub.store.schema import metadata, source_customers
from tests.mapping.test_map_parallel import (
    KILLED_MAP,
    _hub,
    dump,
    killed_after_two_batches,
    land,
    landed_twice,
)

INDEXES = sorted(str(index.name) for index in source_customers.indexes)
# kept through a bulk load: keys in arrival order, and few distinct ones
KEPT = ["ix_source_customers_birth_month_birth_day", "ix_source_customers_raw_change_seq"]


def indexes(store: Store) -> list[str]:
    """The schema's secondary indexes of source_customers present in the store."""
    with store.read() as conn:
        found = {str(index["name"]) for index in inspect(conn).get_indexes("source_customers")}
    return sorted(found.intersection(INDEXES))


def schema_diff(store: Store) -> list[Any]:
    with store.read() as conn:
        diff: list[Any] = compare_metadata(MigrationContext.configure(conn), metadata)
    return diff


def test_a_bulk_load_writes_what_an_indexed_load_writes_and_builds_the_indexes(
    store: Store, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _hub(write_project)
    for source in ("one", "many"):
        land(store, source, 0, 4_500)
    map_source(store, hub, "one", batch_size=1_000, workers=1)  # 4,500 < BULK_FROM: indexed
    monkeypatch.setattr(stage, "BULK_FROM", 2_000)
    seen: list[list[str]] = []
    many = map_source(
        store, hub, "many", batch_size=1_000, workers=2,
        on_progress=lambda _: seen.append(indexes(store)),
    )  # fmt: skip
    assert seen[0] == KEPT and seen[-1] == KEPT  # 1,900 rows held < 4,500 to map: bulk
    assert indexes(store) == INDEXES
    assert schema_diff(store) == []
    assert many.read == 4_500
    assert dump(store, "many") == dump(store, "one")
    land(store, "many", 4_500, 2_100)  # 2,100 to map into 3,800 rows: indexed
    seen.clear()
    map_source(store, hub, "many", batch_size=1_000, workers=2,
               on_progress=lambda _: seen.append(indexes(store)))  # fmt: skip
    assert seen == [INDEXES] * 3


def test_a_failed_bulk_load_builds_the_indexes_it_dropped(
    store: Store, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _hub(write_project)
    land(store, "many", 0, 4_500)
    monkeypatch.setattr(stage, "BULK_FROM", 2_000)
    real_write, writes = stage._write, []

    def failing_write(*args: Any, **kwargs: Any) -> None:
        writes.append(indexes(store))
        if len(writes) == 3:
            raise OSError("disk full")
        real_write(*args, **kwargs)

    monkeypatch.setattr(stage, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        map_source(store, hub, "many", batch_size=1_000, workers=2)
    assert writes[0] == KEPT
    assert indexes(store) == INDEXES
    assert schema_diff(store) == []


# Maps "many" on two workers as a bulk load, printing each committed batch's count; the test
# kills it.
KILLED_BULK_MAP = KILLED_MAP.replace(
    "from crm_hub.mapping import map_source\n",
    "from crm_hub.mapping import map_source, stage\nstage.BULK_FROM = 2_000\n",
)


def test_indexes_a_killed_bulk_load_left_dropped_are_built_by_the_next_map(
    store: Store, write_project: Callable[..., Path]
) -> None:
    hub_file, hub = landed_twice(store, write_project)
    committed = killed_after_two_batches(hub_file, KILLED_BULK_MAP)  # its indexes dropped
    assert committed == ["1000\n", "2000\n"]
    assert indexes(store) == KEPT

    with hold_lease(store, "map:one", "another-run"):  # it may be bulk-loading: left as they are
        map_source(store, hub, "many", batch_size=1_000, workers=1)
    assert indexes(store) == KEPT

    map_source(store, hub, "one", batch_size=1_000, workers=1)  # the next map builds them
    assert indexes(store) == INDEXES
    assert schema_diff(store) == []
    assert dump(store, "many") == dump(store, "one")
