"""Postal addresses: a match key robust to case, punctuation and common abbreviations.

``12 High St.`` and ``12, HIGH STREET`` have the same key. Street-type words are mapped to one
short form (``street``/``st`` → ``st``; ``road``/``rd`` → ``rd``...), so either spelling agrees.
UK-style postcodes are upper-cased with one space before the inward code (``sw1a1aa`` →
``SW1A 1AA``); their *key* has no space at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
import pandas as pd

from crm_hub.normalize.text import clean_text, fold, spread, unique_apply

__all__ = [
    "ABBREVIATIONS",
    "address_line_key",
    "house_number",
    "normalize_addresses",
    "normalize_postcode",
    "postcode_key",
]

ABBREVIATIONS: dict[str, str] = {
    "street": "st", "str": "st", "road": "rd", "avenue": "ave", "av": "ave", "avn": "ave",
    "lane": "ln", "drive": "dr", "drv": "dr", "close": "cl", "court": "ct", "crt": "ct",
    "place": "pl", "plc": "pl", "crescent": "cres", "cresc": "cres", "cr": "cres",
    "gardens": "gdns", "garden": "gdn", "grove": "gr", "grv": "gr", "terrace": "ter",
    "terr": "ter", "square": "sq", "boulevard": "blvd", "highway": "hwy", "parkway": "pkwy",
    "mount": "mt", "park": "pk", "north": "n", "south": "s", "east": "e", "west": "w",
    "apartment": "flat", "apt": "flat", "suite": "ste", "building": "bldg", "house": "ho",
    "saint": "st", "upper": "upr", "lower": "lwr", "little": "lt", "great": "gt",
    "way": "wy", "walk": "wk", "hill": "hl", "mews": "mw", "row": "rw", "view": "vw",
    "first": "1st", "second": "2nd", "third": "3rd", "number": "no",
}  # fmt: skip
_TOKENS = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+[a-z]?")
_UK_POSTCODE = re.compile(r"([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})")
_NON_POSTCODE = re.compile(r"[^A-Z0-9]")
_SPACES = re.compile(r"\s+")


def address_line_key(value: object) -> str | None:
    """Return the match key of an address line: folded tokens with abbreviations unified.

    Example:
        >>> address_line_key("12, High Street"), address_line_key("12 HIGH ST.")
        ('12 high st', '12 high st')
    """
    if type(value) is str:
        return _address_line_key_text(value)
    return _address_line_key(value)


@lru_cache(maxsize=65_536)
def _address_line_key_text(value: str) -> str | None:
    return _address_line_key(value)


def _address_line_key(value: object) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    tokens = [ABBREVIATIONS.get(token, token) for token in _TOKENS.findall(fold(text))]
    return " ".join(tokens) or None


def house_number(key: str | None) -> str | None:
    """Return the first house number in an address key, e.g. ``'12a'`` from ``'12a high st'``."""
    if not key:
        return None
    found = _NUMBER.search(key)
    return found.group(0) if found else None


def normalize_postcode(value: object) -> str | None:
    """Return a postcode for display: upper case, single spaces; UK codes spaced properly.

    Example:
        >>> normalize_postcode(" sw1a1aa ")
        'SW1A 1AA'
    """
    if type(value) is str:
        return _normalize_postcode_text(value)
    return _normalize_postcode(value)


@lru_cache(maxsize=65_536)
def _normalize_postcode_text(value: str) -> str | None:
    return _normalize_postcode(value)


def _normalize_postcode(value: object) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    folded = fold(text).upper()
    compact = _NON_POSTCODE.sub("", folded)
    if not compact:
        return None
    uk = _UK_POSTCODE.fullmatch(compact)
    if uk:
        return f"{uk.group(1)} {uk.group(2)}"
    return _SPACES.sub(" ", folded).strip()


def postcode_key(value: object) -> str | None:
    """Return a postcode's match key: upper-case letters and digits only.

    Example:
        >>> postcode_key("sw1a 1aa")
        'SW1A1AA'
    """
    if type(value) is str:
        return _postcode_key_text(value)
    return _postcode_key(value)


@lru_cache(maxsize=65_536)
def _postcode_key_text(value: str) -> str | None:
    return _postcode_key(value)


def _postcode_key(value: object) -> str | None:
    # The letters and digits of the display form, which are those of the folded text.
    text = clean_text(value)
    return None if text is None else _NON_POSTCODE.sub("", fold(text).upper()) or None


def normalize_addresses(
    line1: Iterable[object] | pd.Series,
    line2: Iterable[object] | pd.Series | None = None,
    postcode: Iterable[object] | pd.Series | None = None,
    city: Iterable[object] | pd.Series | None = None,
) -> pd.DataFrame:
    """Normalise address columns, once per distinct value.

    Args:
        line1: first address lines.
        line2: second address lines (flat, building), optional.
        postcode: postcodes, optional.
        city: towns, optional.

    Returns:
        A frame with ``line_key`` (line 1 and 2 keys joined), ``number`` (house number),
        ``postcode_key`` and ``city_key``, in input order.
    """
    first = pd.Series(line1, dtype=object).to_numpy(dtype=object)
    n = len(first)

    def keys(
        values: Iterable[object] | pd.Series | None, func: Callable[[object], str | None]
    ) -> np.ndarray:
        if values is None:
            return np.full(n, None, dtype=object)
        codes, items = unique_apply(pd.Series(values, dtype=object), func)
        return spread(codes, items)

    key1 = keys(first, address_line_key)
    key2 = keys(line2, address_line_key)
    joined = np.where(pd.isna(key2), key1, key1.astype(str) + " " + key2.astype(str))
    joined[pd.isna(key1)] = None
    number_codes, number_items = unique_apply(joined, house_number)
    return pd.DataFrame(
        {
            "line_key": joined,
            "number": spread(number_codes, number_items),
            "postcode_key": keys(postcode, postcode_key),
            "city_key": keys(city, lambda v: None if clean_text(v) is None else fold(str(v))),
        }
    )
