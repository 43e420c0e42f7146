"""Small vectorised helpers shared by the trait computations.

Money is computed as exact fixed-point integers (1/10,000 of the currency unit, the store's
4 decimal places): floats read from the store are rounded once to that grid, after which every
sum is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd

__all__ = [
    "SCALE",
    "join_groups",
    "json_objects",
    "quote_json",
    "money_text",
    "to_fixed",
]

SCALE = 10_000


def to_fixed(values: pd.Series | np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Floats with up to 4 decimals → exact int64 ten-thousandths (NaN → 0)."""
    array = np.nan_to_num(np.asarray(values, dtype="float64"), nan=0.0)
    fixed: np.ndarray[Any, np.dtype[np.int64]] = np.rint(array * SCALE).astype(np.int64)
    return fixed


def money_text(fixed: pd.Series) -> pd.Series:
    """Int64 ten-thousandths → '12.3400' text (NA → None), exactly as the store returns it."""
    present = fixed.notna()
    values = fixed[present].astype("int64")
    sign = np.where(values < 0, "-", "")
    magnitude = values.abs()
    text = (
        pd.Series(sign, index=values.index)
        + (magnitude // SCALE).astype(str)
        + "."
        + (magnitude % SCALE).astype(str).str.zfill(4)
    )
    out = pd.Series(None, index=fixed.index, dtype="object")
    out[present] = text
    return out


def quote_json(values: pd.Series) -> pd.Series:
    """JSON-quote each distinct string once (values repeat: branches, products)."""
    uniques = pd.unique(values)
    table = {v: orjson.dumps(v).decode() for v in uniques}
    return values.map(table)


def json_objects(codes: pd.Series, keys: pd.Series, values: pd.Series, n: int) -> pd.Series:
    """One JSON object text per code: {key: value}, keys sorted (as orjson OPT_SORT_KEYS).

    ``values`` must already be JSON text (numbers, or quoted strings). Codes without pairs
    get None.
    """
    out = pd.Series(None, index=pd.RangeIndex(n), dtype="object")
    if len(codes) == 0:
        return out
    frame = pd.DataFrame({"code": codes.to_numpy(), "key": keys.to_numpy(), "v": values.to_numpy()})
    frame = frame.sort_values(["code", "key"], kind="stable")
    frame["pair"] = quote_json(frame["key"]) + ":" + frame["v"]
    codes_sorted = frame["code"].to_numpy()
    out[np.unique(codes_sorted)] = join_groups(codes_sorted, frame["pair"], "{", "}")
    return out


def join_groups(
    codes: np.ndarray[Any, Any], pieces: pd.Series, open_: str, close: str
) -> list[str]:
    """Per run of equal ``codes`` (sorted): open_ + ",".join(pieces) + close, in C speed."""
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = codes[1:] != codes[:-1]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = last[:-1]
    text = pieces.to_numpy(dtype=object)
    head = np.where(first, open_, "")
    tail = np.where(last, close + "\x1e", ",")
    joined = "".join((pd.Series(head) + pd.Series(text) + pd.Series(tail)).tolist())
    return joined.split("\x1e")[:-1]
