"""target-crmhub-mailchimp against the loopback sandbox: upserts, rejections, 429s, compliance."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from targets_helpers import MAILCHIMP_AUTH, messages, run_target, sandbox_requests

from connectors.sandbox import SandboxServer
from connectors.target_common import DestinationAuthError, DestinationUnavailable
from connectors.target_mailchimp import TargetMailchimp
from connectors.target_mailchimp.sinks import subscriber_hash


def member(sandbox: SandboxServer, config: dict[str, Any], email: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{sandbox.vendor_url('mailchimp')}/3.0/lists/{config['list_id']}/members/"
        f"{subscriber_hash(email)}",
        auth=MAILCHIMP_AUTH,
    )
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def first_member(sandbox: SandboxServer, config: dict[str, Any], status: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{sandbox.vendor_url('mailchimp')}/3.0/lists/{config['list_id']}/members",
        params={"status": status, "count": 1},
        auth=MAILCHIMP_AUTH,
    )
    found: dict[str, Any] = answer.json()["members"][0]
    return found


def people(count: int, bad_every: int = 0) -> list[dict[str, Any]]:
    """``count`` new consenting people; every ``bad_every``-th has an invalid address."""
    rows = []
    for i in range(count):
        bad = bad_every and i % bad_every == bad_every - 1
        email = f"person{i}@example" if bad else f"person{i}@example.com"
        rows.append({"id": f"m-{i}", "email": email, "first_name": f"P{i}", "email_consent": True})
    return rows


def test_new_and_existing_members_land_with_merge_fields_tags_and_status(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    existing = first_member(sandbox, mailchimp_config, "subscribed")
    records: list[dict[str, Any]] = [
        {
            "id": "m-1",
            "email": "Ann.New@Example.com",
            "first_name": "Ann",
            "last_name": "New",
            "email_consent": True,
            "segments": ["VIP", "Soho regulars"],
        },
        {"id": "m-2", "email": "bob.noconsent@example.com", "first_name": "Bob"},
        {
            "id": "m-3",
            "email": existing["email_address"],
            "first_name": "Renamed",
            "email_consent": None,
        },
    ]

    run = run_target(TargetMailchimp, mailchimp_config, messages("profiles", records))

    assert run.confirmed == ["m-1", "m-2", "m-3"]
    assert run.rejected == {}
    ann = member(sandbox, mailchimp_config, "ann.new@example.com")
    assert ann["id"] == subscriber_hash("ann.new@example.com")
    assert (ann["status"], ann["merge_fields"]["FNAME"], ann["merge_fields"]["LNAME"]) == (
        "subscribed",
        "Ann",
        "New",
    )
    assert {t["name"] for t in ann["tags"]} == {"VIP", "Soho regulars"}
    assert member(sandbox, mailchimp_config, "bob.noconsent@example.com")["status"] == (
        "transactional"
    )
    updated = member(sandbox, mailchimp_config, existing["email_address"])
    assert (updated["status"], updated["merge_fields"]["FNAME"]) == ("subscribed", "Renamed")


def test_five_percent_invalid_emails_are_rejected_with_mailchimps_reason_and_the_rest_land(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any], rejections: Path
) -> None:
    records = people(60, bad_every=20)  # 3 of 60

    run = run_target(
        TargetMailchimp, {**mailchimp_config, "batch_size": 25}, messages("profiles", records)
    )

    bad = {"m-19", "m-39", "m-59"}
    assert sorted(run.confirmed) == sorted(r["id"] for r in records if r["id"] not in bad)
    assert set(run.rejected) == bad
    assert len(run.reports) == 3  # one STATE per batch of 25
    lines = {line["key"]: line for line in run.rejections}
    assert set(lines) == bad
    assert lines["m-19"]["status"] == 400
    assert lines["m-19"]["reason"].startswith("HTTP 400 Invalid Resource: person19@example looks")
    assert lines["m-19"]["stream"] == "profiles"
    for record in records:
        if record["id"] not in bad:
            assert member(sandbox, mailchimp_config, record["email"])["status"] == "subscribed"


def test_a_4xx_is_not_retried(sandbox: SandboxServer, mailchimp_config: dict[str, Any]) -> None:
    run_target(TargetMailchimp, mailchimp_config, messages("profiles", people(4, bad_every=2)))

    puts = [r for r in sandbox_requests(sandbox, "mailchimp") if r["method"] == "PUT"]
    assert sorted(r["status"] for r in puts) == [200, 200, 400, 400]


def test_a_429_storm_is_survived_by_waiting_what_retry_after_asks(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("mailchimp", "429", count=12, retry_after=1)
    records = people(20)

    started = time.monotonic()
    run = run_target(TargetMailchimp, mailchimp_config, messages("profiles", records))
    elapsed = time.monotonic() - started

    assert sorted(run.confirmed) == sorted(r["id"] for r in records)
    statuses = [r["status"] for r in sandbox_requests(sandbox, "mailchimp")]
    assert statuses.count(429) == 12
    assert elapsed >= 1.0  # backoff alone (0.05 s steps) would not have waited this long
    assert member(sandbox, mailchimp_config, "person19@example.com")["status"] == "subscribed"


def test_an_unsubscribed_or_cleaned_member_is_never_resubscribed(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    gone = first_member(sandbox, mailchimp_config, "unsubscribed")
    cleaned = first_member(sandbox, mailchimp_config, "cleaned")
    records = [
        {"id": "u", "email": gone["email_address"], "first_name": "Still", "email_consent": True},
        {"id": "c", "email": cleaned["email_address"], "email_consent": True},
    ]

    run = run_target(TargetMailchimp, mailchimp_config, messages("profiles", records))

    assert run.confirmed == ["u", "c"]
    after = member(sandbox, mailchimp_config, gone["email_address"])
    assert (after["status"], after["merge_fields"]["FNAME"]) == ("unsubscribed", "Still")
    assert member(sandbox, mailchimp_config, cleaned["email_address"])["status"] == "cleaned"


def test_an_opt_out_recorded_by_the_hub_unsubscribes_a_subscriber(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    subscribed = first_member(sandbox, mailchimp_config, "subscribed")
    records = [{"id": "s", "email": subscribed["email_address"], "email_consent": False}]

    run_target(TargetMailchimp, mailchimp_config, messages("profiles", records))

    assert member(sandbox, mailchimp_config, subscribed["email_address"])["status"] == (
        "unsubscribed"
    )


def test_tags_follow_segments_within_the_hubs_prefix_only(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    config = {**mailchimp_config, "tag_prefix": "hub:"}
    email = "tagged@example.com"
    first = [{"id": "t", "email": email, "email_consent": True, "segments": ["vip", "lapsed"]}]
    run_target(TargetMailchimp, config, messages("profiles", first))
    httpx.post(
        f"{sandbox.vendor_url('mailchimp')}/3.0/lists/{config['list_id']}/members/"
        f"{subscriber_hash(email)}/tags",
        json={"tags": [{"name": "staff-added", "status": "active"}]},
        auth=MAILCHIMP_AUTH,
    ).raise_for_status()

    second = [{"id": "t", "email": email, "segments": ["vip", "birthday"]}]
    run_target(TargetMailchimp, config, messages("profiles", second))

    tags = {t["name"] for t in member(sandbox, config, email)["tags"]}
    assert tags == {"hub:vip", "hub:birthday", "staff-added"}


def test_segments_exited_removes_tags_without_a_prefix(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    email = "leaver@example.com"
    first = [{"id": "l", "email": email, "email_consent": True, "segments": ["vip", "lapsed"]}]
    run_target(TargetMailchimp, mailchimp_config, messages("profiles", first))

    second = [{"id": "l", "email": email, "segments": ["vip"], "segments_exited": ["lapsed"]}]
    run_target(TargetMailchimp, mailchimp_config, messages("profiles", second))

    assert {t["name"] for t in member(sandbox, mailchimp_config, email)["tags"]} == {"vip"}


def test_deleted_archives_and_erase_forgets_the_address_for_good(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    a, b = first_member(sandbox, mailchimp_config, "subscribed"), people(1)[0]
    run_target(TargetMailchimp, mailchimp_config, messages("profiles", [b]))
    records = [
        {"id": "a", "email": a["email_address"], "_deleted": True},
        {"id": b["id"], "email": b["email"], "_erase": True},
        {"id": "never", "email": "never.there@example.com", "_deleted": True},
    ]

    run = run_target(TargetMailchimp, mailchimp_config, messages("profiles", records))

    assert run.confirmed == ["a", b["id"], "never"]
    assert member(sandbox, mailchimp_config, a["email_address"])["status"] == "archived"
    again = run_target(TargetMailchimp, mailchimp_config, messages("profiles", [b]))
    assert again.rejected[b["id"]].startswith("HTTP 400 Forgotten Email Not Subscribed")


def test_a_destination_down_past_the_retries_stops_the_run_without_confirming(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("mailchimp", "5xx", count=50, status=503)
    config = {**mailchimp_config, "max_attempts": 3}

    with pytest.raises(DestinationUnavailable, match="still failing after 3 attempts"):
        run_target(TargetMailchimp, config, messages("profiles", people(2)))


def test_a_time_budget_too_short_for_retry_after_gives_up_at_once(
    sandbox: SandboxServer, mailchimp_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("mailchimp", "429", count=5, retry_after=30)
    config = {**mailchimp_config, "time_budget_seconds": 5, "concurrency": 1}

    started = time.monotonic()
    with pytest.raises(DestinationUnavailable, match="time budget"):
        run_target(TargetMailchimp, config, messages("profiles", people(1)))
    assert time.monotonic() - started < 5


def test_a_wrong_api_key_stops_the_run_naming_the_credentials(
    mailchimp_config: dict[str, Any],
) -> None:
    config = {**mailchimp_config, "api_key": "wrong-us21"}

    with pytest.raises(DestinationAuthError, match="HTTP 401"):
        run_target(TargetMailchimp, config, messages("profiles", people(1)))
