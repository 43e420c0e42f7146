"""Cursor pagination: an opaque cursor holding the last row's sort key, bound to its query.

A page answers ``{"items": [...], "next_cursor": "..." | null, "limit": n}``; pass
``next_cursor`` back as ``cursor`` for the next page. A cursor is only valid for the query that
made it (same endpoint and filters): any other use is a 400 ``invalid-cursor`` problem. Pages
are keyset pages: rows inserted while a client pages never shift or repeat what it saw.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from crm_hub.api.problems import Problem

__all__ = ["clamp_limit", "decode_cursor", "encode_cursor"]


def _scope_tag(scope: str) -> str:
    return hashlib.blake2b(scope.encode(), digest_size=6).hexdigest()


def encode_cursor(scope: str, key: Sequence[Any]) -> str:
    """Opaque cursor after the row whose sort key is ``key`` (strings, numbers, None)."""
    raw = orjson.dumps({"s": _scope_tag(scope), "k": list(key)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, scope: str, arity: int) -> list[Any] | None:
    """The sort key inside ``cursor``, or None for the first page.

    Raises:
        Problem: 400 when the cursor is malformed or was made by another query.
    """
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise Problem(400, "invalid-cursor", "the cursor is malformed") from None
    if not isinstance(data, dict):
        raise Problem(400, "invalid-cursor", "the cursor is malformed")
    if data.get("s") != _scope_tag(scope):
        raise Problem(400, "invalid-cursor", "the cursor belongs to another query")
    key = data.get("k")
    if not isinstance(key, list) or len(key) != arity:
        raise Problem(400, "invalid-cursor", "the cursor is malformed")
    if not all(v is None or isinstance(v, int) or _printable(v) for v in key):
        raise Problem(400, "invalid-cursor", "the cursor is malformed")
    return key


def _printable(value: object) -> bool:
    return isinstance(value, str) and not any(ord(c) < 32 for c in value)


def clamp_limit(limit: int | None, default: int, maximum: int) -> int:
    """The page size to use: the default when not given, never above the maximum."""
    return max(1, min(limit if limit is not None else default, maximum))
