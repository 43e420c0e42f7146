"""How a large scope is read: halves cut where the work is, SQLite's caches set back after."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, event

from crm_hub.profile.traits.halves import MASTER_WEIGHT, balanced_split
from crm_hub.profile.traits.load import load_frames, prepare_scope, read_snapshot
from crm_hub.store import Store
from tests.traits.conftest import Fixture


def _people(store: Store, orders_of: list[int]) -> None:
    """Masters m_0, m_1, ... (codes in that order) with the given number of orders each."""
    f = Fixture(store)
    number = 0
    for code, count in enumerate(orders_of):
        f.master(f"m_{code}")
        f.customer(f"m_{code}", "pos", f"c{code}")
        for _ in range(count):
            number += 1
            f.order("pos", f"o{number}", f"c{code}", "2026-06-01 09:00", "+00:00", "GBP",
                    "5.00", [("Tea", "5.00", "tea")])  # fmt: skip


def _cut(store: Store) -> int:
    with read_snapshot(store) as conn:
        return balanced_split(conn, len(prepare_scope(conn, None)))


@pytest.mark.parametrize(
    ("orders_of", "cut"),
    [
        ([0] * 8, 4),  # no orders: the middle
        ([2] * 8, 4),  # even work: the middle
        ([10 * MASTER_WEIGHT, 0, 0, 0, 0, 0, 0, 0], 1),  # the first outweighs the rest
        ([0, 0, 0, 0, 0, 0, 0, 10 * MASTER_WEIGHT], 7),  # the last: the lower half has 7
    ],
)
def test_halves_are_cut_where_masters_and_orders_weigh_the_same(
    store: Store, orders_of: list[int], cut: int
) -> None:
    _people(store, orders_of)
    assert _cut(store) == cut


def _cache_sizes(conn: Connection) -> list[int]:
    return [
        int(conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar_one()) for db in ("main", "temp")
    ]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # SQLite's page caches
def test_reading_sets_sqlites_caches_back(store: Store) -> None:
    _people(store, [1, 2])
    with read_snapshot(store) as conn:
        before = _cache_sizes(conn)
        frames = load_frames(conn, prepare_scope(conn, None))
        after = _cache_sizes(conn)
    assert len(frames.orders) == 3 and after == before


def _orders_sql(store: Store, few: bool) -> str:
    """The statement ``load_frames`` builds the scope's orders table with."""
    seen: list[str] = []

    def keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", keep)
    try:
        with read_snapshot(store) as conn:
            load_frames(conn, prepare_scope(conn, None), few=few)
    finally:
        event.remove(store.engine, "before_cursor_execute", keep)
    return next(s for s in seen if s.startswith("CREATE TEMP TABLE trait_orders"))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # SQLite's join order
def test_a_large_scope_scans_orders_in_storage_order_and_a_small_one_by_customer(
    store: Store,
) -> None:
    # Left to itself SQLite walked the links and fetched orders customer by customer, so
    # their lines were then probed in random order (1 M masters: the lines of one half took
    # 66 s, 13 s when orders are scanned in storage order). CROSS JOIN fixes the order.
    _people(store, [1, 2])
    assert "FROM orders o CROSS JOIN trait_links k" in _orders_sql(store, few=False)
    assert "FROM trait_links k CROSS JOIN orders o" in _orders_sql(store, few=True)
