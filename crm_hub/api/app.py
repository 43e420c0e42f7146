"""The read API's app factory: ``create_app(store)`` → a FastAPI app.

Routes live in ``routes/``, auth in ``deps``, field and branch rules in ``policy``. The app keeps
no state but an :class:`~crm_hub.api.deps.ApiContext`; any number of processes can serve one
store.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from starlette.types import ASGIApp

from crm_hub.api.deps import ApiContext
from crm_hub.api.fastpath import FastLookups
from crm_hub.api.problems import install_problem_handlers
from crm_hub.api.request_log import RequestLog
from crm_hub.api.routes import customers, events, meta, segments
from crm_hub.api.web import install_pages
from crm_hub.api.webhooks import TypeformWebhooks
from crm_hub.config.models import SourceConfig
from crm_hub.store import Store

__all__ = ["create_app"]

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
    app = _ReadApi(
        title="crm-hub read API",
        version="1",
        description=_DESCRIPTION,
    )
    app.state.crm_hub = ApiContext(
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
    app.add_middleware(RequestLog)  # the fast lookups (see _ReadApi) log their own requests
    return app


class _ReadApi(FastAPI):
    """FastAPI with the fast lookups in front of its whole middleware stack.

    Fast answers skip every middleware (the server-error handler, FastAPI's exception
    telemetry, the request log, the exception handlers), doing for themselves what of it
    applies to them: the log line, and a failure answered as the same 500 problem JSON. Their
    place inside ``FastAPI.__call__`` keeps its OpenTelemetry spans and metrics, when a
    provider is configured, for every request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (built once, on the first request), behind the fast lookups."""
        context: ApiContext = self.state.crm_hub
        return FastLookups(super().build_middleware_stack(), context)
