"""The fast lookups (crm_hub.api.fastpath) answer exactly as the routes do, on both stores.

A request with an extra query parameter (``limit`` equal to the page size, or one the route
ignores) skips the fast path and reaches the FastAPI route, so each pair below compares the two
implementations on the same store, token and person.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_hub.api.prepared import PreparedLookups
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


def _audit_rows(world: World) -> int:
    with world.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


@pytest.mark.parametrize("who", PERSONAS)
def test_fast_search_answers_as_the_route(world: World, who: str, fast_calls: list[str]) -> None:
    world.get(who, "/traits")
    for q in QUERIES:
        fast = world.get(who, "/customers", params={"q": q})
        route = world.get(who, "/customers", params={"q": q, "limit": 2})
        assert (fast.status_code, fast.json()) == (route.status_code, route.json()), q
        assert fast.headers["cache-control"] == route.headers["cache-control"]
    assert fast_calls.count("search") == len(QUERIES) - 1  # 07000 000000 is no phone: the route


@pytest.mark.parametrize("who", PERSONAS)
def test_fast_read_answers_as_the_route(world: World, who: str, fast_calls: list[str]) -> None:
    world.get(who, "/traits")  # a token's first use is checked in the store, by the route
    for master_id in (ANN, BOB, ZED, OLD_ANN, GONE, UNKNOWN):
        fast = world.get(who, f"/customers/{master_id}")
        route = world.get(who, f"/customers/{master_id}", params={"via": "route"})
        assert fast.status_code == route.status_code, master_id
        assert fast.content == route.content and fast.headers.get("etag") == route.headers.get(
            "etag"
        )
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
