"""The fast lookups (crm_hub.api.fastpath) answer exactly as the routes do, on both stores.

A request with an extra query parameter (``limit`` equal to the page size, or one the route
ignores) skips the fast path and reaches the FastAPI route, so each pair below compares the two
implementations on the same store, token and person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_hub.api import create_app
from crm_hub.api.prepared import PreparedLookups
from crm_hub.api.tokens import create_token, revoke_token
from crm_hub.store.schema import audit_log
from tests.api.conftest import ANN, BOB, GONE, OLD_ANN, PERSONAS, UNKNOWN, ZED, ZED_EMAIL, World

QUERIES = ("07911 123456", "+44 7911 123456", "Ann.Smith@example.com", ZED_EMAIL,
           "bob@example.net", ANN, ZED, UNKNOWN, "07000 000000")  # fmt: skip


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the prepared lookups run (the fast path's store work)."""
    calls: list[str] = []
    for name in ("search", "customer"):
        original = getattr(PreparedLookups, name)

        def counted(self: Any, *args: Any, _name: str = name, _f: Any = original) -> Any:
            calls.append(_name)
            return _f(self, *args)

        monkeypatch.setattr(PreparedLookups, name, counted)
    yield calls


def _assert_same_answer(fast: Any, route: Any) -> None:
    """Status, body and every header byte for byte (the route's passed every middleware)."""
    assert (fast.status_code, fast.content) == (route.status_code, route.content), fast.url
    routed = [(k, v.replace(b"?via=route", b"")) for k, v in route.headers.raw]  # redirects keep it
    assert fast.headers.raw == routed, fast.url


def _audit_rows(world: World) -> int:
    with world.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


@pytest.mark.parametrize("who", PERSONAS)
def test_fast_search_answers_as_the_route(world: World, who: str, fast_calls: list[str]) -> None:
    world.get(who, "/traits")
    for q in QUERIES:
        fast = world.get(who, "/customers", params={"q": q})
        route = world.get(who, "/customers", params={"q": q, "limit": 2})
        _assert_same_answer(fast, route)
    assert fast_calls.count("search") == len(QUERIES) - 1  # 07000 000000 is no phone: the route


@pytest.mark.parametrize("who", PERSONAS)
def test_fast_read_answers_as_the_route(world: World, who: str, fast_calls: list[str]) -> None:
    world.get(who, "/traits")  # a token's first use is checked in the store, by the route
    for master_id in (ANN, BOB, ZED, OLD_ANN, GONE, UNKNOWN):
        fast = world.get(who, f"/customers/{master_id}")
        route = world.get(who, f"/customers/{master_id}", params={"via": "route"})
        _assert_same_answer(fast, route)
    assert fast_calls.count("customer") == 6  # the route itself reads through lookup.py


def test_fast_read_answers_304_and_audits_each_read(world: World, fast_calls: list[str]) -> None:
    world.get("admin", "/traits")
    first = world.get("admin", f"/customers/{ANN}")
    before = _audit_rows(world)
    unchanged = {"If-None-Match": first.headers["etag"]}
    again = world.get("admin", f"/customers/{ANN}", headers=unchanged)
    assert again.status_code == 304 and again.content == b""
    found = world.get("admin", "/customers", params={"q": "07911 123456"})
    assert [item["master_id"] for item in found.json()["items"]] == [ANN]
    assert _audit_rows(world) == before + 2
    assert fast_calls == ["customer", "customer", "search"]


def test_prepared_search_pages_like_the_route(world: World) -> None:
    """A phone three people share: the fast first page, then the route's next one."""
    with world.store.begin() as conn:
        conn.exec_driver_sql("UPDATE profiles SET phone = '+447911123456' WHERE branch = 'south'")
    fast = world.get("admin", "/customers", params={"q": "07911 123456"})
    route = world.get("admin", "/customers", params={"q": "07911 123456", "limit": 2})
    assert fast.json() == route.json()
    assert len(fast.json()["items"]) == 2 and fast.json()["next_cursor"]
    after = {"q": "07911 123456", "cursor": fast.json()["next_cursor"]}
    follow = world.get("admin", "/customers", params=after)
    assert [item["master_id"] for item in follow.json()["items"]] == [ZED]


def _known_people(world: World) -> None:
    """Ann's and Zed's source records, linked to their masters, and a matching model."""
    from datetime import UTC, datetime

    import numpy as np

    from crm_hub.identity.comparisons import comparison, comparison_names
    from crm_hub.identity.online import save_model
    from crm_hub.identity.scoring import FellegiSunter
    from crm_hub.store.schema import master_links, source_customers

    now = datetime(2026, 3, 1, tzinfo=UTC)
    people = [("c1", ANN, "Ann", "Smith", "Ann.Smith@smiths.org", "ann.smith@smiths.org",
               "+447911123456"),
              ("c2", ZED, "Zed", "Southey", "zed@southey.org", "zed@southey.org",
               "+447700900999")]  # fmt: skip
    names = comparison_names()
    m = [np.asarray(comparison(n).prior_m, dtype=np.float64) for n in names]
    u = [np.asarray(comparison(n).prior_u, dtype=np.float64) for n in names]
    with world.store.begin() as conn:
        for i, (sid, master, first, last, email, key, phone) in enumerate(people):
            conn.execute(source_customers.insert().values(
                source="pos", source_id=sid, full_name=f"{first} {last}", first_name=first,
                last_name=last, email=email, email_match_key=key, phone=phone, deleted=False,
                stream="customers", raw_id=i + 1, raw_change_seq=i + 1, mapped_at=now))  # fmt: skip
            link = {"source": "pos", "source_id": sid, "master_id": master, "reason": "single",
                    "linked_at": now, "change_seq": i + 1}  # fmt: skip
            conn.execute(master_links.insert().values(**link))
        save_model(conn, FellegiSunter(names, m, u, [x.copy() for x in u], 0.001))


MATCH_RECORDS = [
    {"first_name": "Ann", "last_name": "Smith", "email": "ann.smith@SMITHS.org"},
    {"first_name": "Anna", "last_name": "Smith", "phone": "07911 123456"},
    {"first_name": "Tom", "last_name": "Smith", "phone": "07911 123456"},
    {"full_name": "Zed Southey", "email": "zed@southey.org", "birth_date": "1980-01-02"},
    {"first_name": "Nobody", "email": "nobody@nowhere.test"},
]


def test_fast_match_answers_as_the_route(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_hub.api import fastpath

    _known_people(world)
    fast_matches: list[int] = []
    original = fastpath.online_matcher

    def counted(context: Any) -> Any:
        fast_matches.append(1)
        return original(context)

    monkeypatch.setattr(fastpath, "online_matcher", counted)
    headers = {"Authorization": f"Bearer {world.tokens['service']}"}
    world.get("service", "/traits")  # a token's first use is checked in the store, by the route
    before = _audit_rows(world)
    decisions = set()
    for record in MATCH_RECORDS:
        fast = world.client.post("/match", json=record, headers=headers)
        route = world.client.post("/match", json=record, headers=headers, params={"via": "route"})
        assert fast.status_code == route.status_code == 200
        assert _without_length(fast.headers) == _without_length(route.headers)
        fast_body, route_body = fast.json(), route.json()
        assert fast_body.pop("milliseconds") >= 0 and route_body.pop("milliseconds") >= 0
        assert fast_body == route_body, record
        decisions.add(fast_body["decision"].split(":")[0])
    assert decisions >= {"rule", "score", "no"}
    assert len(fast_matches) == len(MATCH_RECORDS)
    assert _audit_rows(world) == before + 2 * len(MATCH_RECORDS)


def _without_length(headers: Any) -> list[tuple[bytes, bytes]]:
    """The headers but content-length (a match's ``milliseconds`` vary in width)."""
    return [(name, value) for name, value in headers.raw if name != b"content-length"]


def test_fast_match_leaves_refusals_to_the_route(world: World) -> None:
    world.get("service", "/traits")
    world.get("staff_north", "/traits")
    json_type = {"Content-Type": "application/json"}
    refused = [("staff_north", {"json": {"email": "x@y.z"}}, 403),
               ("service", {"json": {"colour": "red"}}, 422),
               ("service", {"json": {"first_name": "x" * 201}}, 422),
               ("service", {"content": b'{"first_name": ', "headers": json_type}, 422),
               ("service", {"content": b"\xff\xfe", "headers": json_type}, 422)]  # fmt: skip
    for who, request, status in refused:
        headers = {"Authorization": f"Bearer {world.tokens[who]}", **request.get("headers", {})}
        body = {k: v for k, v in request.items() if k != "headers"}
        fast = world.client.post("/match", headers=headers, **body)
        route = world.client.post("/match", headers=headers, params={"via": "route"}, **body)
        assert (fast.status_code, fast.content) == (status, route.content), request


class _Recorder:
    """A middleware a deployment might add: notes the path of each request it sees."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def test_fast_answers_skip_every_middleware(world: World) -> None:
    seen: list[str] = []
    app = create_app(world.store, phone_regions=("GB",), default_page_size=2, max_page_size=3)
    app.add_middleware(_Recorder, seen=seen)
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    with TestClient(app) as client:
        assert client.get(f"/customers/{ANN}", headers=headers).status_code == 200
        assert client.get("/customers", params={"q": ZED_EMAIL}, headers=headers).status_code == 200
        assert seen == []  # answered in front of the stack
        routed = client.get(f"/customers/{ANN}", params={"via": "route"}, headers=headers)
        assert routed.status_code == 200
        assert seen == [f"GET /customers/{ANN}"]


def test_fast_failure_answers_the_routes_problem(world: World) -> None:
    world.get("admin", "/traits")
    with world.store.begin() as conn:  # a real failure inside a request: the audit table is gone
        conn.execute(text("DROP TABLE audit_log"))
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    with TestClient(world.client.app, raise_server_exceptions=False) as client:
        fast = client.get(f"/customers/{ANN}", headers=headers)
        route = client.get(f"/customers/{ANN}", params={"via": "route"}, headers=headers)
    assert fast.status_code == 500
    assert fast.headers["content-type"] == "application/problem+json"
    _assert_same_answer(fast, route)


def test_fast_read_checks_a_token_it_has_not_seen(world: World, fast_calls: list[str]) -> None:
    created = create_token(world.store, name="new-till", role="admin")
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert world.client.get(f"/customers/{ANN}", headers=headers).status_code == 200
    assert fast_calls == ["customer"]  # no trip through the route to learn the token
    revoke_token(world.store, created.info.id)
    assert world.client.get(f"/customers/{ANN}", headers=headers).status_code == 401
    assert fast_calls == ["customer"]


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_fast_answers_are_logged_as_routed_ones(world: World) -> None:
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logger = logging.getLogger("crm_hub.api")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        world.get("admin", "/customers", params={"q": ZED_EMAIL})
        world.get("admin", "/customers", params={"q": ZED_EMAIL, "limit": 2})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [r.fields for r in records if r.getMessage() == "api request"]  # type: ignore[attr-defined]
    assert [{k: v for k, v in line.items() if k != "ms"} for line in lines] == [
        {"method": "GET", "path": "/customers", "status": 200}
    ] * 2  # the path only: the query string holds an e-mail
