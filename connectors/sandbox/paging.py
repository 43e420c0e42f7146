"""Pagination shared by the vendors: opaque keyset cursors and offset windows.

A keyset cursor remembers the sort key and row of the last record sent, so records added or
changed between two pages never make a walk skip or repeat a record that did not move. The
cursor also carries a hash of the query it belongs to: vendors that demand the identical query
with every cursor (Square orders) refuse a cursor sent with another query.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.sandbox.table import SortedView


class BadCursor(ValueError):
    """The cursor is not one of ours, or belongs to another query."""


def query_hash(query: Any) -> str:
    """Short stable hash of a JSON-able query."""
    return hashlib.blake2b(
        orjson.dumps(query, option=orjson.OPT_SORT_KEYS), digest_size=6
    ).hexdigest()


def encode_cursor(position: tuple[int, int] | None, query: str) -> str:
    """An opaque cursor; ``position`` is ``(key, row)`` of the last record sent, ``None``: start."""
    payload = {"p": list(position) if position else None, "q": query}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(text: str, query: str) -> tuple[int, int] | None:
    """Read a cursor made by ``encode_cursor`` for the same query.

    Raises:
        BadCursor: when it is malformed or belongs to a different query.
    """
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        position = payload["p"]
        owner = payload["q"]
    except (ValueError, KeyError, TypeError):
        raise BadCursor(f"cursor {text[:40]!r} is not valid") from None
    if owner != query:
        raise BadCursor("cursor was issued for a different query")
    if position is None:
        return None
    if not (
        isinstance(position, list)
        and len(position) == 2
        and all(isinstance(v, int) for v in position)
    ):
        raise BadCursor(f"cursor {text[:40]!r} is not valid")
    return position[0], position[1]


@dataclass(frozen=True)
class Page:
    """Rows of one page and where the next page starts (``None``: this was the last)."""

    rows: list[int]
    next_position: tuple[int, int] | None
    more: bool


def keyset_page(
    view: SortedView,
    bounds: tuple[int, int],
    after: tuple[int, int] | None,
    limit: int,
    *,
    empty: bool = False,
) -> Page:
    """One page of a keyset walk.

    Args:
        view: the sorted rows.
        bounds: index range of the view the query selects (e.g. a time window).
        after: ``(key, row)`` of the last record already sent, ``None`` for the first page.
        limit: page size.
        empty: answer no rows but resume at the same place (the ``empty_page`` fault).

    Returns:
        The page; ``next_position`` is where to resume, ``more`` whether anything remains.
    """
    start, end = bounds
    position = start if after is None else max(start, view.position_after(*after))
    if empty:
        return Page([], after, position < end)
    stop = min(end, position + limit)
    rows = view.rows[position:stop].tolist()
    if stop >= end or not rows:
        return Page(rows, None, False)
    last = stop - 1
    return Page(rows, (view.key_of(last), int(view.rows[last])), True)


def offset_window(total: int, offset: int, limit: int, *, empty: bool = False) -> tuple[int, int]:
    """``(start, stop)`` indexes of an offset page, clipped to ``total``; empty when asked."""
    start = min(max(offset, 0), total)
    if empty:
        return start, start
    return start, min(total, start + max(limit, 0))
