"""The commonest requests without FastAPI's routing and dependency machinery.

``GET /customers?q=<phone|e-mail|id>`` and ``GET /customers/{id}`` are what a till sends all
day; ``POST /match`` is what a sign-up form sends. FastAPI spends several times the query's
cost per request resolving dependencies, validating parameters and hopping to its thread pool
twice, and its middleware stack (error pages, exception telemetry, the request log, the
exception handlers) costs as much again. This ASGI layer sits in front of that stack (see
``create_app``) and answers the plain form of those requests itself, with
:class:`~crm_hub.api.prepared.PreparedLookups`, the audit rows of concurrent requests committed
together (:class:`~crm_hub.api.audit.AuditBatcher`), and the routes' own shaping and rendering
functions, so the answer is byte for byte the route's.
On SQLite the read runs on the event loop (an indexed lookup in a local file takes
microseconds; a thread-pool trip costs more than the query); on PostgreSQL, a network round
trip, it runs in the thread pool.

A match body that :class:`~crm_hub.api.routes.meta.MatchIn` accepts is matched here with the
route's matcher and rendered as the route renders it; any other body (and any query string,
content type or role the route would refuse) is replayed to the route.

A token is checked as the routes check it (remembered for a few seconds, else looked up).
Anything else passes through to the app unchanged: other paths, other query parameters
(``cursor``, ``limit``...), name searches, a missing or unknown token, input the routes would
reject, and every miss (404, merged ids, the e-mail search's case-blind retry), so errors,
redirects and the audit of denials stay the routes' alone.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_hub.api.audit import AuditBatcher, audit_rows
from crm_hub.api.deps import ApiContext, principal_of
from crm_hub.api.lookup import MASTER_ID_PATTERN, classify
from crm_hub.api.policy import Principal, shape_customer
from crm_hub.api.prepared import PreparedLookups, Reader
from crm_hub.api.problems import internal_error
from crm_hub.api.request_log import log_request
from crm_hub.api.respond import json_response, page_response, with_etag
from crm_hub.api.routes.meta import MATCH_ROLES, MatchIn, online_matcher
from crm_hub.identity.online import MatchAnswer
from crm_hub.store.compiled import KeptConnection

__all__ = ["FastLookups"]

_PREFIX = "/customers/"
_MATCH = "/match"
_MASTER_ID = re.compile(MASTER_ID_PATTERN)
_MAX_Q = 200  # the route's max_length for q
_T = TypeVar("_T")
_Answer = tuple[Response, list[dict[str, Any]]] | None
"""The response and its audit rows; None: leave the request to the route."""


class FastLookups:
    """The app's outermost ASGI layer: answers plain lookups and matches, passes the rest on.

    ``app`` is the app's middleware stack with its routes. A fast answer skips that stack, so
    this layer does what the stack's middlewares would do for it: log the request line, and
    answer an unexpected failure with the same 500 problem JSON (then raise it on to the
    server, as Starlette's error middleware does).
    """

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context
        width = max(len(context.phone_regions), 3)
        self.lookups = PreparedLookups(context.store.engine.dialect, width)
        self.audit = AuditBatcher(context.store)
        self.inline = context.store.dialect == "sqlite"
        engine = context.store.engine
        self._readers: asyncio.Queue[KeptConnection] = asyncio.Queue()  # see _reading
        for _ in range(1 if self.inline else POSTGRES_READERS):
            self._readers.put_nowait(KeptConnection.reader(engine))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            response, receive = await self._answer(scope, receive)
        except Exception as exc:
            log_request(scope, 500, started)
            await internal_error(Request(scope), exc)(scope, receive, send)
            raise
        if response is None:
            await self.app(scope, receive, send)  # the routes, behind every middleware
            return
        try:
            await response(scope, receive, send)
        finally:
            log_request(scope, response.status_code, started)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """The fast response (None: the route's), and the ``receive`` to hand on."""
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == _MATCH:
            return await self._post_match(scope, receive)
        if method != "GET":
            return None, receive
        if path == "/customers":
            q = _plain_query(scope["query_string"])
            principal = await self._principal(scope) if q is not None else None
            if q is None or principal is None:
                return None, receive
            return await self._respond(self._search, principal, q, path), receive
        if path.startswith(_PREFIX) and not scope["query_string"]:
            master_id = path[len(_PREFIX) :]
            principal = await self._principal(scope) if _MASTER_ID.fullmatch(master_id) else None
            if principal is None:
                return None, receive
            return await self._respond(self._read, principal, master_id, scope), receive
        return None, receive

    async def _post_match(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """``POST /match`` as the route answers it, or None with the body ready to replay."""
        principal = await self._principal(scope) if _plain_json_post(scope) else None
        if principal is None or principal.role not in MATCH_ROLES:
            return None, receive
        body, replay = await _read_body(receive)
        try:
            record = MatchIn.model_validate_json(body).model_dump(exclude_none=True)
        except ValidationError:
            return None, replay  # the route words the 400 or 422
        answer = await self._on_reader(self._match, record)
        rows = audit_rows(principal, action="match", path=scope["path"], status=200,
                          master_ids=[answer.master_id])  # fmt: skip
        await self.audit.write(rows)
        return json_response(asdict(answer)), replay

    async def _respond(self, answer: Callable[..., _Answer], *args: Any) -> Response | None:
        """Run ``answer`` on a reader, then commit its audit rows."""
        found = await self._on_reader(answer, *args)
        if found is None:
            return None
        response, rows = found
        await self.audit.write(rows)
        return response

    async def _on_reader(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(reader, *args)`` on a free reader: inline, or in the thread pool."""
        reader = await self._readers.get()
        try:
            if self.inline:
                return work(reader, *args)
            return await run_in_threadpool(work, reader, *args)
        finally:
            self._readers.put_nowait(reader)

    def _match(self, reader: KeptConnection, record: dict[str, Any]) -> MatchAnswer:
        with _reading(reader) as conn:
            return online_matcher(self.context).match(record, conn)

    async def _principal(self, scope: Scope) -> Principal | None:
        """The caller, from its bearer token, as the routes find it; None: leave it to them."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                return await principal_of(self.context, token)
        return None

    def _search(self, reader: KeptConnection, principal: Principal, q: str, path: str) -> _Answer:
        term = classify(q, self.context.phone_regions)
        if term.kind == "name" or not term.values:
            return None
        size = self.context.default_page_size
        with _reading(reader) as conn:
            rows, more = self.lookups.search(conn, principal, term, size)
        if not rows and term.kind == "email":
            return None  # the route retries case-blind
        items = [{**shape_customer(principal, row, None), "traits": None} for row in rows]
        next_key = [rows[-1]["master_id"]] if more else None
        audit = audit_rows(principal, action="search", path=path, status=200,
                           master_ids=[row["master_id"] for row in rows] or [None])  # fmt: skip
        scope = f"search\x1f{term.kind}\x1f{'|'.join(term.values)}"
        return page_response(scope, items, next_key, size, match=term.kind), audit

    def _read(
        self, reader: KeptConnection, principal: Principal, master_id: str, scope: Scope
    ) -> _Answer:
        with _reading(reader) as conn:
            found = self.lookups.customer(conn, principal, master_id)
        if found is None:
            return None  # merged, erased, unknown or another branch's: the route decides
        response, status = with_etag(Request(scope), shape_customer(principal, *found))
        audit = audit_rows(principal, action="read", path=scope["path"], status=status,
                           master_ids=[master_id])  # fmt: skip
        return response, audit


POSTGRES_READERS = 4
"""Kept connections per worker for PostgreSQL lookups (each serves one lookup at a time; SQLite
has one, as its lookups run one at a time on the event loop)."""


@contextmanager
def _reading(reader: KeptConnection) -> Iterator[Reader]:
    """Where a lookup's one statement runs: a connection this layer keeps, outside any
    transaction (each statement alone reads the latest commit). That skips a pool checkout,
    a PostgreSQL ping, and a transaction's begin and commit, which cost more than the lookup
    (with a new PostgreSQL connection each time the pool overflowed under load)."""
    try:
        yield reader.get()
    except Exception:
        reader.discard()
        raise


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
