"""Mutations get fresh timestamps, and each vendor's incremental filter picks up exactly them."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_helpers import AUTH, MAILCHIMP_AUTH, qb_path, qb_query

from connectors.sandbox import SandboxServer
from connectors.sandbox.times import iso_seconds_offset, rfc3339_ms


def _checkpoint(server: SandboxServer) -> int:
    """A checkpoint one second before now: later than every seeded change, before any new one."""
    return server.sandbox.world.clock.peek_ms() // 1000 * 1000 - 1000


def _mutate(client: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = client.post("/_sandbox/mutate", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_square_search_returns_changed_and_added_customers(
    server: SandboxServer, client: httpx.Client
) -> None:
    since = _checkpoint(server)
    report = _mutate(client, vendor="square", changes=3, adds=2, deletes=1)
    query = {"filter": {"updated_at": {"start_at": rfc3339_ms(since)}}}
    page = client.post(
        "/square/v2/customers/search", json={"query": query}, headers=AUTH["square"]
    ).json()
    found = {c["id"] for c in page["customers"]}
    assert found == set(report["changed"]) | set(report["added"])
    assert not found & set(report["deleted"])  # Square drops deleted profiles


def test_square_orders_updated_filter_sees_new_orders(
    server: SandboxServer, client: httpx.Client
) -> None:
    since = _checkpoint(server)
    report = _mutate(client, vendor="square", table="square.orders", adds=3, changes=2)
    locations = [
        loc["id"]
        for loc in client.get("/square/v2/locations", headers=AUTH["square"]).json()["locations"]
    ]
    query = {
        "filter": {"date_time_filter": {"updated_at": {"start_at": rfc3339_ms(since)}}},
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
    }
    page = client.post(
        "/square/v2/orders/search",
        json={"location_ids": locations, "query": query},
        headers=AUTH["square"],
    ).json()
    assert {o["id"] for o in page["orders"]} == set(report["changed"]) | set(report["added"])


def test_mailchimp_since_last_changed_includes_archived_members(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    since = _checkpoint(server)
    report = _mutate(client, vendor="mailchimp", changes=2, adds=2, deletes=1)
    list_ids = info["vendors"]["mailchimp"]["list_ids"]
    found: dict[str, str] = {}
    for list_id in list_ids:
        params = {
            "since_last_changed": iso_seconds_offset(since),
            "count": 1000,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
        }
        page = client.get(
            f"/mailchimp/3.0/lists/{list_id}/members", params=params, auth=MAILCHIMP_AUTH
        ).json()
        found.update({f"{list_id}:{m['id']}": m["status"] for m in page["members"]})
    assert set(found) == set(report["changed"]) | set(report["added"]) | set(report["deleted"])
    assert {found[key] for key in report["deleted"]} == {"archived"}


def test_typeform_since_sees_new_submissions(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    since = _checkpoint(server)
    report = _mutate(client, vendor="typeform", adds=4)
    seen = set()
    for form_id in info["vendors"]["typeform"]["form_ids"]:
        params = {"since": iso_seconds_offset(since), "page_size": 1000}
        items = client.get(
            f"/typeform/forms/{form_id}/responses", params=params, headers=AUTH["typeform"]
        ).json()["items"]
        seen |= {i["response_id"] for i in items}
    assert seen == set(report["added"])


def test_quickbooks_lastupdatedtime_filter_and_inactive_customers(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    since = rfc3339_ms(_checkpoint(server))[:19] + "-00:00"
    report = _mutate(client, vendor="quickbooks", changes=2, adds=1, deletes=1)
    base = f"SELECT * FROM Customer WHERE Metadata.LastUpdatedTime > '{since}'"
    visible = qb_query(client, info, base + " ORDERBY Metadata.LastUpdatedTime").json()[
        "QueryResponse"
    ]["Customer"]
    assert {c["Id"] for c in visible} == set(report["changed"]) | set(report["added"])
    everyone = qb_query(client, info, base + " AND Active IN (true, false)").json()[
        "QueryResponse"
    ]["Customer"]
    inactive = [c for c in everyone if c["Id"] in report["deleted"]]
    assert inactive and inactive[0]["Active"] is False
    assert all(c["MetaData"]["LastUpdatedTime"][-6:] in ("-08:00", "-07:00") for c in everyone)


def test_quickbooks_cdc_reports_deleted_invoices(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    since = rfc3339_ms(_checkpoint(server))
    report = _mutate(client, vendor="quickbooks", table="quickbooks.invoices", changes=1, deletes=2)
    answer = client.get(
        qb_path(info, "cdc"),
        params={"entities": "Invoice,Customer", "changedSince": since},
        headers=AUTH["quickbooks"],
    )
    assert answer.status_code == 200
    invoices = answer.json()["CDCResponse"][0]["QueryResponse"][0]["Invoice"]
    deleted = {i["Id"] for i in invoices if i.get("status") == "Deleted"}
    assert deleted == set(report["deleted"])
    assert {i["Id"] for i in invoices} == deleted | set(report["changed"])


def test_quickbooks_cdc_refuses_more_than_thirty_days(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    answer = client.get(
        qb_path(info, "cdc"),
        params={"entities": "Customer", "changedSince": "2020-01-01T00:00:00Z"},
        headers=AUTH["quickbooks"],
    )
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"


def test_paying_an_invoice_clears_the_balance_and_adds_a_payment(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    unpaid = qb_query(client, info, "SELECT * FROM Invoice MAXRESULTS 1000").json()[
        "QueryResponse"
    ]["Invoice"]
    owing = [i for i in unpaid if i["Balance"] > 0]
    assert owing, "the story needs invoices that are still owed"
    before = len(
        qb_query(client, info, "SELECT * FROM Payment MAXRESULTS 1000").json()["QueryResponse"][
            "Payment"
        ]
    )
    _mutate(client, vendor="quickbooks", table="quickbooks.payments", adds=1)
    after = qb_query(client, info, "SELECT * FROM Payment MAXRESULTS 1000").json()["QueryResponse"][
        "Payment"
    ]
    assert len(after) == before + 1
    paid_invoice = after[-1]["Line"][0]["LinkedTxn"][0]["TxnId"]
    invoice = client.get(
        qb_path(info, f"invoice/{paid_invoice}"), headers=AUTH["quickbooks"]
    ).json()["Invoice"]
    assert invoice["Balance"] == 0


def test_hubspot_search_lastmodifieddate_gte(server: SandboxServer, client: httpx.Client) -> None:
    since = _checkpoint(server)
    report = _mutate(client, vendor="hubspot", changes=2, adds=2, deletes=1)
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)}
                ]
            }
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 100,
    }
    page = client.post(
        "/hubspot/crm/v3/objects/contacts/search", json=body, headers=AUTH["hubspot"]
    ).json()
    assert {c["id"] for c in page["results"]} == set(report["changed"]) | set(report["added"])
    assert page["total"] == len(page["results"])
    modified = [c["properties"]["lastmodifieddate"] for c in page["results"]]
    assert modified == sorted(modified)


def test_mutate_rejects_unknown_vendor_and_table(client: httpx.Client) -> None:
    assert client.post("/_sandbox/mutate", json={"vendor": "xero", "changes": 1}).status_code == 400
    assert (
        client.post(
            "/_sandbox/mutate", json={"vendor": "square", "table": "hubspot.contacts"}
        ).status_code
        == 400
    )


def test_changes_counts_the_records_a_mutation_stamped(client: httpx.Client) -> None:
    members = _mutate(client, vendor="mailchimp", changes=3, adds=1)
    invoices = _mutate(
        client, vendor="quickbooks", table="quickbooks.invoices", changes=2, deletes=1
    )

    counts = client.get("/_sandbox/changes", params={"since": members["stamped_at"]}).json()
    later = client.get("/_sandbox/changes", params={"since": invoices["stamped_at"]}).json()

    assert counts["tables"]["mailchimp.members"] == 4
    assert counts["tables"]["quickbooks.invoices"] == 3
    assert counts["tables"]["quickbooks.deleted_invoices"] == 1
    assert counts["tables"]["square.customers"] == 0
    assert counts["tables"]["mailchimp.email_activity"] > 0  # their activity moves with them
    assert counts["tables"]["mailchimp.sent_to"] == 0  # no campaign was sent
    assert later["tables"]["mailchimp.members"] == 0  # stamped before the invoices
    assert client.get("/_sandbox/changes", params={"since": "soon"}).status_code == 400
