"""The read API's app factory: ``create_app(store)`` → a FastAPI app.

Routes live in ``routes/``, auth in ``deps``, field and branch rules in ``policy``. The app keeps
no state but an :class:`~crm_hub.api.deps.ApiContext`; any number of processes can serve one
store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_hub.api.deps import ApiContext
from crm_hub.api.fastpath import FastLookups
from crm_hub.api.problems import install_problem_handlers
from crm_hub.api.routes import customers, events, meta, segments
from crm_hub.api.web import install_pages
from crm_hub.api.webhooks import TypeformWebhooks
from crm_hub.config.models import SourceConfig
from crm_hub.logging import get_logger
from crm_hub.store import Store

__all__ = ["create_app"]

log = get_logger("crm_hub.api")

_DESCRIPTION = """\
Read the unified customer: search, golden record, traits, orders, timeline, segments.

**Auth**: `Authorization: Bearer <token>` (from `crm-hub tokens create`). The token's role decides
which fields appear (staff see contact details masked and no money), its branch which customers.
**Errors**: RFC 9457 `application/problem+json`. **Paging**: `?limit=` (capped) and the opaque
`next_cursor` passed back as `?cursor=`. **Webhooks**: `POST /events/typeform` takes Typeform's
signed form responses instead of a token (see the README).
"""


def create_app(
    store: Store,
    *,
    phone_regions: tuple[str, ...] = ("GB",),
    default_page_size: int = 50,
    max_page_size: int = 200,
    sources: Mapping[str, SourceConfig] | None = None,
) -> FastAPI:
    """Build the read API over ``store``.

    Args:
        store: an open store.
        phone_regions: regions searched phone numbers are read in, as the map stage reads them
            (its mappings' ``phone_region``; the mapping default is GB).
        default_page_size: page size when a request gives no ``limit``.
        max_page_size: the cap on ``limit``.
        sources: hub.yaml's sources; ``type: typeform`` ones with a ``webhook_secret`` receive
            ``POST /events/typeform`` (None: no webhooks).
    """
    app = FastAPI(
        title="crm-hub read API",
        version="1",
        description=_DESCRIPTION,
    )
    context = app.state.crm_hub = ApiContext(
        store=store,
        phone_regions=phone_regions or ("GB",),
        default_page_size=min(default_page_size, max_page_size),
        max_page_size=max_page_size,
        extra={"typeform_webhooks": TypeformWebhooks.from_sources(store, sources or {})},
    )
    install_problem_handlers(app)
    for module in (customers, segments, meta, events):
        app.include_router(module.router)
    install_pages(app)  # /ui/: staff pages over the same policy
    app.add_middleware(FastLookups, context=context)  # the commonest reads, without FastAPI
    app.add_middleware(_RequestLog)
    return app


class _RequestLog:
    """One log line per request: method, path, status, milliseconds.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper runs every request through
    an extra task and memory streams, a cost paid on each lookup.
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
            log.info(  # the path only: a query string can hold a phone or an e-mail
                "api request",
                method=scope["method"],
                path=scope["path"],
                status=status["code"],
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
