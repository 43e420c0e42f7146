"""The three commonest reads without FastAPI's routing and dependency machinery.

``GET /customers?q=<phone|e-mail|id>`` and ``GET /customers/{id}`` are what a till sends all
day. FastAPI spends several times the query's cost per request resolving dependencies,
validating parameters and hopping to its thread pool twice; this ASGI layer answers the plain
form of those requests itself, with :class:`~crm_hub.api.prepared.PreparedLookups`, the audit
rows of concurrent requests committed together (:class:`~crm_hub.api.audit.AuditBatcher`), and
the routes' own shaping and rendering functions, so the answer is byte for byte the route's.
On SQLite the read runs on the event loop (an indexed lookup in a local file takes
microseconds; a thread-pool trip costs more than the query); on PostgreSQL, a network round
trip, it runs in the thread pool.

Anything else passes through to the app unchanged: other paths, other query parameters
(``cursor``, ``limit``...), name searches, a token this process has not checked in the last
seconds, input the routes would reject, and every miss (404, merged ids, the e-mail search's
case-blind retry), so errors, redirects and the audit of denials stay the routes' alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_hub.api.audit import AuditBatcher, audit_rows
from crm_hub.api.deps import ApiContext
from crm_hub.api.lookup import MASTER_ID_PATTERN, classify
from crm_hub.api.policy import Principal, shape_customer
from crm_hub.api.prepared import PreparedLookups
from crm_hub.api.respond import page_response, with_etag
from crm_hub.api.tokens import recall

__all__ = ["FastLookups"]

_PREFIX = "/customers/"
_MASTER_ID = re.compile(MASTER_ID_PATTERN)
_MAX_Q = 200  # the route's max_length for q
_Answer = tuple[Response, list[dict[str, Any]]] | None
"""The response and its audit rows; None: leave the request to the route."""


class FastLookups:
    """ASGI middleware answering plain phone, e-mail and id lookups; the rest goes to ``app``."""

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context
        width = max(len(context.phone_regions), 3)
        self.lookups = PreparedLookups(context.store.engine.dialect, width)
        self.audit = AuditBatcher(context.store)
        self.inline = context.store.dialect == "sqlite"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope) if scope["type"] == "http" else None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        if scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if path == "/customers":
            q = _plain_query(scope["query_string"])
            principal = self._principal(scope) if q is not None else None
            if q is None or principal is None:
                return None
            return await self._respond(self._search, principal, q, Request(scope))
        if path.startswith(_PREFIX) and not scope["query_string"]:
            master_id = path[len(_PREFIX) :]
            principal = self._principal(scope) if _MASTER_ID.fullmatch(master_id) else None
            if principal is None:
                return None
            return await self._respond(self._read, principal, master_id, Request(scope))
        return None

    async def _respond(self, answer: Callable[..., _Answer], *args: Any) -> Response | None:
        """Run ``answer`` (inline or in the thread pool), then commit its audit rows."""
        found = answer(*args) if self.inline else await run_in_threadpool(answer, *args)
        if found is None:
            return None
        response, rows = found
        await self.audit.write(rows)
        return response

    def _principal(self, scope: Scope) -> Principal | None:
        """The caller when its bearer token is one this process found live a moment ago."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                return recall(self.context.store, token)
        return None

    def _search(self, principal: Principal, q: str, request: Request) -> _Answer:
        term = classify(q, self.context.phone_regions)
        if term.kind == "name" or not term.values:
            return None
        size = self.context.default_page_size
        with self.context.store.read() as conn:
            rows, more = self.lookups.search(conn, principal, term, size)
        if not rows and term.kind == "email":
            return None  # the route retries case-blind
        items = [{**shape_customer(principal, row, None), "traits": None} for row in rows]
        next_key = [rows[-1]["master_id"]] if more else None
        audit = audit_rows(principal, action="search", path=request.url.path, status=200,
                           master_ids=[row["master_id"] for row in rows] or [None])  # fmt: skip
        scope = f"search\x1f{term.kind}\x1f{'|'.join(term.values)}"
        return page_response(scope, items, next_key, size, match=term.kind), audit

    def _read(self, principal: Principal, master_id: str, request: Request) -> _Answer:
        with self.context.store.read() as conn:
            found = self.lookups.customer(conn, principal, master_id)
        if found is None:
            return None  # merged, erased, unknown or another branch's: the route decides
        response, status = with_etag(request, shape_customer(principal, *found))
        audit = audit_rows(principal, action="read", path=request.url.path, status=status,
                           master_ids=[master_id])  # fmt: skip
        return response, audit


def _plain_query(query_string: bytes) -> str | None:
    """``q`` when it is the only parameter and the route would accept it, else None."""
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "q":
        return None
    q = params[0][1]
    if not 1 <= len(q) <= _MAX_Q or any(ord(c) < 32 for c in q):
        return None
    return q
