"""The map stage reads the next raw records past its watermark by walking an index, whatever
PostgreSQL's statistics say: with stale ones (right after a large landing) it fetched every
record past the watermark and sorted them for each batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crm_hub.store import Store
from crm_hub.store.canonical import Watermark, read_raw_batch, read_raw_rows
from tests.mapping.test_map_parallel import land

pytestmark = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)

Reader = Callable[[Any, str, Watermark, int], list[Any]]


def _plans(store: Store, read: Reader) -> tuple[list[str], int]:
    """The plans PostgreSQL ran while ``read`` took 50 records (auto_explain, sent to this
    client as notices), and how many it took."""
    plans: list[str] = []
    with store.read() as conn:
        driver: Any = conn.connection.driver_connection
        conn.exec_driver_sql("LOAD 'auto_explain'")
        conn.exec_driver_sql("SET LOCAL auto_explain.log_min_duration = 0")
        conn.exec_driver_sql("SET LOCAL client_min_messages = log")
        driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        rows = read(conn, "pos", Watermark(0, 0, ""), 50)
    return [p for p in plans if "raw_records" in p], len(rows)


@pytest.mark.parametrize("read", [read_raw_rows, read_raw_batch])
def test_raw_records_are_read_in_index_order_without_a_sort(store: Store, read: Reader) -> None:
    land(store, "pos", 0, 2_000)  # just landed: no statistics yet
    plans, taken = _plans(store, read)
    assert taken == 50
    assert plans and all("Sort" not in plan for plan in plans), plans
    assert any("ix_raw_records_source_change_seq_id" in plan for plan in plans), plans
