"""Mailchimp ``GET /3.0/reports/{campaign_id}/sent-to``: everyone a campaign went to, paged by
offset, a superset of its e-mail activity, with Mailchimp's errors and throttling."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_helpers import MAILCHIMP_AUTH

from connectors.sandbox import World
from connectors.sandbox import mailchimp_records as records


def _get(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/mailchimp/3.0{path}", params=params, auth=MAILCHIMP_AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _campaigns(client: httpx.Client) -> list[dict[str, Any]]:
    return list(_get(client, "/campaigns", count=1000)["campaigns"])


def _paged(client: httpx.Client, campaign_id: str, key: str, report: str) -> list[dict[str, Any]]:
    """Every item of a campaign report, read 40 at a time."""
    items: list[dict[str, Any]] = []
    while True:
        page = _get(client, f"/reports/{campaign_id}/{report}", count=40, offset=len(items))
        items += page[key]
        if not page[key]:
            assert len(items) == page["total_items"]
            return items


def test_sent_to_lists_every_recipient_once_by_offset(client: httpx.Client, world: World) -> None:
    members = world.tables["mailchimp.members"]
    from_feed = {
        (e["campaign_id"], records.subscriber_hash(records.member_email(world, row)))
        for row in range(len(members))
        for e in records.render_activity(world, row)
        if e["activity_type"] == "sent"
    }

    sent_to = [r for c in _campaigns(client) for r in _paged(client, c["id"], "sent_to", "sent-to")]

    keys = [(r["campaign_id"], r["email_id"]) for r in sent_to]
    assert len(keys) == len(set(keys)) and set(keys) == from_feed
    everyone = {c["id"]: c["emails_sent"] for c in _campaigns(client)}
    assert all(sum(k[0] == cid for k in keys) == n for cid, n in everyone.items())
    first = sent_to[0]
    assert first["email_id"] == records.subscriber_hash(first["email_address"])
    assert {"FNAME", "LNAME"} <= set(first["merge_fields"])
    assert {r["status"] for r in sent_to} == {"sent", "hard"}  # cleaned members bounced hard


def test_email_activity_is_a_subset_of_sent_to(client: httpx.Client) -> None:
    for campaign in _campaigns(client):
        sent_to = {r["email_id"]: r for r in _paged(client, campaign["id"], "sent_to", "sent-to")}
        activity = _paged(client, campaign["id"], "emails", "email-activity")

        assert {e["email_id"] for e in activity} <= set(sent_to)
        for email in activity:
            opens = [a["timestamp"] for a in email["activity"] if a["action"] == "open"]
            bounced = [a["type"] for a in email["activity"] if a["action"] == "bounce"]
            recipient = sent_to[email["email_id"]]
            assert recipient["open_count"] == len(opens)
            assert recipient["last_open"] == max(opens, default="")
            assert recipient["status"] == (bounced[0] if bounced else "sent")


def test_sent_to_answers_as_mailchimp_does_when_wrong(client: httpx.Client) -> None:
    path = f"/mailchimp/3.0/reports/{_campaigns(client)[0]['id']}/sent-to"

    unknown = client.get("/mailchimp/3.0/reports/0000000000/sent-to", auth=MAILCHIMP_AUTH)
    no_key = client.get(path)
    wrong_key = client.get(path, auth=("anyone", "0123456789abcdef-us21"))
    too_big = client.get(path, params={"count": 1001}, auth=MAILCHIMP_AUTH)
    bad_offset = client.get(path, params={"offset": "x"}, auth=MAILCHIMP_AUTH)
    largest = client.get(path, params={"count": 1000}, auth=MAILCHIMP_AUTH)

    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["title"] == "Resource Not Found"
    assert (no_key.status_code, no_key.json()["title"]) == (401, "API Key Missing")
    assert (wrong_key.status_code, wrong_key.json()["title"]) == (401, "API Key Invalid")
    assert too_big.status_code == 400 and "count" in too_big.json()["detail"]
    assert bad_offset.status_code == 400 and "offset" in bad_offset.json()["detail"]
    assert largest.status_code == 200


def test_sent_to_is_throttled_like_every_endpoint(client: httpx.Client) -> None:
    campaign_id = _campaigns(client)[0]["id"]
    fault = {"vendor": "mailchimp", "kind": "429", "count": 1, "path": "/sent-to"}
    assert client.post("/_sandbox/faults", json=fault).status_code == 201

    throttled = client.get(f"/mailchimp/3.0/reports/{campaign_id}/sent-to", auth=MAILCHIMP_AUTH)
    again = client.get(f"/mailchimp/3.0/reports/{campaign_id}/sent-to", auth=MAILCHIMP_AUTH)

    assert throttled.status_code == 429 and throttled.json()["title"] == "Too Many Requests"
    assert again.status_code == 200 and again.json()["sent_to"]
