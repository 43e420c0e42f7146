"""Line traits are aggregated in SQL (top 3 products, spend per category): hand-computed values.

Fay orders in two currencies; four products tie, and the three kept must be the first in
Python's (code point) order on both databases, whatever PostgreSQL's collation:
'Bagel' < 'Zebra cake' < 'apple' < 'éclair' (an English collation would keep apple, Bagel,
éclair).

  o1 GBP  apple 2.00 (coffee), Zebra cake 3.00 (no category), éclair 1.00, Bagel 0.50 (bakery)
  o2 GBP  éclair 4.00 (bakery), apple 1.50 (coffee), Bagel 0.50 (bakery)
  o3 GBP  refunded: Zebra cake 9.00 (bakery), not a favourite, no spend
  o4 GBP  refund record -1.50: apple -1.50 (coffee), not a favourite, subtracts
  o5 EUR  Zebra cake 7.00 (bakery): counts as an item; EUR is not the main currency
  o6 GBP  cancelled: éclair 50.00 (bakery): never counts
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_hub.profile.traits import compute_traits
from crm_hub.store import Store
from tests.traits.conftest import TODAY, Fixture


def test_top_products_and_category_spend_come_from_sql_as_computed_by_hand(
    store: Store, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    f = Fixture(store)
    f.master("m_fay")
    f.customer("m_fay", "pos", "c9", first_name="Fay")
    f.order("pos", "o1", "c9", "2026-06-01 09:00", "+00:00", "GBP", "6.50",
            [("apple", "2.00", "coffee"), ("Zebra cake", "3.00", None),
             ("éclair", "1.00", "bakery"), ("Bagel", "0.50", "bakery")])  # fmt: skip
    f.order("pos", "o2", "c9", "2026-06-02 09:00", "+00:00", "GBP", "6.00",
            [("éclair", "4.00", "bakery"), ("apple", "1.50", "coffee"),
             ("Bagel", "0.50", "bakery")])  # fmt: skip
    f.order("pos", "o3", "c9", "2026-06-03 09:00", "+00:00", "GBP", "9.00",
            [("Zebra cake", "9.00", "bakery")], status="refunded")  # fmt: skip
    f.order("pos", "o4", "c9", "2026-06-04 09:00", "+00:00", "GBP", "-1.50",
            [("apple", "-1.50", "coffee")])  # fmt: skip
    f.order("pos", "o5", "c9", "2026-06-05 09:00", "+00:00", "EUR", "7.00",
            [("Zebra cake", "7.00", "bakery")])  # fmt: skip
    f.order("pos", "o6", "c9", "2026-06-06 09:00", "+00:00", "GBP", "50.00",
            [("éclair", "50.00", "bakery")], status="cancelled")  # fmt: skip

    compute_traits(store, full=True, today=TODAY)

    fay = read_traits()["m_fay"]
    assert fay["favourite_items"] == [  # éclair (o1, o2; o6 cancelled) is fourth
        {"count": 2, "item": "Bagel"},
        {"count": 2, "item": "Zebra cake"},  # o1, o5 (o3 refunded)
        {"count": 2, "item": "apple"},  # o1, o2 (o4 is a refund record)
    ]
    assert fay["spend_by_category"] == {
        "bakery": "6.0000",  # 1.00 + 0.50 + 4.00 + 0.50
        "coffee": "2.0000",  # 2.00 + 1.50 - 1.50
        "uncategorised": "3.0000",
    }
    assert fay["spend_by_currency"] == {"EUR": "7.0000", "GBP": "11.0000"}
