"""Text folding shared by every normaliser: Unicode NFKC, transliteration, match forms.

The *display* form of a value keeps its case and accents (NFKC, trimmed, single spaces); the
*match* form is what comparisons use: transliterated to ASCII with unidecode, lower-cased, and
stripped of everything but letters (names) or letters, digits and spaces (addresses).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from unidecode import unidecode

__all__ = [
    "clean_text",
    "fold",
    "is_blank",
    "letters_key",
    "map_unique",
    "spread",
    "unique_apply",
]

_SPACES = re.compile(r"\s+")
_NON_LETTERS = re.compile(r"[^a-z]+")

# Values that mean "nothing here" whatever the field.
_BLANKS = frozenset({"", "-", "--", ".", "?", "null", "none", "nil", "nan", "n/a", "na", "#n/a"})

T = TypeVar("T")


def clean_text(value: object) -> str | None:
    """Return the display form of a value: NFKC, trimmed, single spaces; ``None`` if blank.

    Args:
        value: anything read from a source (``None``, ``NaN`` and non-strings allowed).

    Returns:
        The cleaned string, or ``None`` when the value is missing or a blank placeholder.

    Example:
        >>> clean_text("  Ｊohn   Smith ")
        'John Smith'
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())
    if len(text) <= 4 and text.lower() in _BLANKS:
        return None
    return text


def is_blank(value: object) -> bool:
    """Tell whether a value is missing or a blank placeholder (``''``, ``n/a``, ``null``...)."""
    return clean_text(value) is None


def fold(value: str) -> str:
    """Fold text for matching: NFKC, ASCII transliteration, lower case, single spaces.

    Example:
        >>> fold("José  ÁLVAREZ")
        'jose alvarez'
    """
    text = value if value.isascii() else unidecode(unicodedata.normalize("NFKC", value))
    return " ".join(text.lower().split())


def letters_key(value: str) -> str:
    """Fold and keep only the letters a-z: the match form of a name.

    Example:
        >>> letters_key("O'Brien-Smith")
        'obriensmith'
    """
    if value.isascii() and value.isalpha():  # a plain word: folding would only lower-case it
        return value.lower()
    return _NON_LETTERS.sub("", fold(value))


def unique_apply(
    values: Iterable[Any] | pd.Series, func: Callable[[Any], T]
) -> tuple[np.ndarray, list[T]]:
    """Apply ``func`` once per distinct value.

    Real customer columns repeat a lot (surnames, towns, format variants), so normalising the
    distinct values and indexing back is much cheaper than a call per row.

    Args:
        values: the column; ``None``/``NaN`` are passed to ``func`` as ``None``.
        func: the scalar normaliser.

    Returns:
        ``(codes, results)``: ``results[codes[i]]`` is ``func(values[i])``.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = [func(value) for value in uniques]
    results.append(func(None))
    codes = np.where(codes < 0, len(results) - 1, codes)
    return codes, results


def spread(codes: np.ndarray, items: list[Any], dtype: Any = object) -> np.ndarray:
    """Index per-distinct-value ``items`` back to rows (the other half of `unique_apply`)."""
    table = np.empty(len(items), dtype=dtype)
    for position, item in enumerate(items):
        table[position] = item
    result: np.ndarray = table[codes]
    return result


def map_unique(values: Iterable[Any] | pd.Series, func: Callable[[Any], T]) -> list[T]:
    """Apply ``func`` once per distinct value and return one result per row, in input order."""
    codes, results = unique_apply(values, func)
    out: list[T] = spread(codes, results).tolist()
    return out
