"""Traits about the person: birthday, consent, form answers, money owed, e-mail engagement."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd

from crm_hub.profile.traits.frames import json_objects, money_json, text_ids, to_fixed

__all__ = ["email_traits", "money_owed", "person_traits"]

_EPOCH = date(1970, 1, 1)
_BANDS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"),
          (65, "55-64"))  # fmt: skip
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}
_FORM_KEYS = ("allergies", "favourite_dish")


def _next_birthday(month: int, day: int, today: date) -> date | None:
    """The next 'month/day' on or after today; 29 February → 28 February in other years."""
    for year in (today.year, today.year + 1):
        last = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
        if not 1 <= day <= (29 if month == 2 else last):
            return None
        when = date(year, month, min(day, last))
        if when >= today:
            return when
    return None


def _age_band(age: int) -> str:
    for limit, band in _BANDS:
        if age < limit:
            return band
    return "65+"


def _birthdays(customers: pd.DataFrame, profiles: pd.DataFrame, n: int) -> pd.DataFrame:
    """One (year, month, day) per code: the profile's, else the most complete source one."""
    cols = ["code", "birth_year", "birth_month", "birth_day"]
    known = profiles[profiles["birth_month"].notna() & profiles["birth_day"].notna()][cols]
    fallback = customers[customers["birth_month"].notna() & customers["birth_day"].notna()]
    fallback = fallback.assign(has_year=fallback["birth_year"].notna()).sort_values(
        ["code", "has_year", "updated", "row_id"], ascending=[True, False, False, False]
    )
    fallback = fallback[~fallback["code"].isin(known["code"])].drop_duplicates("code")[cols]
    both = pd.concat([known, fallback]).drop_duplicates("code")
    return both.set_index("code").reindex(pd.RangeIndex(n))


def person_traits(
    customers: pd.DataFrame, profiles: pd.DataFrame, n: int, today: date
) -> pd.DataFrame:
    """Birthday traits and form answers per code 0..n-1."""
    out = pd.DataFrame(index=pd.RangeIndex(n))
    born = _birthdays(customers, profiles, n)
    has = born["birth_month"].notna() & born["birth_day"].notna()
    known = born.loc[has, ["birth_month", "birth_day"]].astype("int64")
    keys = known["birth_month"] * 100 + known["birth_day"]
    table = {int(k): _next_birthday(int(k) // 100, int(k) % 100, today) for k in keys.unique()}
    nexts = keys.map(table)
    nexts = nexts[nexts.notna()]
    out["next_birthday"] = nexts.reindex(out.index).astype("object")
    days = {k: (v - today).days for k, v in table.items() if v is not None}
    out["days_to_birthday"] = keys.map(days).reindex(out.index).astype("Int64")
    aged = (
        born[has & born["birth_year"].notna()]
        .astype("int64")
        .loc[lambda f: f.index.isin(nexts.index)]
    )
    later = (aged["birth_month"] * 100 + aged["birth_day"]) > today.month * 100 + today.day
    ages = today.year - aged["birth_year"] - later.astype("int64")
    ages = ages[ages >= 0]
    bands = {age: _age_band(int(age)) for age in ages.unique()}
    out["age_band"] = ages.map(bands).reindex(out.index).astype("object")
    out = out.join(_forms(customers, n))
    return out


def _forms(customers: pd.DataFrame, n: int) -> pd.DataFrame:
    """allergies, favourite_dish and preferences from source customers' attributes."""
    rows = customers[customers["attributes"].notna()].sort_values(
        ["code", "updated", "row_id"], ascending=[True, False, False]
    )
    allergies: dict[int, set[str]] = {}
    dish: dict[int, str] = {}
    prefs: dict[int, dict[str, Any]] = {}
    for code, text in zip(rows["code"].to_numpy(), rows["attributes"].to_numpy(), strict=True):
        attributes = orjson.loads(text) if isinstance(text, str) else text
        if not isinstance(attributes, dict):
            continue
        code = int(code)
        for item in _as_texts(attributes.get("allergies")):
            allergies.setdefault(code, set()).add(item)
        favourite = _as_texts(attributes.get("favourite_dish"))
        if favourite and code not in dish:  # newest first
            dish[code] = favourite[0]
        for key, value in attributes.items():
            if key in _FORM_KEYS or key.startswith("unusable_") or value in (None, ""):
                continue
            prefs.setdefault(code, {}).setdefault(key, value)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["allergies"] = pd.Series(
        {c: ", ".join(sorted(v)) for c, v in allergies.items()}, dtype="object"
    ).reindex(out.index)
    out["favourite_dish"] = pd.Series(dish, dtype="object").reindex(out.index)
    out["preferences"] = pd.Series(
        {c: orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode() for c, v in prefs.items()},
        dtype="object",
    ).reindex(out.index)
    return out


def _as_texts(value: Any) -> list[str]:
    """A form answer as a list of non-empty texts (a list, or one text split on commas)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _flag(values: pd.Series) -> pd.Series:
    """Consent flags as booleans: 1/true/yes → True, 0/false/no → False, anything else NA."""

    def one(value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None

    return values.astype("object").map(one, na_action="ignore")


def _epoch_seconds(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return seconds.astype("float64").fillna(-np.inf)


def _consent(customers: pd.DataFrame, channel: str, n: int) -> tuple[pd.Series, pd.Series]:
    """Per code: the latest dated consent for ``channel`` and when it was given."""
    granted = _flag(customers[f"{channel}_granted"])
    frame = pd.DataFrame(
        {
            "code": customers["code"].to_numpy(),
            "granted": granted.to_numpy(),
            "at": _epoch_seconds(customers[f"{channel}_at"]).to_numpy(),
        }
    )
    frame = frame[frame["granted"].notna()]
    frame = frame.assign(granted=frame["granted"].astype(bool))
    # Latest first; on the same moment a refusal (False) sorts first and wins.
    first = frame.sort_values(["code", "at", "granted"], ascending=[True, False, True])
    first = first.drop_duplicates("code").set_index("code")
    index = pd.RangeIndex(n)
    return first["granted"].reindex(index).astype("boolean"), first["at"].reindex(index)


def email_traits(customers: pd.DataFrame, events: pd.DataFrame, n: int) -> pd.DataFrame:
    """E-mail engagement, unsubscribes and consent per channel per code 0..n-1."""
    out = pd.DataFrame(index=pd.RangeIndex(n))
    kinds = events["kind"].to_numpy()
    codes = events["code"].to_numpy()
    out["email_opens"] = np.bincount(codes[kinds == "opened"], minlength=n)
    out["email_clicks"] = np.bincount(codes[kinds == "clicked"], minlength=n)
    active = events[np.isin(kinds, ["opened", "clicked"]) & events["at"].notna()]
    out["last_email_activity_at"] = (
        active.groupby("code")["at"].max().reindex(out.index).astype("Int64")
    )
    lists = events[np.isin(kinds, ["subscribed", "unsubscribed"])].copy()
    lists["at"] = lists["at"].astype("float64").fillna(-np.inf)
    lists["unsub"] = lists["kind"] == "unsubscribed"
    latest = lists.sort_values(["code", "at", "unsub"], ascending=[True, False, False])
    latest = latest.drop_duplicates("code").set_index("code")
    out["unsubscribed"] = latest["unsub"].reindex(out.index).astype("boolean")
    last_unsub = lists[lists["unsub"]].groupby("code")["at"].max().reindex(out.index)
    for channel in ("email", "sms"):
        granted, at = _consent(customers, channel, n)
        if channel == "email":
            withdrawn = last_unsub.notna() & (at.isna() | (last_unsub > at))
            granted = granted.mask(withdrawn, False)
        out[f"consent_{channel}"] = granted
    return out


def money_owed(
    invoices: pd.DataFrame,
    payments: pd.DataFrame,
    main: pd.Series,
    spend: pd.Series,
    n: int,
    today: int,
) -> pd.DataFrame:
    """Open balance, overdue amount and days, balances per currency, and ltv per code.

    ``main`` is each code's main currency ('' or NA: none); ``spend`` its net order spend
    (fixed point, NA without orders).
    """
    out = pd.DataFrame(index=pd.RangeIndex(n))
    paid = payments.assign(fixed=to_fixed(payments["amount"]))
    paid_by_invoice = (
        paid[paid["invoice_source_id"].notna()]
        .groupby(["source", "invoice_source_id"])["fixed"]
        .sum()
    )
    inv = invoices.copy()
    key = pd.MultiIndex.from_arrays([inv["source"], inv["source_id"]])
    received = paid_by_invoice.reindex(key).fillna(0).to_numpy()
    fallback = np.maximum(to_fixed(inv["amount"]) - received, 0)
    inv["open"] = np.where(inv["balance"].notna(), to_fixed(inv["balance"]), fallback)
    inv["currency"] = inv["currency"].fillna("")
    inv["main"] = main.reindex(inv["code"]).fillna("").to_numpy()
    named = inv[inv["currency"] != ""].groupby(["code", "currency"], as_index=False)["open"].sum()
    currency, names = text_ids(named["currency"])
    open_text = money_json(named["open"].to_numpy(dtype=np.int64))
    out["balance_by_currency"] = json_objects(
        named["code"].to_numpy(), currency, names, open_text, n
    )
    mine = inv[inv["currency"] == inv["main"]]
    has_invoices = pd.Series(True, index=mine["code"].unique()).reindex(out.index, fill_value=False)
    out["_open"] = mine.groupby("code")["open"].sum().reindex(out.index).astype("Int64")
    overdue = mine[(mine["open"] > 0) & mine["due_day"].notna() & (mine["due_day"] < today)]
    amount = overdue.groupby("code")["open"].sum().reindex(out.index)
    out["_overdue"] = amount.fillna(0).astype("Int64").where(has_invoices)
    oldest = overdue.groupby("code")["due_day"].min().reindex(out.index)
    out["overdue_days"] = (today - oldest).astype("Int64")

    paid["main"] = main.reindex(paid["code"]).fillna("").to_numpy()
    in_main = paid[paid["currency"].fillna("") == paid["main"]]
    received_main = in_main.groupby("code")["fixed"].sum().reindex(out.index)
    ltv = spend.astype("Float64").fillna(0) + received_main.astype("Float64").fillna(0)
    out["_ltv"] = ltv.astype("Int64").where(spend.notna() | received_main.notna())
    return out


def invoice_currency(invoices: pd.DataFrame) -> pd.Series:
    """Per code with invoices: the currency of the largest invoiced amount (ties: A-Z)."""
    frame = pd.DataFrame(
        {
            "code": invoices["code"].to_numpy(),
            "currency": invoices["currency"].fillna("").to_numpy(),
            "amount": to_fixed(invoices["amount"]),
        }
    )
    total = frame.groupby(["code", "currency"], as_index=False)["amount"].sum()
    total = total.sort_values(["code", "amount", "currency"], ascending=[True, False, True])
    first = total.drop_duplicates("code")
    return pd.Series(first["currency"].to_numpy(), index=first["code"].to_numpy())


def epoch_day(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


def day_date(days: int) -> date:
    """The date ``days`` after 1970-01-01."""
    return _EPOCH + timedelta(days=days)
