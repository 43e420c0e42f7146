"""What every emulated vendor provides to the sandbox: routes and its own way of saying no.

Each vendor module builds one ``VendorSpec``. The sandbox applies faults, rate limits and auth in
the same order for every vendor, and asks the spec to word each refusal the vendor's way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.sandbox.auth import TokenState
from connectors.sandbox.routing import Request, Response, Router

if TYPE_CHECKING:
    from connectors.sandbox.app import Context


@dataclass(frozen=True)
class VendorSpec:
    """One emulated vendor API.

    Attributes:
        name: vendor name, also its URL prefix (``/square``...).
        router: its endpoints.
        authenticate: classifies the credentials a request presents.
        is_public: endpoints reachable without credentials (token endpoints).
        unauthorized: the vendor's 401 for a missing, invalid or expired token.
        throttled: the vendor's 429; the float is the wait the limiter computed, if any.
        server_error: the vendor's 5xx body for a status.
        not_found: the vendor's 404 (or 405 when the path exists with another method).
        bad_request: the vendor's 400 for a malformed body.
    """

    name: str
    router: Router
    authenticate: Callable[[Context, Request], TokenState]
    is_public: Callable[[Request], bool]
    unauthorized: Callable[[Request, TokenState], Response]
    throttled: Callable[[Request, float | None], Response]
    server_error: Callable[[Request, int], Response]
    not_found: Callable[[Request, bool], Response]
    bad_request: Callable[[Request, str], Response]


def never_public(_request: Request) -> bool:
    """For vendors without unauthenticated endpoints."""
    return False
