"""Pagination walks every record exactly once, and page limits are refused as each vendor does."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from sandbox_helpers import AUTH, MAILCHIMP_AUTH, qb_query, square_locations

from connectors.sandbox import PageLimits, SandboxConfig, SandboxServer


def _live(server: SandboxServer, table: str) -> int:
    return int((server.sandbox.world.tables[table].col("deleted") == 0).sum())


def walk_square(
    client: httpx.Client, method: str, path: str, key: str, body: dict[str, Any]
) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        if method == "GET":
            params = {**body, **({"cursor": cursor} if cursor else {})}
            answer = client.get(path, params=params, headers=AUTH["square"])
        else:
            answer = client.post(
                path,
                json={**body, **({"cursor": cursor} if cursor else {})},
                headers=AUTH["square"],
            )
        assert answer.status_code == 200, answer.text
        page = answer.json()
        ids += [item["id"] for item in page.get(key, [])]
        cursor = page.get("cursor")
        if not cursor:
            return ids


def test_square_customer_list_walks_every_customer_once(
    server: SandboxServer, client: httpx.Client
) -> None:
    ids = walk_square(client, "GET", "/square/v2/customers", "customers", {"limit": 17})
    assert len(ids) == len(set(ids)) == _live(server, "square.customers")


def test_square_customer_search_walks_every_match_once(
    server: SandboxServer, client: httpx.Client
) -> None:
    query = {
        "filter": {"updated_at": {"start_at": "2020-01-01T00:00:00Z"}},
        "sort": {"field": "CREATED_AT", "order": "DESC"},
    }
    ids = walk_square(
        client, "POST", "/square/v2/customers/search", "customers", {"limit": 13, "query": query}
    )
    assert len(ids) == len(set(ids)) == _live(server, "square.customers")


def test_square_orders_walk_every_order_once(server: SandboxServer, client: httpx.Client) -> None:
    body = {
        "location_ids": square_locations(client),
        "limit": 100,
        "query": {"sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}},
    }
    ids = walk_square(client, "POST", "/square/v2/orders/search", "orders", body)
    assert len(ids) == len(set(ids)) == len(server.sandbox.world.tables["square.orders"])


def test_square_orders_cursor_needs_the_identical_query(client: httpx.Client) -> None:
    body: dict[str, Any] = {"location_ids": square_locations(client), "limit": 5}
    cursor = client.post("/square/v2/orders/search", json=body, headers=AUTH["square"]).json()[
        "cursor"
    ]
    changed = {**body, "location_ids": body["location_ids"][:2], "cursor": cursor}
    answer = client.post("/square/v2/orders/search", json=changed, headers=AUTH["square"])
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "INVALID_CURSOR"


def test_mailchimp_offset_walk_sees_every_member_once(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    list_id = info["vendors"]["mailchimp"]["list_ids"][0]
    seen: list[str] = []
    total = None
    while total is None or len(seen) < total:
        page = client.get(
            f"/mailchimp/3.0/lists/{list_id}/members",
            params={"count": 25, "offset": len(seen)},
            auth=MAILCHIMP_AUTH,
        ).json()
        total = page["total_items"]
        assert page["members"], "ran out of pages before total_items"
        seen += [m["id"] for m in page["members"]]
    table = server.sandbox.world.tables["mailchimp.members"]
    assert len(seen) == len(set(seen)) == int((table.col("list") == 0).sum())


def test_typeform_after_token_walk_sees_every_response_once(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    form_id = info["vendors"]["typeform"]["form_ids"][0]
    seen: list[str] = []
    params: dict[str, Any] = {"page_size": 9, "sort": "submitted_at,asc"}
    while True:
        items = client.get(
            f"/typeform/forms/{form_id}/responses", params=params, headers=AUTH["typeform"]
        ).json()["items"]
        if not items:
            break
        seen += [i["token"] for i in items]
        params = {"page_size": 9, "after": items[-1]["token"]}
    table = server.sandbox.world.tables["typeform.responses"]
    assert len(seen) == len(set(seen)) == int((table.col("form") == 0).sum())
    submitted = [server.sandbox.world.tables["typeform.responses"].body(0)["submitted_at"]]
    assert submitted[0].endswith("Z")


@pytest.mark.parametrize("entity", ["Customer", "Invoice", "Payment"])
def test_quickbooks_startposition_walk_sees_every_entity_once(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any], entity: str
) -> None:
    seen: list[str] = []
    while True:
        query = (
            f"SELECT * FROM {entity} ORDERBY Metadata.LastUpdatedTime "
            f"STARTPOSITION {len(seen) + 1} MAXRESULTS 10"
        )
        page = qb_query(client, info, query).json()["QueryResponse"]
        if entity not in page:
            break
        assert page["startPosition"] == len(seen) + 1
        seen += [item["Id"] for item in page[entity]]
    table = {
        "Customer": "quickbooks.customers",
        "Invoice": "quickbooks.invoices",
        "Payment": "quickbooks.payments",
    }[entity]
    assert len(seen) == len(set(seen)) == _live(server, table)


def test_hubspot_list_walk_follows_paging_next(server: SandboxServer, client: httpx.Client) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        page = client.get(
            "/hubspot/crm/v3/objects/contacts", params=params, headers=AUTH["hubspot"]
        ).json()
        seen += [c["id"] for c in page["results"]]
        if "paging" not in page:
            break
        params = {"limit": 10, "after": page["paging"]["next"]["after"]}
    assert len(seen) == len(set(seen)) == _live(server, "hubspot.contacts")


def test_hubspot_search_walk_and_its_result_cap() -> None:
    config = SandboxConfig(
        customers=150, enforce_rate_limits=False, page_limits=PageLimits(hubspot_search_total=30)
    )
    with SandboxServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        body: dict[str, Any] = {
            "limit": 10,
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        }
        seen: list[str] = []
        answer = None
        for _ in range(10):
            answer = client.post(
                "/hubspot/crm/v3/objects/contacts/search", json=body, headers=AUTH["hubspot"]
            )
            if answer.status_code != 200:
                break
            seen += [c["id"] for c in answer.json()["results"]]
            body["after"] = answer.json()["paging"]["next"]["after"]
        assert len(seen) == len(set(seen)) == 30
        assert answer is not None and answer.status_code == 400
        assert answer.json()["category"] == "VALIDATION_ERROR"


def _mc(info: dict[str, Any]) -> str:
    return f"/mailchimp/3.0/lists/{info['vendors']['mailchimp']['list_ids'][0]}"


LIMIT_CASES = [
    (
        "square",
        "GET",
        lambda i: "/square/v2/customers",
        {"params": {"limit": 101}},
        "VALUE_TOO_HIGH",
    ),
    (
        "square",
        "POST",
        lambda i: "/square/v2/customers/search",
        {"json": {"limit": 101}},
        "VALUE_TOO_HIGH",
    ),
    (
        "square",
        "POST",
        lambda i: "/square/v2/customers/search",
        {"json": {"limit": 0}},
        "VALUE_TOO_LOW",
    ),
    (
        "mailchimp",
        "GET",
        lambda i: _mc(i) + "/members",
        {"params": {"count": 1001}},
        "Invalid Resource",
    ),
    (
        "mailchimp",
        "POST",
        _mc,
        {
            "json": {
                "members": [
                    {"email_address": f"a{n}@x.io", "status": "subscribed"} for n in range(501)
                ]
            }
        },
        "Invalid Resource",
    ),
    (
        "typeform",
        "GET",
        lambda i: f"/typeform/forms/{i['vendors']['typeform']['form_ids'][0]}/responses",
        {"params": {"page_size": 1001}},
        "VALIDATION_ERROR",
    ),
    (
        "quickbooks",
        "GET",
        lambda i: f"/quickbooks/v3/company/{i['vendors']['quickbooks']['realm_id']}/query",
        {"params": {"query": "SELECT * FROM Customer MAXRESULTS 1001"}},
        "4000",
    ),
    (
        "hubspot",
        "GET",
        lambda i: "/hubspot/crm/v3/objects/contacts",
        {"params": {"limit": 101}},
        "VALIDATION_ERROR",
    ),
    (
        "hubspot",
        "POST",
        lambda i: "/hubspot/crm/v3/objects/contacts/search",
        {"json": {"limit": 201}},
        "VALIDATION_ERROR",
    ),
    (
        "hubspot",
        "POST",
        lambda i: "/hubspot/crm/v3/objects/contacts/batch/upsert",
        {
            "json": {
                "inputs": [
                    {"idProperty": "email", "id": f"a{n}@x.io", "properties": {}}
                    for n in range(101)
                ]
            }
        },
        "VALIDATION_ERROR",
    ),
]


@pytest.mark.parametrize(
    ("vendor", "method", "path", "kwargs", "marker"),
    LIMIT_CASES,
    ids=[
        "square-list",
        "square-search-high",
        "square-search-low",
        "mailchimp-count",
        "mailchimp-batch",
        "typeform-page-size",
        "quickbooks-maxresults",
        "hubspot-list",
        "hubspot-search",
        "hubspot-batch",
    ],
)
def test_page_and_batch_limits_are_refused(
    client: httpx.Client,
    info: dict[str, Any],
    vendor: str,
    method: str,
    path: Any,
    kwargs: dict[str, Any],
    marker: str,
) -> None:
    auth: dict[str, Any] = (
        {"auth": MAILCHIMP_AUTH} if vendor == "mailchimp" else {"headers": AUTH[vendor]}
    )
    answer = client.request(method, path(info), **kwargs, **auth)
    assert answer.status_code == 400
    assert marker in answer.text


def test_square_orders_refuse_more_than_ten_locations(client: httpx.Client) -> None:
    locations = square_locations(client)
    answer = client.post(
        "/square/v2/orders/search",
        json={"location_ids": (locations * 2)[:11]},
        headers=AUTH["square"],
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "location_ids"


def test_square_orders_sort_must_match_the_time_filter(client: httpx.Client) -> None:
    query = {
        "filter": {"date_time_filter": {"updated_at": {"start_at": "2024-01-01T00:00:00Z"}}},
        "sort": {"sort_field": "CREATED_AT"},
    }
    answer = client.post(
        "/square/v2/orders/search",
        json={"location_ids": square_locations(client), "query": query},
        headers=AUTH["square"],
    )
    assert answer.status_code == 400


def test_quickbooks_parse_errors_are_validation_faults(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    answer = qb_query(client, info, "SELECT * FROMM Customer")
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"


def test_page_limits_are_configurable() -> None:
    config = dataclasses.replace(
        SandboxConfig(customers=60, enforce_rate_limits=False),
        page_limits=PageLimits(square_customers=5),
    )
    with SandboxServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        assert (
            client.get(
                "/square/v2/customers", params={"limit": 6}, headers=AUTH["square"]
            ).status_code
            == 400
        )
        assert (
            client.get(
                "/square/v2/customers", params={"limit": 5}, headers=AUTH["square"]
            ).status_code
            == 200
        )
