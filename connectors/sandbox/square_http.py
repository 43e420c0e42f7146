"""Square's way of speaking HTTP: its error envelope and request checks shared by endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.sandbox.paging import BadCursor, decode_cursor
from connectors.sandbox.routing import Request, Response, json_response
from connectors.sandbox.times import parse_instant

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

Handler = Callable[["Context", Request, dict[str, str]], Response]


class SquareError(Exception):
    """Raised inside handlers; becomes Square's error body."""

    def __init__(
        self, status: int, category: str, code: str, detail: str, field: str | None = None
    ) -> None:
        super().__init__(detail)
        self.response = error(status, category, code, detail, field)


def error(status: int, category: str, code: str, detail: str, field: str | None = None) -> Response:
    """Square's error envelope."""
    item: dict[str, Any] = {"category": category, "code": code, "detail": detail}
    if field:
        item["field"] = field
    return json_response(status, {"errors": [item]})


def invalid(code: str, detail: str, field: str | None = None) -> SquareError:
    """A 400 ``INVALID_REQUEST_ERROR`` to raise."""
    return SquareError(400, "INVALID_REQUEST_ERROR", code, detail, field)


def limit_arg(value: Any, default: int, maximum: int) -> int:
    """A page size between 1 and ``maximum``; ``VALUE_TOO_LOW``/``VALUE_TOO_HIGH`` otherwise."""
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise invalid(
            "INVALID_VALUE", f"Expected an integer value for `limit`, got {value!r}.", "limit"
        ) from None
    if limit < 1:
        raise invalid("VALUE_TOO_LOW", f"`limit` must be at least 1, got {limit}.", "limit")
    if limit > maximum:
        raise invalid("VALUE_TOO_HIGH", f"`limit` must be at most {maximum}, got {limit}.", "limit")
    return limit


def time_range(spec: Any, field: str) -> tuple[int | None, int | None]:
    """Epoch-millisecond bounds of a ``{start_at, end_at}`` object (``None`` when open)."""
    if not isinstance(spec, dict):
        raise invalid("INVALID_VALUE", f"`{field}` must be an object with start_at/end_at.", field)
    bounds: list[int | None] = []
    for key in ("start_at", "end_at"):
        raw = spec.get(key)
        try:
            bounds.append(None if raw is None else parse_instant(str(raw)))
        except ValueError:
            raise invalid(
                "INVALID_TIME", f"Invalid RFC 3339 timestamp {raw!r}.", f"{field}.{key}"
            ) from None
    return bounds[0], bounds[1]


def order_desc(value: Any) -> bool:
    """Whether a ``sort_order`` asks for DESC (ASC when absent); 400 on anything else."""
    if value not in (None, "ASC", "DESC"):
        raise invalid(
            "INVALID_ENUM_VALUE",
            f"Invalid sort order {value!r}; expected ASC or DESC.",
            "sort_order",
        )
    return bool(value == "DESC")


def cursor_arg(text: Any, qhash: str) -> tuple[int, int] | None:
    """The position a cursor points at for this query (``None``: first page)."""
    if not text:
        return None
    try:
        return decode_cursor(str(text), qhash)
    except BadCursor as exc:
        raise invalid("INVALID_CURSOR", f"The cursor is invalid: {exc}.", "cursor") from None


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400."""
    body = request.json()
    if not isinstance(body, dict):
        raise invalid("INVALID_CONTENT_TYPE", "The request body must be a JSON object.")
    return body


def handle_errors(fn: Handler) -> Handler:
    """Turn ``SquareError`` raised in a handler into Square's error response."""

    def wrapper(ctx: Context, request: Request, params: dict[str, str]) -> Response:
        try:
            return fn(ctx, request, params)
        except SquareError as exc:
            return exc.response

    wrapper.__doc__ = fn.__doc__
    return wrapper
