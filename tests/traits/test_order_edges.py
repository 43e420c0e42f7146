"""Order traits on edge cases the store fixture does not reach, worked out by hand: an empty
branch, an order without currency or time, ties between branches, hours and weekdays, a
refund record, a time zone that moves an order to the day before, a master without orders.
"""

from __future__ import annotations

import pandas as pd

from crm_hub.profile.traits.activity import currency_spend, main_currency, order_traits
from crm_hub.profile.traits.frames import money_text

DAY = 86_400


def _orders() -> pd.DataFrame:
    rows = [
        # code, kind, branch, placed (UTC epoch s), offset (min), currency, total
        (0, 0, "b", 10 * DAY + 3600, 60, "GBP", 10.0),  # day 10, 02:00 local
        (0, 0, "", None, 0, None, 2.5),  # no branch, time or currency
        (0, 1, "a", 12 * DAY, 0, "GBP", 4.0),  # refunded: a visit, no spend
        (0, 2, "a", 13 * DAY, 0, "GBP", -1.0),  # refund record: subtracts only
        (2, 0, "b", 5 * DAY - 1, -60, "EUR", 1.0),  # day 4, 22:59:59 local
        (2, 0, "a", 5 * DAY, 0, "EUR", 1.0),  # day 5, 00:00
    ]
    frame = pd.DataFrame(
        rows, columns=["code", "kind", "branch", "placed", "offset_min", "currency", "total"]
    )
    return frame.astype({"kind": "int8", "placed": "Int64"})


def test_order_traits_by_hand() -> None:
    orders = _orders()
    spend = currency_spend(orders)
    traits = order_traits(orders, spend, 3, 20)

    assert main_currency(spend).to_dict() == {0: "GBP", 2: "EUR"}
    assert traits["orders_count"].tolist() == [3, 0, 2]
    assert traits["visits_count"].tolist() == [2, 0, 2]  # the empty branch is no visit
    assert traits["first_order_at"].tolist() == [10 * DAY + 3600, pd.NA, 5 * DAY - 1]
    assert traits["last_order_at"].tolist() == [12 * DAY, pd.NA, 5 * DAY]
    assert traits["_first_day"].tolist() == [10, pd.NA, 4]
    assert traits["days_since_last_order"].tolist() == [8, pd.NA, 15]
    assert traits["_active_days"].tolist() == [2, 0, 2]
    assert traits["usual_hour"].tolist() == [0, pd.NA, 0]  # ties: the smallest
    assert traits["usual_weekday"].tolist() == [1, pd.NA, 0]  # Tuesday 13th, Monday 5th
    assert traits["visits_by_branch"].tolist() == ['{"a":1,"b":1}', None, '{"a":1,"b":1}']
    assert traits["preferred_branch"].fillna("-").tolist() == ["a", "-", "a"]  # ties: A-Z
    assert traits["spend_by_currency"].tolist() == ['{"GBP":"9.0000"}', None, '{"EUR":"2.0000"}']
    assert traits["_spend"].tolist() == [90_000, pd.NA, 20_000]
    assert traits["_aov"].tolist() == [90_000, pd.NA, 10_000]  # one paid order in GBP


def test_money_text_of_small_and_negative_amounts() -> None:
    fixed = pd.Series([-5, -10_000, 0, 123_456_789, None], dtype="Int64")
    assert money_text(fixed).tolist() == ["-0.0005", "-1.0000", "0.0000", "12345.6789", None]
