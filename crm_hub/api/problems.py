"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers has the same shape (``instance`` is left out when the path itself
was the bad input)::

    {"type": "urn:crm-hub:problem:not-found", "title": "Not found", "status": 404,
     "detail": "no customer m_... (or not visible to this token)", "instance": "/customers/m_..."}

``type`` is a stable URN per kind of problem (the list is :data:`PROBLEM_TITLES`); ``detail`` is
for people. Nothing a client sent is echoed back (a token pasted in the wrong place stays out of
responses), and an unexpected failure answers a bare 500 whose detail names no internals.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_hub.logging import get_logger

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TITLES",
    "Problem",
    "install_problem_handlers",
    "internal_error",
    "reject_control_characters",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:crm-hub:problem:"

PROBLEM_TITLES: dict[str, str] = {
    "unauthorized": "Missing or unknown API token",
    "forbidden": "This token's role may not do that",
    "not-found": "Not found",
    "invalid-request": "The request is not valid",
    "invalid-cursor": "The cursor is not valid for this query",
    "method-not-allowed": "Method not allowed",
    "not-implemented": "Not implemented yet",
    "internal": "Internal error",
    "bad-signature": "The webhook signature does not match",
    "stale-event": "The webhook event is too old",
    "payload-too-large": "The request body is too large",
}
_BY_STATUS = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    422: "invalid-request",
    501: "not-implemented",
}

log = get_logger(__name__)


class Problem(Exception):
    """An error answer: status, a problem kind from :data:`PROBLEM_TITLES`, and a detail."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def reject_control_characters(name: str, value: str) -> str:
    """``value`` unchanged, or a 422 problem when it holds control characters (NUL...)."""
    if any(ord(c) < 32 for c in value):
        raise Problem(
            422, "invalid-request", f"{name} must not contain control characters",
            errors=[{"location": name, "message": "control characters are not allowed"}],
        )  # fmt: skip
    return value


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    echo_path: bool = True,
    **extra: Any,
) -> Response:
    """Render one problem document (``instance`` left out when the path itself is bad input)."""
    body = {
        "type": _TYPE_PREFIX + kind,
        "title": PROBLEM_TITLES.get(kind, kind),
        "status": status,
        "detail": detail,
        **({"instance": request.url.path} if echo_path else {}),
        **extra,
    }
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem JSON."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(request, exc.status, exc.kind, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _BY_STATUS.get(exc.status_code, "invalid-request")
        detail = exc.detail if isinstance(exc.detail, str) else PROBLEM_TITLES[kind]
        no_route = exc.status_code == 404 and detail == "Not Found"
        if no_route:
            detail = "no such endpoint; see /openapi.json"
        return problem_response(
            request, exc.status_code, kind, detail, dict(exc.headers or {}), echo_path=not no_route
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"location": ".".join(str(p) for p in error.get("loc", ())), "message": error["msg"]}
            for error in exc.errors()
        ]
        return problem_response(
            request, 422, "invalid-request", "some parameters are not valid", echo_path=False,
            errors=errors,
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return internal_error(request, exc)


def internal_error(request: Request, exc: Exception) -> Response:
    """Log an unexpected failure (with its traceback) and answer a bare 500 problem."""
    log.error("api request failed", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return problem_response(
        request, 500, "internal", "the server failed to answer; the error is in its log"
    )
