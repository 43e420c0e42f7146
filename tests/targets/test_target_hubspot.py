"""target-crmhub-hubspot against the loopback sandbox: batch upsert, item errors, 429s, lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from targets_helpers import HUBSPOT_AUTH, messages, run_target, sandbox_requests

from connectors.sandbox import SandboxServer
from connectors.target_hubspot import TargetHubSpot


def contact(sandbox: SandboxServer, email: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{sandbox.vendor_url('hubspot')}/crm/v3/objects/contacts/{email}",
        params={"idProperty": "email", "properties": "email,firstname,lastname,total_spend"},
        headers=HUBSPOT_AUTH,
    )
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def new_list(sandbox: SandboxServer, name: str) -> str:
    answer = httpx.post(
        f"{sandbox.vendor_url('hubspot')}/crm/v3/lists",
        json={"name": name, "objectTypeId": "0-1", "processingType": "MANUAL"},
        headers=HUBSPOT_AUTH,
    )
    answer.raise_for_status()
    return str(answer.json()["list"]["listId"])


def list_members(sandbox: SandboxServer, list_id: str) -> set[str]:
    answer = httpx.get(
        f"{sandbox.vendor_url('hubspot')}/crm/v3/lists/{list_id}/memberships",
        params={"limit": 250},
        headers=HUBSPOT_AUTH,
    )
    answer.raise_for_status()
    return {r["recordId"] for r in answer.json()["results"]}


def people(count: int, bad_every: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        bad = bad_every and i % bad_every == bad_every - 1
        rows.append(
            {
                "id": f"m-{i}",
                "email": f"person{i}@nowhere" if bad else f"person{i}@example.com",
                "first_name": f"P{i}",
                "spend": 12.5 + i,
            }
        )
    return rows


def test_contacts_are_upserted_by_email_with_mapped_string_properties(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    config = {**hubspot_config, "properties": {"firstname": "first_name", "total_spend": "spend"}}
    existing = contact(sandbox, "christinewilliams3415@gmail.com")
    records: list[dict[str, Any]] = [
        {"id": "new", "email": "New.Person@Example.com", "first_name": "Nia", "spend": 40.25},
        {"id": "old", "email": "christinewilliams3415@gmail.com", "first_name": "Christine"},
    ]

    run = run_target(TargetHubSpot, config, messages("profiles", records))

    assert run.confirmed == ["new", "old"]
    created = contact(sandbox, "new.person@example.com")["properties"]
    assert (created["firstname"], created["total_spend"]) == ("Nia", "40.25")
    updated = contact(sandbox, "christinewilliams3415@gmail.com")
    assert updated["id"] == existing["id"]
    assert updated["properties"]["firstname"] == "Christine"


def test_five_percent_invalid_emails_are_rejected_with_hubspots_item_error(
    sandbox: SandboxServer, hubspot_config: dict[str, Any], rejections: Path
) -> None:
    records = people(120, bad_every=20)  # 6 of 120, over two batches

    run = run_target(TargetHubSpot, hubspot_config, messages("profiles", records))

    bad = {f"m-{i}" for i in range(19, 120, 20)}
    assert len(run.reports) == 2
    assert set(run.rejected) == bad
    assert sorted(run.confirmed) == sorted(r["id"] for r in records if r["id"] not in bad)
    line = next(x for x in run.rejections if x["key"] == "m-19")
    assert line["reason"] == (
        "HTTP 207 item error VALIDATION_ERROR: Email address person19@nowhere is invalid"
    )
    assert contact(sandbox, "person18@example.com")["properties"]["firstname"] == "P18"


def test_an_unknown_property_rejects_the_records_not_the_run(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    config = {**hubspot_config, "properties": {"no_such_property": "first_name"}}

    run = run_target(TargetHubSpot, config, messages("profiles", people(2)))

    assert run.rejected == {
        "m-0": 'HTTP 207 item error VALIDATION_ERROR: Property "no_such_property" does not exist',
        "m-1": 'HTTP 207 item error VALIDATION_ERROR: Property "no_such_property" does not exist',
    }


def test_a_429_storm_is_survived_and_every_contact_lands(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("hubspot", "429", count=4, retry_after=1)
    records = people(30)

    run = run_target(
        TargetHubSpot, {**hubspot_config, "batch_size": 10}, messages("profiles", records)
    )

    assert sorted(run.confirmed) == sorted(r["id"] for r in records)
    statuses = [r["status"] for r in sandbox_requests(sandbox, "hubspot")]
    assert statuses.count(429) == 4
    assert statuses.count(200) == 3


def test_segments_keep_the_mapped_lists_in_step(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    vip, lapsed = new_list(sandbox, "VIP"), new_list(sandbox, "Lapsed")
    config = {**hubspot_config, "segment_lists": {"vip": vip, "lapsed": lapsed}}
    first = [
        {"id": "a", "email": "a@example.com", "segments": ["vip", "lapsed"]},
        {"id": "b", "email": "b@example.com", "segments": ["vip"]},
    ]
    run_target(TargetHubSpot, config, messages("profiles", first))
    a_id = contact(sandbox, "a@example.com")["id"]
    b_id = contact(sandbox, "b@example.com")["id"]
    assert (list_members(sandbox, vip), list_members(sandbox, lapsed)) == ({a_id, b_id}, {a_id})

    second = [{"id": "a", "email": "a@example.com", "segments": []}]
    run = run_target(TargetHubSpot, config, messages("profiles", second))

    assert run.confirmed == ["a"]
    assert (list_members(sandbox, vip), list_members(sandbox, lapsed)) == ({b_id}, set())


def test_a_missing_list_rejects_the_records_it_concerns(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    config = {**hubspot_config, "segment_lists": {"vip": "999"}}
    records: list[dict[str, Any]] = [
        {"id": "a", "email": "a@example.com", "segments": ["vip"]},
        {"id": "b", "email": "b@example.com"},  # no segments field: lists untouched
    ]

    run = run_target(TargetHubSpot, config, messages("profiles", records))

    assert run.confirmed == ["b"]
    assert run.rejected["a"].startswith("list 999: HTTP 404 OBJECT_NOT_FOUND")


def test_records_without_email_and_duplicates_in_a_batch(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    records = [
        {"id": "x", "first_name": "No mail"},
        {"id": "d1", "email": "dup@example.com", "first_name": "First"},
        {"id": "d2", "email": "DUP@example.com", "first_name": "Last"},
    ]

    run = run_target(TargetHubSpot, hubspot_config, messages("profiles", records))

    assert run.rejected == {"x": "no e-mail address in field 'email'; not sent"}
    assert sorted(run.confirmed) == ["d1", "d2"]
    assert contact(sandbox, "dup@example.com")["properties"]["firstname"] == "Last"


def lookup(sandbox: SandboxServer, email: str) -> int:
    """HTTP status of reading a contact by e-mail (200: live, 404: gone)."""
    return httpx.get(
        f"{sandbox.vendor_url('hubspot')}/crm/v3/objects/contacts/{email}",
        params={"idProperty": "email"},
        headers=HUBSPOT_AUTH,
    ).status_code


def subscriptions(sandbox: SandboxServer, email: str) -> dict[str, str]:
    answer = httpx.get(
        f"{sandbox.vendor_url('hubspot')}/communication-preferences/v3/status/email/{email}",
        headers=HUBSPOT_AUTH,
    )
    answer.raise_for_status()
    return {s["name"]: s["status"] for s in answer.json()["subscriptionStatuses"]}


def test_deleted_records_archive_the_contact_and_unknown_ones_count_as_done(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    vip = new_list(sandbox, "VIP")
    config = {**hubspot_config, "segment_lists": {"vip": vip}}
    run_target(TargetHubSpot, config, messages("profiles", [
        {"id": "a", "email": "a@example.com", "segments": ["vip"]},
        {"id": "b", "email": "b@example.com", "segments": ["vip"]},
    ]))  # fmt: skip
    b_id = contact(sandbox, "b@example.com")["id"]
    removals = [
        {"id": "a", "email": "A@example.com", "_deleted": True, "merged_into": "m-9"},
        {"id": "ghost", "email": "never@example.com", "_deleted": True},
    ]

    run = run_target(TargetHubSpot, config, messages("profiles", removals))

    assert sorted(run.confirmed) == ["a", "ghost"] and run.rejected == {}
    assert lookup(sandbox, "a@example.com") == 404
    assert list_members(sandbox, vip) == {b_id}  # an archived contact leaves its lists
    calls = [(r["method"], r["path"]) for r in sandbox_requests(sandbox, "hubspot")]
    assert ("POST", "/crm/v3/objects/contacts/batch/archive") in calls


def test_an_erase_gdpr_deletes_the_contact_and_blocks_the_address(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    run_target(TargetHubSpot, hubspot_config,
               messages("profiles", [{"id": "e", "email": "erase.me@example.com"}]))  # fmt: skip

    run = run_target(TargetHubSpot, hubspot_config, messages("profiles", [
        {"id": "e", "email": "erase.me@example.com", "_erase": True, "_deleted": True},
    ]))  # fmt: skip

    assert run.confirmed == ["e"]
    assert lookup(sandbox, "erase.me@example.com") == 404
    again = run_target(
        TargetHubSpot,
        hubspot_config,
        messages("profiles", [{"id": "e", "email": "erase.me@example.com"}]),
    )
    assert again.rejected["e"].endswith("erase.me@example.com was GDPR-deleted and is blocklisted")


def test_an_opt_out_unsubscribes_from_every_type_and_never_resubscribes(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    config = {**hubspot_config, "properties": {"firstname": "first_name"}}
    run_target(TargetHubSpot, config, messages("profiles", [
        {"id": "o", "email": "opt.out@example.com", "first_name": "Ola", "email_consent": True},
    ]))  # fmt: skip
    assert set(subscriptions(sandbox, "opt.out@example.com").values()) == {"SUBSCRIBED"}
    opt_out = [{"id": "o", "email": "opt.out@example.com", "email_consent": False}]

    run = run_target(TargetHubSpot, config, messages("profiles", opt_out))
    twice = run_target(TargetHubSpot, config, messages("profiles", opt_out))  # already done

    assert run.confirmed == twice.confirmed == ["o"]
    assert set(subscriptions(sandbox, "opt.out@example.com").values()) == {"NOT_SUBSCRIBED"}
    assert contact(sandbox, "opt.out@example.com")["properties"]["firstname"] == "Ola"
    consent_back = [{"id": "o", "email": "opt.out@example.com", "email_consent": True}]
    run_target(TargetHubSpot, config, messages("profiles", consent_back))
    assert set(subscriptions(sandbox, "opt.out@example.com").values()) == {"NOT_SUBSCRIBED"}


def test_an_unknown_subscription_type_rejects_the_opt_out_with_hubspots_reason(
    sandbox: SandboxServer, hubspot_config: dict[str, Any]
) -> None:
    config = {**hubspot_config, "subscription_ids": ["404"]}

    run = run_target(TargetHubSpot, config, messages("profiles", [
        {"id": "o", "email": "opt.out@example.com", "email_consent": False},
    ]))  # fmt: skip

    assert run.rejected["o"] == (
        "unsubscribe: HTTP 400 VALIDATION_ERROR: Subscription '404' does not exist"
    )
