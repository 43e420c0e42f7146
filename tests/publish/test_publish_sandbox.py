"""Publishing to the sandbox's Mailchimp, HubSpot and webhook receiver through the real targets,
and to a third-party Singer target (target-jsonl): rejections, 429 storms, opt-outs, merges."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from publish_helpers import NO, hub_config, in_flight_rows, merge, open_rejections, put, states

from connectors.sandbox import SandboxServer
from connectors.target_mailchimp.sinks import subscriber_hash
from crm_hub.publish import publish
from crm_hub.store import Store
from tests.publish.conftest import FAST, TARGET_CSV, TARGET_JSONL, mailchimp_yaml

AUTH = ("anyone", "sandbox-mailchimp-key-us21")


def people(store: Store, count: int, bad_every: int = 0) -> list[str]:
    """``count`` consenting people; every ``bad_every``-th has an address Mailchimp refuses."""
    emails = []
    for i in range(count):
        bad = bad_every and i % bad_every == bad_every - 1
        email = f"person{i}@example" if bad else f"person{i}@example.com"
        put(store, f"m_{i:04d}", email=email, first_name=f"P{i}", last_name="Test")
        emails.append(email)
    return emails


def member(sandbox: SandboxServer, email: str) -> dict[str, Any]:
    list_id = sandbox.info()["vendors"]["mailchimp"]["list_ids"][0]
    answer = httpx.get(f"{sandbox.vendor_url('mailchimp')}/3.0/lists/{list_id}/members/"
                       f"{subscriber_hash(email)}", auth=AUTH)  # fmt: skip
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def requests_log(sandbox: SandboxServer, vendor: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{sandbox.url}/_sandbox/requests", params={"vendor": vendor,
                                                                    "limit": 5000})  # fmt: skip
    entries: list[dict[str, Any]] = answer.json()["requests"]
    return entries


def member_puts(sandbox: SandboxServer) -> list[str]:
    """Paths of the member upserts the sandbox answered 200, oldest first."""
    return [r["path"] for r in requests_log(sandbox, "mailchimp")
            if r["method"] == "PUT" and r["status"] == 200]  # fmt: skip


def test_five_percent_rejected_are_kept_with_mailchimps_reason_and_retried_not_the_rest(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    emails = people(lite, 40, bad_every=20)  # 2 of 40
    hub = hub_config(tmp_path, str(lite.engine.url), mailchimp_yaml(sandbox, extra=(
        "    batch_size: 10\n")))  # fmt: skip

    [first] = publish(lite, hub)
    puts_after_first = len(member_puts(sandbox))
    [second] = publish(lite, hub)

    assert (first.status, first.sent, first.confirmed, first.rejected) == ("succeeded", 40, 38, 2)
    rejected = open_rejections(lite, "news")
    assert set(rejected) == {"m_0019", "m_0039"}
    assert rejected["m_0019"].startswith("HTTP 400 Invalid Resource: person19@example looks")
    assert member(sandbox, emails[0])["merge_fields"]["FNAME"] == "P0"
    assert member(sandbox, emails[0])["status"] == "subscribed"
    assert (second.considered, second.sent, second.rejected) == (2, 2, 2)  # retried, still bad
    assert len(member_puts(sandbox)) == puts_after_first  # successes never re-sent
    assert len(states(lite, "news")) == 38


def test_a_429_storm_is_ridden_out_and_everything_lands_once(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    emails = people(lite, 30)
    hub = hub_config(tmp_path, str(lite.engine.url), mailchimp_yaml(sandbox))
    sandbox.sandbox.inject("mailchimp", "429", count=25, retry_after=0.1)

    [result] = publish(lite, hub)

    throttled = [r for r in requests_log(sandbox, "mailchimp") if r["status"] == 429]
    assert len(throttled) == 25
    assert (result.status, result.confirmed, result.rejected) == ("succeeded", 30, 0)
    puts = member_puts(sandbox)
    assert len(puts) == len(set(puts)) == 30  # each member upserted once
    assert {member(sandbox, e)["status"] for e in emails} == {"subscribed"}


def test_opt_out_unsubscribes_and_a_merge_archives_the_merged_away_member(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(lite, "m_a", email="ann.one@example.com", first_name="Ann")
    put(lite, "m_b", email="ann.two@example.com", first_name="Ann")
    put(lite, "m_c", email="cy@example.com", first_name="Cy")
    hub = hub_config(tmp_path, str(lite.engine.url), mailchimp_yaml(sandbox))
    publish(lite, hub)

    put(lite, "m_c", email="cy@example.com", first_name="Cy", consents=NO)
    merge(lite, "m_a", "m_b")
    [result] = publish(lite, hub)

    assert result.actions == {"unsubscribe": 1, "merge": 1}
    assert result.confirmed == 2
    assert member(sandbox, "cy@example.com")["status"] == "unsubscribed"
    assert member(sandbox, "ann.two@example.com")["status"] == "archived"
    assert member(sandbox, "ann.one@example.com")["status"] == "subscribed"


def test_hubspot_contacts_are_upserted_with_mapped_properties(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    people(lite, 12)
    put(lite, "m_x", email="no-consent@example.com", first_name="X", consents=None)
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  crm:
    type: hubspot
    access_token: sandbox-hubspot-token
    base_url: {sandbox.vendor_url('hubspot')}
    fields: [email, first_name, master_id]
    mapping: {{first_name: firstname, master_id: crm_hub_master_id}}
{FAST}""")  # fmt: skip

    [result] = publish(lite, hub)

    assert (result.status, result.confirmed, result.rejected) == ("succeeded", 12, 0)
    answer = httpx.get(
        f"{sandbox.vendor_url('hubspot')}/crm/v3/objects/contacts/person3@example.com",
        params={"idProperty": "email", "properties": "firstname,crm_hub_master_id"},
        headers={"Authorization": "Bearer sandbox-hubspot-token"},
    )
    assert answer.json()["properties"]["firstname"] == "P3"
    assert answer.json()["properties"]["crm_hub_master_id"] == "m_0003"


def hubspot_yaml(sandbox: SandboxServer) -> str:
    return f"""  crm:
    type: hubspot
    access_token: sandbox-hubspot-token
    base_url: {sandbox.vendor_url("hubspot")}
    fields: [email, first_name]
    mapping: {{first_name: firstname}}
{FAST}"""


def webhook_yaml(sandbox: SandboxServer) -> str:
    return f"""  hook:
    type: webhook
    url: {sandbox.vendor_url("webhook")}/crm
    secret: {sandbox.info()["vendors"]["webhook"]["secret"]}
    channel: email
    fields: [email, first_name]
{FAST}"""


def test_an_opt_out_and_an_erasure_reach_every_destination_that_has_the_person(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    put(lite, "m_a", email="ada@example.com", first_name="Ada")
    put(lite, "m_b", email="bo@example.com", first_name="Bo")
    put(lite, "m_c", email="cy@example.com", first_name="Cy")
    hub = hub_config(
        tmp_path,
        str(lite.engine.url),
        mailchimp_yaml(sandbox) + hubspot_yaml(sandbox) + webhook_yaml(sandbox),
    )
    assert [r.confirmed for r in publish(lite, hub)] == [3, 3, 3]

    put(lite, "m_c", email="cy@example.com", first_name="Cy", consents=NO)
    put(lite, "m_b", status="erased")
    results = publish(lite, hub)

    for result in results:
        assert (result.actions, result.confirmed, result.rejected) == (
            {"unsubscribe": 1, "erase": 1},
            2,
            0,
        ), result.destination
    assert member(sandbox, "cy@example.com")["status"] == "unsubscribed"
    gone = httpx.get(f"{sandbox.vendor_url('mailchimp')}/3.0/lists/"
                     f"{sandbox.info()['vendors']['mailchimp']['list_ids'][0]}/members/"
                     f"{subscriber_hash('bo@example.com')}", auth=AUTH)  # fmt: skip
    assert gone.status_code == 404
    hubspot = sandbox.vendor_url("hubspot")
    bearer = {"Authorization": "Bearer sandbox-hubspot-token"}
    statuses = httpx.get(f"{hubspot}/communication-preferences/v3/status/email/cy@example.com",
                         headers=bearer).json()["subscriptionStatuses"]  # fmt: skip
    assert {s["status"] for s in statuses} == {"NOT_SUBSCRIBED"}
    bo = httpx.get(f"{hubspot}/crm/v3/objects/contacts/bo@example.com",
                   params={"idProperty": "email"}, headers=bearer)  # fmt: skip
    assert bo.status_code == 404
    deliveries = httpx.get(f"{sandbox.url}/_sandbox/webhook/deliveries").json()["deliveries"]
    last = deliveries[-1]["payload"]["data"]["records"]
    assert {r["master_id"]: (r.get("_erase"), r.get("email_consent")) for r in last} == {
        "m_b": (True, None),
        "m_c": (None, False),
    }
    assert [r.sent for r in publish(lite, hub)] == [0, 0, 0]  # told once, then nothing more


def test_webhook_receives_signed_batches_and_a_rerun_sends_nothing(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    people(lite, 7)
    secret = sandbox.info()["vendors"]["webhook"]["secret"]
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  hook:
    type: webhook
    url: {sandbox.vendor_url('webhook')}/crm
    secret: {secret}
    batch_size: 3
    fields: [email, first_name]
    mapping: {{first_name: given}}
{FAST}""")  # fmt: skip

    [first] = publish(lite, hub)
    [again] = publish(lite, hub)

    deliveries = httpx.get(f"{sandbox.url}/_sandbox/webhook/deliveries").json()["deliveries"]
    records = [r for d in deliveries for r in d["payload"]["data"]["records"]]
    assert (first.confirmed, len(deliveries), again.sent) == (7, 3, 0)
    assert records[0] == {"master_id": "m_0000", "email": "person0@example.com", "given": "P0"}


def test_any_singer_target_gets_schema_records_and_state(lite: Store, tmp_path: Path) -> None:
    assert TARGET_JSONL.exists(), "run scripts/install_test_connectors.sh (make test does)"
    people(lite, 5)
    out = tmp_path / "jsonl-out"
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  lake:
    type: singer
    command: [{TARGET_JSONL}]
    config: {{destination_path: {out}}}
    fields: [email, first_name]
    batch_size: 2
""")  # fmt: skip

    [first] = publish(lite, hub)
    put(lite, "m_0002", email="person2@example.com", first_name="Changed", last_name="Test")
    [second] = publish(lite, hub)

    lines = [orjson.loads(x) for f in sorted(out.glob("profiles-*.jsonl"))
             for x in f.read_text().splitlines()]  # fmt: skip
    assert (first.status, first.confirmed, second.confirmed) == ("succeeded", 5, 1)
    assert len(lines) == 6 and lines[-1]["first_name"] == "Changed"
    assert in_flight_rows(lite) == 0  # the push's rows in the store go once settled
    assert not (tmp_path / ".crm-hub").exists()  # and it kept nothing in files


def test_meltanolabs_target_csv_writes_what_the_hub_sends(lite: Store, tmp_path: Path) -> None:
    """A second real Singer target (singer-sdk based): batches confirmed by its STATE lines."""
    assert TARGET_CSV.exists(), "run scripts/install_test_connectors.sh (make test does)"
    people(lite, 4)
    out = tmp_path / "csv-out"
    out.mkdir()
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  sheet:
    type: singer
    command: [{TARGET_CSV}]
    config: {{output_path: {out}, file_naming_scheme: "{{stream_name}}.csv"}}
    fields: [email, first_name]
    batch_size: 3
""")  # fmt: skip

    [first] = publish(lite, hub)
    with (out / "profiles.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    [again] = publish(lite, hub)

    assert (first.status, first.confirmed, again.sent) == ("succeeded", 4, 0)
    assert sorted(r["email"] for r in rows) == [f"person{i}@example.com" for i in range(4)]
    assert {r["first_name"] for r in rows} == {"P0", "P1", "P2", "P3"}


def test_a_target_that_refuses_the_credentials_fails_the_push_and_sends_again_later(
    lite: Store, sandbox: SandboxServer, tmp_path: Path
) -> None:
    people(lite, 3)
    text = mailchimp_yaml(sandbox).replace("sandbox-mailchimp-key-us21", "wrong-key-us21")
    hub = hub_config(tmp_path, str(lite.engine.url), text)

    [result] = publish(lite, hub)

    assert result.status == "failed" and "credentials refused" in (result.error or "")
    assert "wrong-key" not in json.dumps(result.error)
    assert states(lite, "news") == {}


@pytest.mark.parametrize("bad", ["lake"], ids=["missing-command"])
def test_a_missing_target_command_is_a_config_error(lite: Store, tmp_path: Path, bad: str) -> None:
    hub = hub_config(tmp_path, str(lite.engine.url), f"""  {bad}:
    type: singer
    command: [./no-such-target]
""")  # fmt: skip
    [result] = publish(lite, hub)
    assert result.config_error and "no-such-target" in (result.error or "")
    assert sys.executable  # the hub never fell back to something else
