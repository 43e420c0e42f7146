"""Transport-free HTTP pieces: request, response, a small path router.

Vendor handlers take a ``Request`` and return a ``Response``; the server turns sockets into the
first and the second into bytes. That keeps every vendor testable without a socket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

if TYPE_CHECKING:
    from connectors.sandbox.app import Context


class BadRequestBody(ValueError):
    """The body is not the JSON or form the endpoint expects."""


@dataclass
class Request:
    """One HTTP request, with the path relative to the vendor prefix.

    Attributes:
        method: upper-case method.
        path: path below the vendor prefix, e.g. ``/v2/customers``.
        query: parsed query string (every value a list).
        headers: lower-cased header names.
        body: raw body bytes (never logged).
        vendor: the vendor the prefix named, or ``"_sandbox"``.
        empty_page: set by the ``empty_page`` fault: list endpoints answer an empty page.
    """

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    vendor: str = ""
    empty_page: bool = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON (``{}`` when empty).

        Raises:
            BadRequestBody: when the body is not JSON.
        """
        if not self.body.strip():
            return {}
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequestBody(f"body is not valid JSON: {exc}") from None

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value per key)."""
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise BadRequestBody(f"form body is not UTF-8: {exc}") from None
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class Response:
    """An HTTP response: a body in bytes, or a stream of chunks (sent chunked)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(
    status: int,
    payload: Any,
    *,
    headers: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> Response:
    """Serialise ``payload`` as JSON (UTF-8, non-ASCII kept) into a response."""
    body = orjson.dumps(payload)
    return Response(status, body, [("Content-Type", content_type), *(headers or [])])


def empty_response(status: int = 204) -> Response:
    """A response without a body."""
    return Response(status)


Handler = Callable[["Context", Request, dict[str, str]], Response]
_PARAM = re.compile(r"\{(\w+)\}")


class Router:
    """Maps ``(method, path pattern)`` to handlers; patterns use ``{name}`` for one segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register a handler for a method and a path pattern such as ``/lists/{list_id}``."""
        regex = (
            "^"
            + _PARAM.sub(
                r"(?P<\1>[^/]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}")
            )
            + "$"
        )
        self._routes.append((method.upper(), re.compile(regex), handler))

    def include(self, other: Router) -> None:
        """Add every route of another router (a vendor split over several modules)."""
        self._routes.extend(other._routes)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``add``."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """Find the handler of a request.

        Returns:
            ``(handler, path parameters, path_known)``; ``handler`` is ``None`` when nothing
            matches, and ``path_known`` then tells a wrong method (405) from an unknown path (404).
        """
        path_known = False
        for route_method, regex, handler in self._routes:
            found = regex.match(path)
            if found is None:
                continue
            if route_method == method.upper():
                return handler, found.groupdict(), True
            path_known = True
        return None, {}, path_known
