"""The shipped Mailchimp mapping of ``sent_to``: every recipient becomes a "sent" event at the
campaign's send time, a bounced one a "bounced" event, and together they agree with the members'
activity feed of a seeded world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox import mailchimp_records, mailchimp_reports
from connectors.sandbox.world import World, build_world
from crm_hub.mapping.apply import StreamPlan, compile_mapping, map_record
from crm_hub.mapping.spec import load_mapping

MAPPING = Path(__file__).parents[2] / "crm_hub/templates/vendors/mappings/mailchimp.yaml"
SEND_TIME = "2026-03-02T09:00:00+00:00"


@pytest.fixture(scope="module")
def plan() -> StreamPlan:
    """The compiled sent_to stream of the shipped mapping."""
    return compile_mapping(load_mapping(MAPPING))["sent_to"]


def recipient(status: str) -> dict[str, Any]:
    """A sent_to row as the connector emits it."""
    return {
        "email_id": "5d41402abc4b2a76b9719d911017c592",
        "email_address": "Ann@Example.com",
        "status": status,
        "open_count": 0,
        "last_open": "",
        "merge_fields": {"FNAME": "Ann"},
        "campaign_id": "c0ffee0001",
        "list_id": "64be17a2c5",
        "list_is_active": True,
        "campaign_send_time": SEND_TIME,
    }


def test_a_recipient_who_never_opened_is_a_sent_event_at_the_send_time(
    plan: StreamPlan,
) -> None:
    row = map_record(plan, "mailchimp", "sent_to:1", recipient("sent")).row

    assert row["kind"] == "sent" and row["campaign_id"] == "c0ffee0001"
    assert row["customer_source_id"] == "64be17a2c5:5d41402abc4b2a76b9719d911017c592"
    assert row["occurred_at"].isoformat() == SEND_TIME
    assert "bounce_type" not in row.get("attributes", {})


@pytest.mark.parametrize("status", ["hard", "soft"], ids=["hard-bounce", "soft-bounce"])
def test_a_bounced_recipient_is_a_bounced_event_never_sent(plan: StreamPlan, status: str) -> None:
    row = map_record(plan, "mailchimp", "sent_to:1", recipient(status)).row

    assert row["kind"] == "bounced"
    assert row["attributes"] == {"bounce_type": status}


def test_sent_to_events_agree_with_the_activity_feed(plan: StreamPlan) -> None:
    world: World = build_world(11, 220)
    feed: dict[str, set[tuple[str, str]]] = {"sent": set(), "bounce": set()}
    members = world.tables["mailchimp.members"]
    for member_row in range(len(members)):
        member = members.body(member_row)
        for event in mailchimp_records.render_activity(world, member_row):
            if event["activity_type"] in feed:
                key = (f"{member['list_id']}:{member['id']}", event["campaign_id"])
                feed[event["activity_type"]].add(key)
    mapped: dict[str, set[tuple[str, str]]] = {"sent": set(), "bounced": set()}
    for campaign_id, campaign in mailchimp_reports.campaigns(world).items():
        for n, sent in enumerate(campaign.recipients):
            record = sent.sent_to(members.body(sent.row)) | {"campaign_send_time": SEND_TIME}
            event_row = map_record(plan, "mailchimp", f"sent_to:{campaign_id}:{n}", record).row
            mapped[event_row["kind"]].add(
                (event_row["customer_source_id"], event_row["campaign_id"])
            )

    assert feed["bounce"] and mapped["bounced"] == feed["bounce"]
    assert mapped["sent"] == feed["sent"] - feed["bounce"]
