"""One log line per request: method, path, status, milliseconds (the path only: a query string
can hold a phone or an e-mail).

:class:`RequestLog` logs the requests the routes answer; the fast lookups, which answer
outside the app's middleware stack, call :func:`log_request` themselves.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_hub.logging import get_logger

__all__ = ["RequestLog", "log_request"]

log = get_logger("crm_hub.api")


def log_request(scope: Scope, status: int, started: float) -> None:
    """Log one answered request; ``started`` is its ``time.perf_counter()`` at arrival."""
    if not log.isEnabledFor(logging.INFO):  # the default level: skip building the fields
        return
    log.info(
        "api request",
        method=scope["method"],
        path=scope["path"],
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )


class RequestLog:
    """ASGI middleware calling :func:`log_request` for every HTTP request.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper runs every request through
    an extra task and memory streams.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            log_request(scope, status["code"], started)
