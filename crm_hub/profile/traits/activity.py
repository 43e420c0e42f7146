"""Traits from orders and their lines: counts, dates, branches, habits, spend, items.

An order's ``kind`` (from the loader): 0 a normal order, 1 an order later refunded (a visit, no
spend), 2 a refund record (negative total: subtracts, neither an order nor a visit). Cancelled
orders never reach this module.

Orders are grouped with numpy: a group is a run of equal integer keys (the code, or the code
and a text's id) after a sort, and sums, minimums and maximums are ``reduceat`` over the runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_hub.profile.traits.frames import (
    first_of_max,
    int_texts,
    join_groups,
    json_objects,
    money_json,
    quote_json,
    run_starts,
    text_ids,
    to_fixed,
)

__all__ = [
    "NORMAL",
    "REFUNDED",
    "REFUND_RECORD",
    "currency_spend",
    "line_traits",
    "main_currency",
    "order_traits",
]

NORMAL, REFUNDED, REFUND_RECORD = 0, 1, 2
DAY = 86_400

Array = np.ndarray[Any, Any]


def _argmax_per_code(codes: Array, slots: Array, width: int, n: int) -> pd.Series:
    """Per code, the most frequent slot (0..width-1); ties: the smallest; none: NA."""
    counts = np.bincount(codes * width + slots, minlength=n * width).reshape(n, width)
    best = counts.argmax(axis=1)
    return pd.Series(best, dtype="Int64").where(counts.max(axis=1) > 0)


def _grouped(keys: Array) -> tuple[Array, Array, Array]:
    """The order sorting ``keys``, the distinct keys (sorted) and where each one's run starts
    in that order."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = run_starts(sorted_keys)
    return order, sorted_keys[starts], starts


def _sums(values: Array, order: Array, starts: Array) -> Array:
    if len(starts) == 0:
        return np.zeros(0, dtype=values.dtype)
    sums: Array = np.add.reduceat(values[order], starts)
    return sums


def currency_spend(orders: pd.DataFrame) -> pd.DataFrame:
    """Per code and currency ('' for none), sorted by code then currency: ``net`` spend in
    fixed point, ``paid`` orders, and ``main``, whether it is the code's main currency (the
    most net spend; ties: A-Z)."""
    currency, names = text_ids(orders["currency"].fillna(""))
    width = max(len(names), 1)
    order, keys, starts = _grouped(orders["code"].to_numpy() * width + currency)
    paid = (orders["kind"].to_numpy() == NORMAL).astype(np.int64)
    spend = pd.DataFrame(
        {
            "code": keys // width,
            "currency": names[keys % width],
            "net": _sums(_net_fixed(orders), order, starts),
            "paid": _sums(paid, order, starts),
        }
    )
    main = np.zeros(len(spend), dtype=bool)
    main[first_of_max(spend["code"].to_numpy(), spend["net"].to_numpy())] = True
    spend["main"] = main
    return spend


def main_currency(spend: pd.DataFrame) -> pd.Series:
    """Per code in ``currency_spend``: the currency with the most net spend (ties: A-Z)."""
    main = spend[spend["main"]]
    return pd.Series(main["currency"].to_numpy(), index=main["code"].to_numpy())


def _net_fixed(orders: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Each order's contribution to net spend: refunded orders 0, refund records negative."""
    fixed = to_fixed(orders["total"])
    return np.where(orders["kind"].to_numpy() == REFUNDED, 0, fixed)


def order_traits(orders: pd.DataFrame, spend: pd.DataFrame, n: int, today: int) -> pd.DataFrame:
    """Order traits per code 0..n-1 (``today`` in days since 1970-01-01).

    ``spend`` is ``currency_spend(orders)``. Also returns helper columns for the scores
    (``_first_day``, ``_last_day``, ``_active_days``) and money in fixed point.
    """
    counted = orders["kind"].to_numpy() != REFUND_RECORD
    codes = orders["code"].to_numpy()[counted]
    count = pd.DataFrame({"orders_count": np.bincount(codes, minlength=n)})
    dates = _dates(orders, counted, n, today)
    visits = _visits(codes, orders["branch"].to_numpy()[counted], n)
    return pd.concat([count, dates, visits, _spend(spend, n)], axis=1)


def _dates(orders: pd.DataFrame, counted: Array, n: int, today: int) -> pd.DataFrame:
    """First and last order (epoch seconds, local days), days ordered on, usual day and hour."""
    out = pd.DataFrame(index=pd.RangeIndex(n))
    placed = orders["placed"]
    dated = counted & placed.notna().to_numpy()
    codes = orders["code"].to_numpy()[dated]
    utc = placed.to_numpy(dtype=np.int64, na_value=0)[dated]
    days, local_seconds = np.divmod(utc + orders["offset_min"].to_numpy()[dated] * 60, DAY)
    order, present, starts = _grouped(codes)
    none = np.ones(n, dtype=bool)
    none[present] = False

    def per_code(values: Array, reduce: np.ufunc) -> pd.Series:
        at = np.zeros(n, dtype=np.int64)
        if len(starts):
            at[present] = reduce.reduceat(values[order], starts)
        return pd.Series(pd.arrays.IntegerArray(at, none.copy()))

    out["first_order_at"] = per_code(utc, np.minimum)
    out["last_order_at"] = per_code(utc, np.maximum)
    out["_first_day"] = per_code(days, np.minimum)
    out["_last_day"] = per_code(days, np.maximum)
    out["days_since_last_order"] = today - out["_last_day"]
    first = int(days.min()) if len(days) else 0
    span = int(days.max()) - first + 1 if len(days) else 1
    distinct = pd.unique(codes * span + (days - first))  # one per code and day
    out["_active_days"] = np.bincount(distinct // span, minlength=n)
    out["usual_weekday"] = _argmax_per_code(codes, (days + 3) % 7, 7, n)  # 1970-01-01: Thu
    out["usual_hour"] = _argmax_per_code(codes, local_seconds // 3600, 24, n)
    return out


def _visits(codes: Array, branches: Array, n: int) -> pd.DataFrame:
    """Visits in all, visits per branch and the preferred branch (most visits; ties: A-Z)."""
    out = pd.DataFrame(index=pd.RangeIndex(n))
    branch, names = text_ids(branches)
    visit = branch >= 0
    if len(names) and names[0] == "":  # the empty text ranks first
        visit &= branch != 0
    codes, branch = codes[visit], branch[visit]
    out["visits_count"] = np.bincount(codes, minlength=n)
    width = max(len(names), 1)
    keys, sizes = np.unique(codes * width + branch, return_counts=True)
    pair_code, pair_branch = keys // width, keys % width
    out["visits_by_branch"] = json_objects(pair_code, pair_branch, names, [int_texts(sizes)], n)
    best = first_of_max(pair_code, sizes)
    out["preferred_branch"] = pd.Series(
        names[pair_branch[best]], index=pair_code[best], dtype="object"
    )
    return out


def _spend(spend: pd.DataFrame, n: int) -> pd.DataFrame:
    """Net spend per currency; net spend and average paid order in the main currency."""
    out = pd.DataFrame(index=pd.RangeIndex(n))
    named = spend[spend["currency"] != ""]
    currency, names = text_ids(named["currency"])
    net_text = money_json(named["net"].to_numpy())
    out["spend_by_currency"] = json_objects(named["code"].to_numpy(), currency, names, net_text, n)
    main = spend[spend["main"]]
    net = pd.Series(main["net"].to_numpy(), index=main["code"].to_numpy())
    paid = pd.Series(main["paid"].to_numpy(), index=main["code"].to_numpy()).reindex(out.index)
    out["_spend"] = net.reindex(out.index).astype("Int64")
    aov = np.where(paid > 0, net.reindex(out.index) / paid, np.nan)
    out["_aov"] = pd.Series(np.rint(aov), dtype="Float64").astype("Int64")
    return out


def line_traits(
    items: pd.DataFrame, categories: pd.DataFrame, main: pd.Series, n: int
) -> pd.DataFrame:
    """favourite_items and spend_by_category per code 0..n-1.

    ``items``: per code the line count ``n`` of its products in normal orders (at least its
    top 3; more are ranked away here); ``categories``:
    fixed-point line spend per code, order currency and category (refunded orders left out,
    refund records' lines negative), as the loader aggregates them; ``main``: code → main
    currency.
    """
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["favourite_items"] = _item_lists(items, n)
    codes = categories["code"].to_numpy()
    main_of = main.reindex(pd.RangeIndex(n)).to_numpy(dtype=object)
    in_main = categories["currency"].fillna("").to_numpy(dtype=object) == main_of[codes]
    category, names = text_ids(categories["category"].astype(str).to_numpy()[in_main])
    width = max(len(names), 1)
    order, keys, starts = _grouped(codes[in_main] * width + category)
    amount = _sums(categories["amount"].to_numpy(dtype=np.int64)[in_main], order, starts)
    amount_text = money_json(amount)
    out["spend_by_category"] = json_objects(keys // width, keys % width, names, amount_text, n)
    return out


def _item_lists(items: pd.DataFrame, n: int) -> pd.Series:
    """[{"count": c, "item": name}, ...] JSON text per code: its 3 products with the most
    lines (ties: A-Z), in that order."""
    out = pd.Series(None, index=pd.RangeIndex(n), dtype="object")
    if items.empty:
        return out
    product, names = text_ids(items["product"])
    size = items["n"].to_numpy(dtype=np.int64)
    codes = items["code"].to_numpy()
    order = np.lexsort((product, -size, codes))
    codes, product, size = codes[order], product[order], size[order]
    starts = run_starts(codes)
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.append(starts, len(codes))))
    top = rank < 3
    codes, product, size = codes[top], product[top], size[top]
    # Each distinct (product, count) piece is written once.
    width = int(size.max()) + 1
    pairs, which = np.unique(product * width + size, return_inverse=True)
    quoted = quote_json(pd.Series(names[pairs // width])).tolist()
    counts = (pairs % width).tolist()
    texts = np.array(
        [f'{{"count":{c},"item":{q}}}' for c, q in zip(counts, quoted, strict=True)], dtype=object
    )
    return join_groups(codes, [texts[which]], "[", "]", n)
