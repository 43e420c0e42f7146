"""Personal names: split full names, strip titles, match forms, placeholder detection.

Full names are split with nameparser (titles, suffixes, particles, ``Last, First``). Plain
``First Last`` values skip it, since nameparser costs ~100 µs a call. The *match form* of a name
is transliterated ASCII letters in lower case (``O'Brien`` → ``obrien``, ``Zoë`` → ``zoe``);
the match form of a given name is its first word, so ``Mary Ann`` and ``Mary`` agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from nameparser import HumanName

from crm_hub.normalize.text import clean_text, letters_key, spread, unique_apply

__all__ = [
    "ParsedName",
    "first_name_key",
    "last_name_key",
    "normalize_names",
    "parse_full_name",
]

TITLES = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady",
        "lord", "rev", "revd", "reverend", "fr", "father", "sr", "sra", "srta", "herr", "frau",
        "mme", "mlle", "master", "capt", "captain", "col", "major", "sgt", "hon",
    }
)  # fmt: skip
SUFFIXES = frozenset(
    {"jr", "sr", "snr", "jnr", "ii", "iii", "iv", "phd", "md", "esq", "obe", "mbe"}
)
JUNK_NAMES = frozenset(
    {
        "test", "testing", "unknown", "customer", "guest", "cash", "cashcustomer", "walkin",
        "walkincustomer", "none", "x", "xx", "xxx", "asdf", "na", "nobody", "anonymous",
        "noname", "notgiven", "notprovided", "sample", "dummy", "fake", "user", "client",
        "abc", "aaa", "qwerty", "tbc", "tba",
    }
)  # fmt: skip
_SIMPLE = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*")
_WORDS = re.compile(r"[^\s,]+")


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The parts of a person's name (display forms; ``None`` when absent)."""

    first: str | None = None
    middle: str | None = None
    last: str | None = None
    title: str | None = None
    suffix: str | None = None


_EMPTY = ParsedName()


@lru_cache(maxsize=65_536)  # words repeat: a few thousand given names and titles make most
def _word_key(word: str) -> str:
    return letters_key(word)


def _fast_split(text: str) -> ParsedName | None:
    if "," in text:
        last, _, first = text.partition(",")
        last_words, first_words = last.split(), first.split()
        if len(last_words) == 1 and 1 <= len(first_words) <= 2 and _plain(last_words + first_words):
            return ParsedName(first=first_words[0], middle=" ".join(first_words[1:]) or None,
                              last=last_words[0])  # fmt: skip
        return None
    words = text.split()
    title = None
    if len(words) == 3 and _word_key(words[0]) in TITLES and _plain(words[1:]):
        title, words = words[0], words[1:]
        return ParsedName(first=words[0], last=words[1], title=title)
    if len(words) == 2 and _plain(words):
        return ParsedName(first=words[0], last=words[1])
    if len(words) == 1 and _plain(words):
        return ParsedName(last=words[0])
    return None


def _plain(words: list[str]) -> bool:
    for word in words:
        key = _word_key(word)
        if not _SIMPLE.fullmatch(word) or key in TITLES or key in SUFFIXES or len(key) < 2:
            return False
    return True


def parse_full_name(value: object) -> ParsedName:
    """Split a full name into title, first, middle, last and suffix.

    Args:
        value: e.g. ``"Dr. Mary-Ann van der Berg Jr."`` or ``"Smith, John"``.

    Returns:
        The parts; all ``None`` when the value is blank or a placeholder (``test``, ``n/a``).

    Example:
        >>> parse_full_name("Smith, John").first
        'John'
        >>> parse_full_name("Mr John van der Berg").last
        'van der Berg'
    """
    text = clean_text(value)
    if text is None or letters_key(text) in JUNK_NAMES:
        return _EMPTY
    fast = _fast_split(text)
    if fast is not None:
        return fast
    human = HumanName(text)
    parts = {
        "first": human.first or None,
        "middle": human.middle or None,
        "last": human.last or None,
        "title": human.title or None,
        "suffix": human.suffix or None,
    }
    if parts["first"] and not parts["last"] and not parts["title"]:
        parts["last"], parts["first"] = parts["first"], None
    return ParsedName(**parts)


def first_name_key(value: object) -> str | None:
    """Return the match form of a given name: its first word, folded to letters.

    Titles are skipped and placeholders give ``None``.

    Example:
        >>> first_name_key("Mary-Ann Louise"), first_name_key("Mr"), first_name_key("J.")
        ('maryann', None, 'j')
    """
    text = clean_text(value)
    if text is None:
        return None
    for word in _WORDS.findall(text):
        key = _word_key(word)
        if key and key not in TITLES:
            return None if key in JUNK_NAMES else key
    return None


def last_name_key(value: object) -> str | None:
    """Return the match form of a family name: all its words folded to letters, suffix dropped.

    Example:
        >>> last_name_key("van der Berg Jr"), last_name_key("O'Brien-Smith")
        ('vanderberg', 'obriensmith')
    """
    text = clean_text(value)
    if text is None:
        return None
    words = [_word_key(word) for word in _WORDS.findall(text)]
    while len(words) > 1 and words[-1] in SUFFIXES:
        words.pop()
    key = "".join(words)
    return None if not key or key in JUNK_NAMES else key


def normalize_names(
    first: Iterable[object] | pd.Series | None,
    last: Iterable[object] | pd.Series | None,
    full: Iterable[object] | pd.Series | None = None,
    *,
    length: int | None = None,
) -> pd.DataFrame:
    """Normalise name columns, filling first/last from the full name where they are missing.

    Args:
        first: given names (or ``None`` when the source has no such column).
        last: family names (or ``None``).
        full: full names (or ``None``); used for a row only when its first and last are empty.
        length: the number of rows when every column is ``None``.

    Returns:
        A frame with ``first`` and ``last`` (display forms) and ``first_key`` and ``last_key``
        (match forms), in input order.
    """
    arrays = {
        name: (None if values is None else pd.Series(values, dtype=object).to_numpy(dtype=object))
        for name, values in (("first", first), ("last", last), ("full", full))
    }
    n = next((len(a) for a in arrays.values() if a is not None), length or 0)

    def column(name: str) -> np.ndarray:
        found = arrays[name]
        return np.full(n, None, dtype=object) if found is None else found

    first_raw, last_raw, full_raw = column("first"), column("last"), column("full")
    first_codes, first_items = unique_apply(first_raw, clean_text)
    last_codes, last_items = unique_apply(last_raw, clean_text)
    first_disp = spread(first_codes, first_items)
    last_disp = spread(last_codes, last_items)
    need = (pd.isna(first_disp) & pd.isna(last_disp)) & ~pd.isna(full_raw)
    if need.any():
        full_codes, full_items = unique_apply(full_raw[need], parse_full_name)
        first_disp[need] = spread(full_codes, [p.first for p in full_items])
        last_disp[need] = spread(full_codes, [p.last for p in full_items])
    fk_codes, fk_items = unique_apply(first_disp, first_name_key)
    lk_codes, lk_items = unique_apply(last_disp, last_name_key)
    return pd.DataFrame(
        {
            "first": first_disp,
            "last": last_disp,
            "first_key": spread(fk_codes, fk_items),
            "last_key": spread(lk_codes, lk_items),
        }
    )
