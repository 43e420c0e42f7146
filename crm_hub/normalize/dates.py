"""Birth dates: ISO dates with an optional year; impossible or placeholder dates are dropped.

Accepted: ``YYYY-MM-DD`` (a time part after it is ignored), ``YYYYMMDD``, ``YYYY/MM/DD`` and the
ISO 8601 year-less form ``--MM-DD`` (a loyalty card often asks for the birthday only).
Impossible dates (``1985-02-30``, month 13) and placeholders (``1900-01-01``, ``1111-11-11``,
a date in the future or before 1900) become ``None`` with a flag, never an error.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from crm_hub.normalize.text import clean_text, unique_apply

__all__ = ["DATE_FLAGS", "BirthDate", "normalize_birth_dates", "parse_birth_date"]

DATE_FLAGS = ("missing", "invalid", "junk")
"""Flags a birth date can carry; ``None`` means usable."""

_FULL = re.compile(r"(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})(?:[T ].*)?")
_NO_YEAR = re.compile(r"--(\d{2})-?(\d{2})")
_PLACEHOLDERS = frozenset({(1900, 1, 1), (1901, 1, 1), (1899, 12, 31), (1970, 1, 1)})


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A birth date; ``year`` is ``None`` for a birthday given without its year."""

    year: int | None
    month: int
    day: int

    def iso(self) -> str:
        """Return ``YYYY-MM-DD``, or ``--MM-DD`` without a year.

        Example:
            >>> BirthDate(None, 5, 17).iso()
            '--05-17'
        """
        if self.year is None:
            return f"--{self.month:02d}-{self.day:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, slots=True)
class _Parsed:
    date: BirthDate | None
    flag: str | None


def _parse(value: object, today: dt.date) -> _Parsed:
    text = clean_text(value)
    if text is None:
        return _Parsed(None, "missing")
    full = _FULL.fullmatch(text)
    if full:
        year, month, day = (int(g) for g in full.groups())
    else:
        short = _NO_YEAR.fullmatch(text)
        if not short:
            return _Parsed(None, "invalid")
        month, day = int(short.group(1)), int(short.group(2))
        # 29 February exists in leap years, so it is a valid birthday.
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000, month)[1]):
            return _Parsed(None, "invalid")
        return _Parsed(BirthDate(None, month, day), None)
    if not (1 <= month <= 12) or not (1 <= day <= calendar.monthrange(max(year, 1), month)[1]):
        return _Parsed(None, "invalid")
    if (year, month, day) in _PLACEHOLDERS or year < 1900 or len(set(text[:10])) <= 2:
        return _Parsed(None, "junk")
    if dt.date(year, month, day) > today:
        return _Parsed(None, "invalid")
    return _Parsed(BirthDate(year, month, day), None)


def parse_birth_date(value: object, *, today: dt.date | None = None) -> BirthDate | None:
    """Parse one birth date.

    Args:
        value: ``"1984-07-02"``, ``"--07-02"``, ...
        today: the reference date for "in the future" (default: today).

    Returns:
        The date, or ``None`` when missing, impossible or a placeholder.

    Example:
        >>> parse_birth_date("1984-07-02")
        BirthDate(year=1984, month=7, day=2)
        >>> parse_birth_date("1985-02-30") is None
        True
    """
    reference = today or _today()
    if type(value) is str:
        return _parse_text(value, reference).date
    return _parse(value, reference).date


class _Today:
    """``date.today()``, asked again only after local midnight: the map stage parses a birth
    date per record, and asking costs more than a remembered parse."""

    def __init__(self) -> None:
        self.date, self.ends = dt.date.min, 0.0

    def __call__(self) -> dt.date:
        if time.time() >= self.ends:
            self.date = dt.date.today()
            tomorrow = dt.datetime.combine(self.date + dt.timedelta(days=1), dt.time())
            self.ends = tomorrow.timestamp()  # local midnight, as date.today() turns
        return self.date


_today = _Today()


@lru_cache(maxsize=65_536)
def _parse_text(value: str, today: dt.date) -> _Parsed:
    return _parse(value, today)


def normalize_birth_dates(
    values: Iterable[object] | pd.Series, *, today: dt.date | None = None
) -> pd.DataFrame:
    """Parse a column of birth dates, once per distinct value.

    Args:
        values: the raw column.
        today: the reference date for "in the future".

    Returns:
        A frame with ``year`` (0 when unknown), ``month``, ``day`` (0 when missing) as small
        integers, ``iso`` (``YYYY-MM-DD``/``--MM-DD`` or ``None``) and ``flag``.
    """
    reference = today or dt.date.today()
    codes, results = unique_apply(values, lambda value: _parse(value, reference))
    year = np.array([(r.date.year or 0) if r.date else 0 for r in results], dtype=np.int16)
    month = np.array([r.date.month if r.date else 0 for r in results], dtype=np.int8)
    day = np.array([r.date.day if r.date else 0 for r in results], dtype=np.int8)
    iso = np.array([r.date.iso() if r.date else None for r in results], dtype=object)
    flag = np.array([r.flag for r in results], dtype=object)
    return pd.DataFrame(
        {
            "year": year[codes],
            "month": month[codes],
            "day": day[codes],
            "iso": iso[codes],
            "flag": flag[codes],
        }  # fmt: skip
    )
