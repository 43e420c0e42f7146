"""A full run's starting watermark: per canonical table and source, the highest raw_change_seq.

The stage finds the sources by index hops and each one's highest sequence from the top of the
raw_change_seq index; the answer must be what a plain GROUP BY over every row says.
"""

from __future__ import annotations

from crm_hub.profile.traits.stage import _CUSTOMER_KEY, _canonical_marks
from crm_hub.store import Store
from tests.traits.conftest import Fixture


def test_full_run_watermark_is_each_sources_highest_sequence(store: Store, people: Fixture) -> None:
    with store.read() as conn:
        marks = _canonical_marks(conn)
        expected = {
            table: {
                str(source): int(seq)
                for source, seq in conn.exec_driver_sql(
                    f"SELECT source, MAX(raw_change_seq) FROM {table} GROUP BY source"
                )
            }
            for table in _CUSTOMER_KEY
        }
    assert marks == expected
    assert set(marks["orders"]) == {"pos", "web"}  # the fixture's two till/shop sources
    assert set(marks["source_customers"]) == {"books", "news", "pos", "web"}


def test_orders_from_a_source_that_had_none_reach_their_master(
    store: Store, people: Fixture
) -> None:
    from crm_hub.profile.traits import compute_traits
    from tests.traits.conftest import TODAY

    compute_traits(store, today=TODAY)
    # The newsletter system never had orders: an incremental run skips it until it has some.
    people.order("news", "n-o1", "n3", "2026-06-14 09:00", "+00:00", "GBP", "4.00",
                 [("Tea", "4.00", "drinks")])  # fmt: skip
    result = compute_traits(store, today=TODAY)
    assert (result.mode, result.masters, result.written) == ("incremental", 1, 1)
    with store.read() as conn:
        count = conn.exec_driver_sql(
            "SELECT orders_count FROM traits WHERE master_id = 'm_cat'"
        ).scalar_one()
    assert count == 1
