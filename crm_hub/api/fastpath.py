"""The commonest requests without FastAPI's routing and dependency machinery.

``GET /customers?q=<phone|e-mail|id>`` and ``GET /customers/{id}`` are what a till sends all
day; ``POST /match`` is what a sign-up form sends. FastAPI spends several times the query's
cost per request resolving dependencies, validating parameters and hopping to its thread pool
twice; this ASGI layer answers the plain form of those requests itself, with
:class:`~crm_hub.api.prepared.PreparedLookups`, the audit rows of concurrent requests committed
together (:class:`~crm_hub.api.audit.AuditBatcher`), and the routes' own shaping and rendering
functions, so the answer is byte for byte the route's.
On SQLite the read runs on the event loop (an indexed lookup in a local file takes
microseconds; a thread-pool trip costs more than the query); on PostgreSQL, a network round
trip, it runs in the thread pool.

A match body that :class:`~crm_hub.api.routes.meta.MatchIn` accepts is matched here with the
route's matcher and rendered as the route renders it; any other body (and any query string,
content type or role the route would refuse) is replayed to the route.

Anything else passes through to the app unchanged: other paths, other query parameters
(``cursor``, ``limit``...), name searches, a token this process has not checked in the last
seconds, input the routes would reject, and every miss (404, merged ids, the e-mail search's
case-blind retry), so errors, redirects and the audit of denials stay the routes' alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_hub.api.audit import AuditBatcher, audit_rows
from crm_hub.api.deps import ApiContext
from crm_hub.api.lookup import MASTER_ID_PATTERN, classify
from crm_hub.api.policy import Principal, shape_customer
from crm_hub.api.prepared import PreparedLookups, Reader
from crm_hub.api.respond import json_response, page_response, with_etag
from crm_hub.api.routes.meta import MATCH_ROLES, MatchIn, online_matcher
from crm_hub.api.tokens import recall

__all__ = ["FastLookups"]

_PREFIX = "/customers/"
_MATCH = "/match"
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
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == _MATCH:
            await self._post_match(scope, receive, send)
            return
        response = await self._answer(scope) if scope["type"] == "http" else None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    async def _post_match(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /match`` as the route answers it, or the request replayed to the route."""
        principal = self._principal(scope) if _plain_json_post(scope) else None
        if principal is None or principal.role not in MATCH_ROLES:
            await self.app(scope, receive, send)
            return
        body, replay = await _read_body(receive)
        try:
            record = MatchIn.model_validate_json(body).model_dump(exclude_none=True)
        except ValidationError:
            await self.app(scope, replay, send)  # the route words the 400 or 422
            return
        matcher = online_matcher(self.context)
        answer = matcher.match(record) if self.inline else await run_in_threadpool(
            matcher.match, record
        )  # fmt: skip
        path = Request(scope).url.path
        rows = audit_rows(principal, action="match", path=path, status=200,
                          master_ids=[answer.master_id])  # fmt: skip
        await self.audit.write(rows)
        await json_response(asdict(answer))(scope, replay, send)

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

    @contextmanager
    def _reader(self) -> Iterator[Reader]:
        """Where a lookup's one statement runs: on SQLite a pooled driver connection in
        autocommit, which skips a transaction's begin and commit events (a sixth of a lookup's
        cost); on PostgreSQL a read transaction, as the routes use."""
        if not self.inline:
            with self.context.store.read() as conn:
                yield conn
            return
        driver = self.context.store.engine.raw_connection()
        try:
            yield driver
        finally:
            driver.close()  # back to the pool

    def _search(self, principal: Principal, q: str, request: Request) -> _Answer:
        term = classify(q, self.context.phone_regions)
        if term.kind == "name" or not term.values:
            return None
        size = self.context.default_page_size
        with self._reader() as conn:
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
        with self._reader() as conn:
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


def _plain_json_post(scope: Scope) -> bool:
    """No query string and a JSON body: what the fast match reads as the route would."""
    if scope["query_string"]:
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it out again (then the rest)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return body, replay
