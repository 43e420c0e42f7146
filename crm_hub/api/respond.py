"""Rendering answers: JSON with exact decimals, ETags, pages, redirects."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from crm_hub.api.paging import encode_cursor

__all__ = ["json_response", "page_response", "redirect_to", "with_etag"]

_PRIVATE = {"Cache-Control": "private, no-cache"}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # the same digits from SQLite text and numeric(18, 4)
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with decimals as exact strings; personal data is never cached by shared caches."""
    return Response(
        _dumps(body),
        status_code=status,
        media_type="application/json",
        headers={**_PRIVATE, **(headers or {})},
    )


def with_etag(request: Request, body: Any) -> tuple[Response, int]:
    """A 200 with a strong ETag, or 304 when If-None-Match already has it."""
    content = _dumps(body)
    etag = '"' + hashlib.blake2b(content, digest_size=16).hexdigest() + '"'
    headers = {**_PRIVATE, "ETag": etag}
    presented = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in presented.split(",") if t.strip()}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers), 304
    return Response(content, media_type="application/json", headers=headers), 200


def page_response(
    scope: str, items: list[Any], next_key: list[Any] | None, limit: int, **extra: Any
) -> Response:
    """A page: ``{items, next_cursor, limit}`` plus any extra fields."""
    cursor = None if next_key is None else encode_cursor(scope, next_key)
    return json_response({**extra, "items": items, "next_cursor": cursor, "limit": limit})


def redirect_to(request: Request, old_id: str, new_id: str) -> Response:
    """307 to the same path with the survivor's id (query string kept)."""
    path = request.url.path.replace(old_id, new_id, 1)
    query = request.url.query
    location = f"{path}?{query}" if query else path
    return Response(status_code=307, headers={"Location": location, **_PRIVATE})
