"""Mailchimp campaigns and per-campaign reports: paging, ``since``, errors, and agreement with the
members' activity feed they are derived from."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from sandbox_helpers import CUSTOMERS, MAILCHIMP_AUTH, SEED

from connectors.sandbox import SandboxConfig, SandboxServer, World
from connectors.sandbox import mailchimp_records as records
from connectors.sandbox.times import parse_instant


def _get(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/mailchimp/3.0{path}", params=params, auth=MAILCHIMP_AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _all_campaigns(client: httpx.Client) -> list[dict[str, Any]]:
    return list(_get(client, "/campaigns", count=1000)["campaigns"])


def _all_emails(client: httpx.Client, campaign_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every recipient of a campaign, read 50 at a time."""
    emails: list[dict[str, Any]] = []
    while True:
        page = _get(
            client, f"/reports/{campaign_id}/email-activity", count=50, offset=len(emails), **params
        )
        emails += page["emails"]
        if len(emails) >= page["total_items"]:
            assert not page["emails"] or len(emails) == page["total_items"]
            return emails


def test_campaigns_page_by_offset_in_send_order(client: httpx.Client) -> None:
    everything = _all_campaigns(client)
    first = _get(client, "/campaigns", count=5, offset=0)
    rest = _get(client, "/campaigns", count=1000, offset=5)

    assert first["total_items"] == len(everything) == 2 * records.CAMPAIGNS_PER_LIST
    assert [c["id"] for c in first["campaigns"] + rest["campaigns"]] == [
        c["id"] for c in everything
    ]
    assert [c["create_time"] for c in everything] == sorted(c["create_time"] for c in everything)
    assert {c["status"] for c in everything} == {"sent"}


def test_campaigns_filter_by_send_time_and_audience(client: httpx.Client, info: dict) -> None:
    everything = _all_campaigns(client)
    cut = sorted(c["send_time"] for c in everything)[len(everything) // 2]
    since = _get(client, "/campaigns", count=1000, since_send_time=cut)["campaigns"]
    list_id = info["vendors"]["mailchimp"]["list_ids"][1]
    one_list = _get(client, "/campaigns", count=1000, list_id=list_id)["campaigns"]

    assert since and all(c["send_time"] >= cut for c in since)
    assert len(since) < len(everything)
    assert len(one_list) == records.CAMPAIGNS_PER_LIST
    assert {c["recipients"]["list_id"] for c in one_list} == {list_id}


def test_email_activity_agrees_with_the_activity_feed(client: httpx.Client, world: World) -> None:
    members = world.tables["mailchimp.members"]
    from_feed: Counter[tuple[str, str, str, str]] = Counter()
    for row in range(len(members)):
        email_id = records.subscriber_hash(records.member_email(world, row))
        for e in records.render_activity(world, row):
            if e["activity_type"] in ("open", "click", "bounce"):
                key = (e["campaign_id"], email_id, e["activity_type"], e["created_at_timestamp"])
                from_feed[key] += 1

    from_reports: Counter[tuple[str, str, str, str]] = Counter()
    for campaign in _all_campaigns(client):
        emails = _all_emails(client, campaign["id"])
        assert len(emails) == campaign["emails_sent"]  # every recipient, most without activity
        for email in emails:
            for action in email["activity"]:
                key = (campaign["id"], email["email_id"], action["action"], action["timestamp"])
                from_reports[key] += 1

    assert from_reports == from_feed
    assert {k[2] for k in from_reports} == {"open", "click", "bounce"}


def test_email_activity_since_keeps_later_actions_only(client: httpx.Client) -> None:
    campaign = max(_all_campaigns(client), key=lambda c: c["emails_sent"])
    actions = [a["timestamp"] for e in _all_emails(client, campaign["id"]) for a in e["activity"]]
    since = sorted(actions)[len(actions) // 2]

    later = _all_emails(client, campaign["id"], since=since)

    kept = [a["timestamp"] for e in later for a in e["activity"]]
    assert sorted(kept) == sorted(t for t in actions if parse_instant(t) > parse_instant(since))
    assert all(e["activity"] for e in later)  # recipients with nothing after it are left out


def test_unsubscribes_are_the_feeds_unsub_events(client: httpx.Client, world: World) -> None:
    members = world.tables["mailchimp.members"]
    expected = sorted(
        e["created_at_timestamp"]
        for row in range(len(members))
        for e in records.render_activity(world, row)
        if e["activity_type"] == "unsub"
    )
    unsubscribes = [
        u
        for c in _all_campaigns(client)
        for u in _get(client, f"/reports/{c['id']}/unsubscribed", count=1000)["unsubscribes"]
    ]

    assert expected and sorted(u["timestamp"] for u in unsubscribes) == expected
    assert all(u["reason"] for u in unsubscribes)


def test_reports_answer_as_mailchimp_does_when_wrong(client: httpx.Client) -> None:
    campaign_id = _all_campaigns(client)[0]["id"]
    path = f"/mailchimp/3.0/reports/{campaign_id}/email-activity"

    unknown = client.get("/mailchimp/3.0/reports/0000000000/email-activity", auth=MAILCHIMP_AUTH)
    no_key = client.get(path)
    wrong_key = client.get(path, auth=("anyone", "0123456789abcdef-us21"))
    too_big = client.get(path, params={"count": 1001}, auth=MAILCHIMP_AUTH)
    bad_since = client.get(path, params={"since": "yesterday"}, auth=MAILCHIMP_AUTH)

    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "instance"} <= set(unknown.json())
    assert unknown.json()["title"] == "Resource Not Found"
    assert (no_key.status_code, no_key.json()["title"]) == (401, "API Key Missing")
    assert (wrong_key.status_code, wrong_key.json()["title"]) == (401, "API Key Invalid")
    assert too_big.status_code == 400 and "count" in too_big.json()["detail"]
    assert bad_since.status_code == 400 and "since" in bad_since.json()["detail"]


def test_reports_are_throttled_like_every_endpoint(client: httpx.Client) -> None:
    campaign_id = _all_campaigns(client)[0]["id"]
    fault = {"vendor": "mailchimp", "kind": "429", "count": 1, "path": "/email-activity"}
    assert client.post("/_sandbox/faults", json=fault).status_code == 201

    answer = client.get(f"/mailchimp/3.0/reports/{campaign_id}/email-activity", auth=MAILCHIMP_AUTH)

    assert answer.status_code == 429 and answer.json()["title"] == "Too Many Requests"


def test_prerender_serves_the_same_reports() -> None:
    answers = []
    for prerender in (False, True):
        config = SandboxConfig(seed=SEED, customers=CUSTOMERS, prerender=prerender)
        with SandboxServer(config) as server, httpx.Client(base_url=server.url) as client:
            campaigns = _all_campaigns(client)
            answers.append([_all_emails(client, c["id"]) for c in campaigns])

    assert answers[0] == answers[1]


def test_reports_follow_member_changes(server: SandboxServer, client: httpx.Client) -> None:
    campaign = max(_all_campaigns(client), key=lambda c: c["emails_sent"])
    before = _all_emails(client, campaign["id"])
    changed = client.post("/_sandbox/mutate", json={"vendor": "mailchimp", "changes": 20})
    assert changed.status_code in (200, 201), changed.text

    after = _all_emails(client, campaign["id"])

    assert after != before
