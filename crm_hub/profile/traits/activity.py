"""Traits from orders and their lines: counts, dates, branches, habits, spend, items.

An order's ``kind`` (from the loader): 0 a normal order, 1 an order later refunded (a visit, no
spend), 2 a refund record (negative total: subtracts, neither an order nor a visit). Cancelled
orders never reach this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_hub.profile.traits.frames import (
    join_groups,
    json_objects,
    money_text,
    quote_json,
    to_fixed,
)

__all__ = ["NORMAL", "REFUNDED", "REFUND_RECORD", "line_traits", "order_traits"]

NORMAL, REFUNDED, REFUND_RECORD = 0, 1, 2
DAY = 86_400


def _argmax_per_code(
    codes: np.ndarray[Any, Any], slots: np.ndarray[Any, Any], width: int, n: int
) -> pd.Series:
    """Per code, the most frequent slot (0..width-1); ties: the smallest; none: NA."""
    counts = np.bincount(codes * width + slots, minlength=n * width).reshape(n, width)
    best = counts.argmax(axis=1)
    return pd.Series(best, dtype="Int64").where(counts.max(axis=1) > 0)


def _ranked(frame: pd.DataFrame, value: str, name: str) -> pd.DataFrame:
    """Sort by code, value descending, then name: the first row per code is the winner."""
    return frame.sort_values(["code", value, name], ascending=[True, False, True], kind="stable")


def main_currency(orders: pd.DataFrame) -> pd.Series:
    """Per code present in ``orders``: the currency with the most net spend (ties: A-Z)."""
    net = _net_fixed(orders)
    frame = pd.DataFrame(
        {"code": orders["code"].to_numpy(), "currency": orders["currency"].fillna(""), "net": net}
    )
    spend = frame.groupby(["code", "currency"], as_index=False)["net"].sum()
    first = _ranked(spend, "net", "currency").drop_duplicates("code")
    return pd.Series(first["currency"].to_numpy(), index=first["code"].to_numpy())


def _net_fixed(orders: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Each order's contribution to net spend: refunded orders 0, refund records negative."""
    fixed = to_fixed(orders["total"])
    return np.where(orders["kind"].to_numpy() == REFUNDED, 0, fixed)


def order_traits(orders: pd.DataFrame, main: pd.Series, n: int, today: int) -> pd.DataFrame:
    """Order traits per code 0..n-1 (``today`` in days since 1970-01-01).

    ``main`` maps code → main currency ('' for orders without one). Also returns helper columns
    for the scores (``_first_day``, ``_last_day``, ``_active_days``) and money in fixed point.
    """
    out = pd.DataFrame(index=pd.RangeIndex(n))
    kind = orders["kind"].to_numpy()
    counted = orders[kind != REFUND_RECORD]
    codes = counted["code"].to_numpy()
    out["orders_count"] = np.bincount(codes, minlength=n)
    placed = counted["placed"].astype("float64").to_numpy()
    local = placed + counted["offset_min"].to_numpy() * 60
    dated = ~np.isnan(placed)
    dcodes, dplaced, dlocal = codes[dated], placed[dated], local[dated].astype(np.int64)
    days = dlocal // DAY
    by_code = pd.DataFrame({"code": dcodes, "placed": dplaced.astype(np.int64), "day": days})
    grouped = by_code.groupby("code")
    first, last = grouped["placed"].min(), grouped["placed"].max()
    out["first_order_at"] = pd.Series(first, dtype="Int64")
    out["last_order_at"] = pd.Series(last, dtype="Int64")
    first_day, last_day = grouped["day"].min(), grouped["day"].max()
    out["_first_day"] = pd.Series(first_day, dtype="Int64")
    out["_last_day"] = pd.Series(last_day, dtype="Int64")
    out["days_since_last_order"] = today - out["_last_day"]
    distinct = by_code.drop_duplicates(["code", "day"])
    out["_active_days"] = np.bincount(distinct["code"].to_numpy(), minlength=n)
    out["usual_weekday"] = _argmax_per_code(dcodes, (days + 3) % 7, 7, n)  # 1970-01-01: Thu
    out["usual_hour"] = _argmax_per_code(dcodes, (dlocal % DAY) // 3600, 24, n)

    visits = counted[counted["branch"].notna() & (counted["branch"] != "")]
    out["visits_count"] = np.bincount(visits["code"].to_numpy(), minlength=n)
    per_branch = visits.groupby(["code", "branch"], as_index=False).size()
    out["visits_by_branch"] = json_objects(
        per_branch["code"], per_branch["branch"], per_branch["size"].astype(str), n
    )
    best = _ranked(per_branch, "size", "branch").drop_duplicates("code")
    out["preferred_branch"] = pd.Series(
        best["branch"].to_numpy(), index=best["code"].to_numpy(), dtype="object"
    )

    money = pd.DataFrame(
        {
            "code": orders["code"].to_numpy(),
            "currency": orders["currency"].fillna("").to_numpy(),
            "net": _net_fixed(orders),
            "paid": kind == NORMAL,
        }
    )
    per_currency = money.groupby(["code", "currency"], as_index=False).agg(
        net=("net", "sum"), paid=("paid", "sum")
    )
    named = per_currency[per_currency["currency"] != ""]
    out["spend_by_currency"] = json_objects(
        named["code"], named["currency"], '"' + money_text(named["net"]) + '"', n
    )
    in_main = per_currency[per_currency["currency"].to_numpy() == main.reindex(
        per_currency["code"]).to_numpy()]  # fmt: skip
    spend = pd.Series(in_main["net"].to_numpy(), index=in_main["code"].to_numpy())
    paid = pd.Series(in_main["paid"].to_numpy(), index=in_main["code"].to_numpy())
    out["_spend"] = spend.reindex(out.index).astype("Int64")
    paid_count = paid.reindex(out.index)
    aov = np.where(paid_count > 0, spend.reindex(out.index) / paid_count, np.nan)
    out["_aov"] = pd.Series(np.rint(aov), dtype="Float64").astype("Int64")
    return out


def line_traits(
    items: pd.DataFrame, categories: pd.DataFrame, main: pd.Series, n: int
) -> pd.DataFrame:
    """favourite_items and spend_by_category per code 0..n-1.

    ``items``: per code its top 3 products (``n`` lines each) of normal orders; ``categories``:
    fixed-point line spend per code, order currency and category (refunded orders left out,
    refund records' lines negative), as the loader aggregates them.
    """
    out = pd.DataFrame(index=pd.RangeIndex(n))
    top = _ranked(items.rename(columns={"n": "size"}), "size", "product")
    out["favourite_items"] = _item_lists(top.groupby("code", sort=False).head(3), n)

    currency = categories["currency"].fillna("").to_numpy()
    in_main = categories[currency == main.reindex(categories["code"]).to_numpy()]
    per_category = in_main.groupby(["code", "category"], as_index=False)["amount"].sum()
    out["spend_by_category"] = json_objects(
        per_category["code"],
        per_category["category"].astype(str),
        '"' + money_text(per_category["amount"].astype("Int64")) + '"',
        n,
    )
    return out


def _item_lists(top: pd.DataFrame, n: int) -> pd.Series:
    """[{"count": c, "item": name}, ...] JSON text per code, in rank order."""
    out = pd.Series(None, index=pd.RangeIndex(n), dtype="object")
    if top.empty:
        return out
    piece = '{"count":' + top["size"].astype(str) + ',"item":' + quote_json(top["product"]) + "}"
    codes = top["code"].to_numpy()
    out[np.unique(codes)] = join_groups(codes, piece, "[", "]")
    return out
