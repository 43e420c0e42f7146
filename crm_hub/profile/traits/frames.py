"""Small vectorised helpers shared by the trait computations.

Money is computed as exact fixed-point integers (1/10,000 of the currency unit, the store's
4 decimal places): floats read from the store are rounded once to that grid, after which every
sum is exact.

Per-master work is done on numpy arrays keyed by the integer ``code``: texts that are grouped
on (branches, currencies, products) become ids ranked in code-point order once, so grouping,
ranking and ties are integer work and each distinct text is quoted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

__all__ = [
    "SCALE",
    "first_of_max",
    "int_texts",
    "join_groups",
    "json_objects",
    "money_json",
    "money_parts",
    "money_text",
    "quote_json",
    "run_starts",
    "text_ids",
    "to_fixed",
]

SCALE = 10_000

Array = np.ndarray[Any, Any]


def to_fixed(values: pd.Series | Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Floats with up to 4 decimals → exact int64 ten-thousandths (NaN → 0)."""
    array = np.nan_to_num(np.asarray(values, dtype="float64"), nan=0.0)
    fixed: np.ndarray[Any, np.dtype[np.int64]] = np.rint(array * SCALE).astype(np.int64)
    return fixed


# ".0000" to ".9999": the decimals of a fixed-point amount, by table.
_DECIMALS = np.array([f".{i:04d}" for i in range(SCALE)], dtype=object)


# The texts of 0..65,535: counts, hours, scores and days are mostly small and are looked up.
_SMALL = np.array([str(i) for i in range(1 << 16)], dtype=object)


def int_texts(values: Array) -> Array:
    """Integers → their decimal texts (object array)."""
    if len(values) and values.min() >= 0 and values.max() < len(_SMALL):
        return _SMALL[values]
    return np.array(list(map(str, values.tolist())), dtype=object)


def money_parts(fixed: Array) -> tuple[Array, Array]:
    """Int64 ten-thousandths → the text's two parts: '-12' and '.3400' (object arrays)."""
    magnitude = np.abs(fixed)
    whole = int_texts(magnitude // SCALE)
    negative = fixed < 0
    whole[negative] = "-" + whole[negative]
    return whole, _DECIMALS[magnitude % SCALE]


def money_json(fixed: Array) -> list[Array | str]:
    """Int64 ten-thousandths → JSON string texts ('"12.3400"') as ``join_groups`` parts."""
    whole, decimals = money_parts(fixed)
    return ['"', whole, decimals, '"']


def money_text(fixed: pd.Series) -> pd.Series:
    """Int64 ten-thousandths → '12.3400' text (NA → None), exactly as the store returns it."""
    present = fixed.notna().to_numpy()
    out = np.full(len(fixed), None, dtype=object)
    whole, decimals = money_parts(fixed.to_numpy(dtype=np.int64, na_value=0)[present])
    out[present] = whole + decimals
    return pd.Series(out, index=fixed.index, dtype="object")


def quote_json(values: pd.Series) -> pd.Series:
    """JSON-quote each distinct string once (values repeat: branches, products)."""
    uniques = pd.unique(values)
    table = {v: orjson.dumps(v).decode() for v in uniques}
    return values.map(table)


def text_ids(values: pd.Series | Array) -> tuple[Array, Array]:
    """Each text's id among the distinct texts ranked in code-point order (as Python sorts),
    -1 for missing ones, and the distinct texts."""
    ids, names = pd.factorize(np.asarray(values, dtype=object), sort=True)
    return ids, np.asarray(names, dtype=object)


def run_starts(keys: Array) -> Array:
    """Where each run of equal values of sorted ``keys`` starts."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.intp)
    return np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))


def first_of_max(codes: Array, values: Array) -> Array:
    """Per run of equal sorted ``codes``: the position of its first row holding the run's
    largest value (rows sorted by name within a code: ties go to the first name)."""
    starts = run_starts(codes)
    if len(starts) == 0:
        return starts
    run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(codes))))
    best = np.flatnonzero(values == np.maximum.reduceat(values, starts)[run])
    first = np.ones(len(best), dtype=bool)
    first[1:] = run[best[1:]] != run[best[:-1]]
    return best[first]


def json_objects(
    codes: Array, keys: Array, names: Array, values: Sequence[Array | str], n: int
) -> pd.Series:
    """One JSON object text per code: {name: value}, names sorted (as orjson OPT_SORT_KEYS).

    A pair's name is ``names[key]`` (``keys`` from ``text_ids``); its value is the texts of
    ``values`` end to end (JSON already: numbers, or quoted strings). Codes without pairs get
    None.
    """
    same = codes[1:] == codes[:-1]
    if not np.all((codes[1:] > codes[:-1]) | (same & (keys[1:] >= keys[:-1]))):
        order = np.lexsort((keys, codes))
        codes, keys = codes[order], keys[order]
        values = [v if isinstance(v, str) else v[order] for v in values]
    quoted = np.array([orjson.dumps(name).decode() + ":" for name in names], dtype=object)
    return join_groups(codes, [quoted[keys], *values], "{", "}", n)


def join_groups(
    codes: Array, parts: Sequence[Array | str], open_: str, close: str, n: int
) -> pd.Series:
    """Per code 0..n-1: open_ + ",".join(pieces) + close over its rows (``codes`` sorted), a
    row's piece being its ``parts`` end to end (arrays, or a text the same for every row);
    None for codes without rows.

    Every part and separator goes into one array, joined once and split on a record
    separator: C speed, no intermediate texts per row.
    """
    out = np.full(n, None, dtype=object)
    if len(codes) == 0:
        return pd.Series(out)
    last = np.ones(len(codes), dtype=bool)
    last[:-1] = codes[1:] != codes[:-1]
    separators = np.array([",", close + "\x1e" + open_], dtype=object)
    width = len(parts) + 1
    interleaved = np.empty(width * len(codes), dtype=object)
    for i, part in enumerate(parts):
        interleaved[i::width] = part
    interleaved[width - 1 :: width] = separators[last.view(np.int8)]
    joined = (open_ + "".join(interleaved.tolist())).split("\x1e")[:-1]
    out[codes[last]] = np.array(joined, dtype=object)
    return pd.Series(out)
