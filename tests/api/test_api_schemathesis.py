"""schemathesis against the published OpenAPI document, over real HTTP.

uvicorn serves the API tests' world (tests/api/conftest.py) from a SQLite file on loopback;
schemathesis reads ``/openapi.json`` from it and, for every operation, sends generated valid and
invalid requests with a staff (branch) token and an admin token. Every answer must be: not a
5xx, a status code the document lists, of the content type it lists, with the documented
headers, and shaped as the documented schema.

schemathesis is pinned to 4.10.2: the last release that allows pyrate-limiter 3 (airbyte-cdk
pins <3.2) together with pytest 9 (4.11 and later need pyrate-limiter 4).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm_hub.api import create_app
from crm_hub.api.tokens import create_token
from crm_hub.store import open_store
from tests.api.conftest import PERSONAS, build_world
from tests.live_server import serve_in_thread

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, token per persona) of uvicorn serving the world from SQLite."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('st') / 'store.db'}")
    build_world(store)
    secrets = {
        who: create_token(store, name=who, role=role, branch=branch).secret
        for who, (role, branch) in PERSONAS.items()
    }
    app = create_app(store, phone_regions=("GB",), default_page_size=2, max_page_size=3)
    with serve_in_thread(app) as base:
        yield base, secrets
    store.dispose()


def _published_document() -> dict[str, Any]:
    """The OpenAPI document of the app (it does not depend on the store's contents)."""
    store = open_store("sqlite://")
    try:
        return create_app(store).openapi()
    finally:
        store.dispose()


# Built at collection, not from a fixture: schemathesis 4.10's lazy `from_fixture` schemas
# touch a pytest internal (`Node._nodeid`) that pytest 9 no longer has.
schema = schemathesis.openapi.from_dict(_published_document())
_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# RFC 9110 field names are tokens and values hold no control characters. Requests that break
# this are not HTTP: the server's parser answers 400 text/plain before the app (and its
# document) is reached, which is right, so such generated headers are dropped.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _http_headers(headers: dict[str, Any] | None) -> dict[str, Any] | None:
    if headers is None:
        return None
    return {
        name: value
        for name, value in headers.items()
        if _FIELD_NAME.fullmatch(name) and not _BAD_VALUE.search(str(value))
    }


def _call(case: Any, server: tuple[str, dict[str, str]], who: str) -> None:
    base, secrets = server
    case.headers = _http_headers(case.headers)
    headers = {"Authorization": f"Bearer {secrets[who]}"}
    case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)


def test_the_server_publishes_the_document_under_test(server: tuple[str, dict[str, str]]) -> None:
    published = httpx.get(f"{server[0]}/openapi.json").json()
    assert published == schema.raw_schema and len(published["paths"]) >= 9


@pytest.mark.slow
@schema.parametrize()
@_SETTINGS
def test_staff_of_a_branch_get_only_documented_answers(
    case: Any, server: tuple[str, dict[str, str]]
) -> None:
    _call(case, server, "staff_north")


@pytest.mark.slow
@schema.parametrize()
@_SETTINGS
def test_admins_get_only_documented_answers(case: Any, server: tuple[str, dict[str, str]]) -> None:
    _call(case, server, "admin")
