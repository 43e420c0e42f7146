"""Writes a destination connector makes: Mailchimp upserts and rules, HubSpot upserts and lists,
Typeform webhooks signed over the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from sandbox_helpers import AUTH, MAILCHIMP_AUTH

from connectors.sandbox import build_signed_webhook, sign, verify_signature


def _md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 (Mailchimp's scheme)


@pytest.fixture
def members(info: dict[str, Any]) -> str:
    return f"/mailchimp/3.0/lists/{info['vendors']['mailchimp']['list_ids'][0]}/members"


def test_mailchimp_put_creates_then_updates_a_member(client: httpx.Client, members: str) -> None:
    email = "Ada.Lovelace@Example.com"
    body = {"email_address": email, "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}}
    created = client.put(f"{members}/{_md5(email)}", json=body, auth=MAILCHIMP_AUTH)
    assert created.status_code == 200
    assert created.json()["id"] == _md5(email) and created.json()["status"] == "subscribed"
    updated = client.put(
        f"{members}/{_md5(email)}",
        json={**body, "merge_fields": {"LNAME": "Lovelace"}},
        auth=MAILCHIMP_AUTH,
    )
    assert (
        updated.json()["merge_fields"]["FNAME"] == "Ada"
        and updated.json()["merge_fields"]["LNAME"] == "Lovelace"
    )
    assert client.get(f"{members}/{email}", auth=MAILCHIMP_AUTH).json()["id"] == _md5(email)


def test_mailchimp_new_member_needs_a_status(client: httpx.Client, members: str) -> None:
    answer = client.put(
        f"{members}/{_md5('x@example.com')}",
        json={"email_address": "x@example.com"},
        auth=MAILCHIMP_AUTH,
    )
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == "status_if_new"


def test_unsubscribed_member_can_only_come_back_through_pending(
    client: httpx.Client, members: str
) -> None:
    unsubscribed = client.get(
        members, params={"status": "unsubscribed", "count": 1}, auth=MAILCHIMP_AUTH
    ).json()["members"][0]
    path = f"{members}/{unsubscribed['id']}"
    refused = client.put(
        path,
        json={"email_address": unsubscribed["email_address"], "status": "subscribed"},
        auth=MAILCHIMP_AUTH,
    )
    assert refused.status_code == 400
    assert refused.json()["title"] == "Member In Compliance State"
    pending = client.put(
        path,
        json={"email_address": unsubscribed["email_address"], "status": "pending"},
        auth=MAILCHIMP_AUTH,
    )
    assert pending.status_code == 200 and pending.json()["status"] == "pending"


def test_permanently_deleted_address_cannot_be_re_added(client: httpx.Client, members: str) -> None:
    member = client.get(members, params={"count": 1}, auth=MAILCHIMP_AUTH).json()["members"][0]
    assert (
        client.post(
            f"{members}/{member['id']}/actions/delete-permanent", auth=MAILCHIMP_AUTH
        ).status_code
        == 204
    )
    again = client.put(
        f"{members}/{member['id']}",
        json={"email_address": member["email_address"], "status_if_new": "subscribed"},
        auth=MAILCHIMP_AUTH,
    )
    assert again.status_code == 400
    assert again.json()["title"] == "Forgotten Email Not Subscribed"


def test_mailchimp_batch_answers_200_with_per_member_errors(
    client: httpx.Client, members: str
) -> None:
    existing = client.get(
        members, params={"count": 1, "status": "subscribed"}, auth=MAILCHIMP_AUTH
    ).json()["members"][0]
    batch = {
        "members": [
            {"email_address": "fresh@example.org", "status": "subscribed"},
            {"email_address": existing["email_address"], "status": "subscribed"},
            {"email_address": "not-an-email", "status": "subscribed"},
        ],
        "update_existing": False,
    }
    answer = client.post(members.rsplit("/members", 1)[0], json=batch, auth=MAILCHIMP_AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert body["total_created"] == 1 and body["error_count"] == 2
    assert {e["error_code"] for e in body["errors"]} == {"ERROR_CONTACT_EXISTS", "ERROR_GENERIC"}
    batch["update_existing"] = True
    assert (
        client.post(members.rsplit("/members", 1)[0], json=batch, auth=MAILCHIMP_AUTH).json()[
            "total_updated"
        ]
        == 2
    )


def test_mailchimp_tags_segments_and_activity(client: httpx.Client, members: str) -> None:
    member = client.get(members, params={"count": 1}, auth=MAILCHIMP_AUTH).json()["members"][0]
    tags = {"tags": [{"name": "VIP", "status": "active"}]}
    assert (
        client.post(f"{members}/{member['id']}/tags", json=tags, auth=MAILCHIMP_AUTH).status_code
        == 204
    )
    names = [
        t["name"]
        for t in client.get(f"{members}/{member['id']}/tags", auth=MAILCHIMP_AUTH).json()["tags"]
    ]
    assert "VIP" in names
    list_path = members.rsplit("/members", 1)[0]
    segment = client.post(
        f"{list_path}/segments",
        json={"name": "Regulars", "static_segment": [member["email_address"], "nobody@nowhere.io"]},
        auth=MAILCHIMP_AUTH,
    ).json()
    assert segment["member_count"] == 1
    changed = client.post(
        f"{list_path}/segments/{segment['id']}",
        json={"members_to_remove": [member["email_address"]]},
        auth=MAILCHIMP_AUTH,
    )
    assert changed.json()["total_removed"] == 1
    feed = client.get(f"{members}/{member['id']}/activity-feed", auth=MAILCHIMP_AUTH).json()
    assert feed["activity"] and {"activity_type", "created_at_timestamp"} <= set(
        feed["activity"][0]
    )


def test_hubspot_batch_upsert_creates_updates_and_reports_partial_failure(
    client: httpx.Client,
) -> None:
    url = "/hubspot/crm/v3/objects/contacts/batch/upsert"
    good = {
        "idProperty": "email",
        "id": "grace@example.org",
        "properties": {"firstname": "Grace", "crm_hub_master_id": "M1"},
    }
    first = client.post(url, json={"inputs": [good]}, headers=AUTH["hubspot"])
    assert first.status_code == 200 and first.json()["results"][0]["new"] is True
    second = client.post(url, json={"inputs": [good]}, headers=AUTH["hubspot"])
    assert second.json()["results"][0]["new"] is False
    mixed = [
        {"idProperty": "email", "id": "alan@example.org", "properties": {"firstname": "Alan"}},
        {"idProperty": "email", "id": "bad@example.org", "properties": {"firstname": 42}},
        {"idProperty": "email", "id": "worse@example.org", "properties": {"no_such_property": "x"}},
    ]
    partial = client.post(url, json={"inputs": mixed}, headers=AUTH["hubspot"])
    assert partial.status_code == 207
    body = partial.json()
    assert body["numErrors"] == 2 and len(body["results"]) == 1
    props = body["results"][0]["properties"]
    assert all(v is None or isinstance(v, str) for v in props.values())
    fetched = client.get(
        "/hubspot/crm/v3/objects/contacts/grace@example.org",
        params={"idProperty": "email", "properties": "crm_hub_master_id"},
        headers=AUTH["hubspot"],
    )
    assert fetched.json()["properties"]["crm_hub_master_id"] == "M1"


def test_hubspot_lists_add_and_remove_members(client: httpx.Client) -> None:
    created = client.post(
        "/hubspot/crm/v3/lists",
        json={"name": "Birthday this month", "objectTypeId": "0-1", "processingType": "MANUAL"},
        headers=AUTH["hubspot"],
    )
    list_id = created.json()["list"]["listId"]
    ids = [
        c["id"]
        for c in client.get(
            "/hubspot/crm/v3/objects/contacts", params={"limit": 3}, headers=AUTH["hubspot"]
        ).json()["results"]
    ]
    added = client.put(
        f"/hubspot/crm/v3/lists/{list_id}/memberships/add",
        json=[*ids, "999999999"],
        headers=AUTH["hubspot"],
    ).json()
    assert added["recordIdsAdded"] == ids and added["recordIdsMissing"] == ["999999999"]
    removed = client.put(
        f"/hubspot/crm/v3/lists/{list_id}/memberships/remove", json=ids[:1], headers=AUTH["hubspot"]
    ).json()
    assert removed["recordIdsRemoved"] == ids[:1]
    listed = client.get(
        f"/hubspot/crm/v3/lists/{list_id}/memberships", headers=AUTH["hubspot"]
    ).json()["results"]
    assert [m["recordId"] for m in listed] == ids[1:]
    duplicate = client.post(
        "/hubspot/crm/v3/lists",
        json={"name": "Birthday this month", "objectTypeId": "0-1"},
        headers=AUTH["hubspot"],
    )
    assert duplicate.status_code == 409


def test_signature_is_hmac_sha256_over_the_raw_body() -> None:
    body = b'{"event_id":"01","form_response":{"answers":[]}}'
    expected = (
        "sha256=" + base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    )
    assert sign("s3cret", body) == expected
    signed = build_signed_webhook("s3cret", body, "http://127.0.0.1/hook")
    assert signed.body == body and signed.headers["Typeform-Signature"] == expected
    assert verify_signature("s3cret", body, expected)
    assert not verify_signature("s3cret", body + b" ", expected)
    assert not verify_signature("other", body, expected)
    assert not verify_signature("s3cret", body, None)


def test_sandbox_delivers_a_signed_webhook_for_a_new_submission(
    client: httpx.Client, info: dict[str, Any], httpserver: HTTPServer
) -> None:
    form_id = info["vendors"]["typeform"]["form_ids"][0]
    httpserver.expect_request("/typeform-hook", method="POST").respond_with_data("ok")
    hook = {"url": httpserver.url_for("/typeform-hook"), "enabled": True, "secret": "hook-secret"}
    registered = client.put(
        f"/typeform/forms/{form_id}/webhooks/crm-hub", json=hook, headers=AUTH["typeform"]
    )
    assert registered.status_code == 200 and "secret" not in registered.json()
    delivered = client.post("/_sandbox/typeform/deliver", json={"form_id": form_id})
    assert delivered.json()["deliveries"][0]["status"] == 200
    (request, _response), *_ = httpserver.log
    raw = request.get_data()
    assert verify_signature("hook-secret", raw, request.headers["Typeform-Signature"])
    event = httpx.Response(200, content=raw).json()
    assert event["event_type"] == "form_response" and event["form_response"]["form_id"] == form_id
    token = delivered.json()["response_id"]
    responses = client.get(
        f"/typeform/forms/{form_id}/responses", params={"page_size": 5}, headers=AUTH["typeform"]
    ).json()
    assert token in [r["token"] for r in responses["items"]]


def test_webhooks_never_leave_loopback(client: httpx.Client, info: dict[str, Any]) -> None:
    form_id = info["vendors"]["typeform"]["form_ids"][1]
    hook = {"url": "https://hooks.example.com/typeform", "enabled": True, "secret": "x"}
    client.put(f"/typeform/forms/{form_id}/webhooks/remote", json=hook, headers=AUTH["typeform"])
    outcome = client.post("/_sandbox/typeform/deliver", json={"form_id": form_id}).json()[
        "deliveries"
    ][0]
    assert "WebhookDeliveryError" in outcome["error"] and "status" not in outcome
