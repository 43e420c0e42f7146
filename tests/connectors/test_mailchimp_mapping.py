"""The shipped Mailchimp mapping: campaign reports (email_activity + unsubscribes) give the same
events and e-mail traits as the per-member activity feed (member_activity) for one seeded world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from connectors.sandbox import mailchimp_records, mailchimp_reports
from connectors.sandbox.world import World, build_world
from crm_hub.mapping.apply import compile_mapping, map_record
from crm_hub.mapping.spec import load_mapping
from crm_hub.profile.traits.person import email_traits

MAPPING = Path(__file__).parents[2] / "crm_hub/templates/vendors/mappings/mailchimp.yaml"
# What both ways of reading carry: the feed also has "sent", which the reports do not.
SHARED_KINDS = {"opened", "clicked", "bounced", "unsubscribed"}


@pytest.fixture(scope="module")
def world() -> World:
    """~130 members over two audiences."""
    return build_world(11, 220)


def feed_records(world: World) -> list[dict[str, Any]]:
    """member_activity as the connector emits it: the feed plus the member's keys."""
    table = world.tables["mailchimp.members"]
    out = []
    for row in range(len(table)):
        member = table.body(row)
        for event in mailchimp_records.render_activity(world, row):
            keys = {"list_id": member["list_id"], "member_id": member["id"]}
            out.append({**event, **keys, "email_address": member["email_address"]})
    return out


def report_records(world: World) -> dict[str, list[dict[str, Any]]]:
    """email_activity (one row per action) and unsubscribes as the connector emits them."""
    activity: list[dict[str, Any]] = []
    unsubscribes: list[dict[str, Any]] = []
    for campaign in mailchimp_reports.campaigns(world).values():
        for recipient in campaign.recipients:
            keys = {k: v for k, v in recipient.item.items() if k != "list_is_active"}
            activity.extend({**action, **keys} for _, action in recipient.actions)
        unsubscribes.extend(campaign.unsubscribes)
    return {"email_activity": activity, "unsubscribes": unsubscribes}


def mapped_events(streams: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """The event rows the mapping makes, reduced to what traits and reports read."""
    plans = compile_mapping(load_mapping(MAPPING))
    rows = [
        map_record(plans[stream], "mailchimp", f"{stream}:{i}", record).row
        for stream, records in streams.items()
        for i, record in enumerate(records)
    ]
    frame = pd.DataFrame(rows)[["customer_source_id", "kind", "campaign_id", "occurred_at"]]
    frame = frame[frame["kind"].isin(SHARED_KINDS)]
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def traits_of(events: pd.DataFrame) -> pd.DataFrame:
    """E-mail traits with one code per member, as the profile stage computes them."""
    codes = {key: i for i, key in enumerate(sorted(set(events["customer_source_id"])))}
    frame = pd.DataFrame(
        {
            "code": events["customer_source_id"].map(codes),
            "kind": events["kind"],
            "at": events["occurred_at"].map(lambda at: int(at.timestamp())).astype("Int64"),
        }
    )
    customers = pd.DataFrame(
        {"code": [], "email_granted": [], "email_at": [], "sms_granted": [], "sms_at": []}
    )
    return email_traits(customers, frame, len(codes))


def test_reports_give_the_events_of_the_feed(world: World) -> None:
    from_feed = mapped_events({"member_activity": feed_records(world)})
    from_reports = mapped_events(report_records(world))

    assert set(from_feed["kind"]) == SHARED_KINDS  # the fixture has every kind
    pd.testing.assert_frame_equal(from_reports, from_feed)


def test_reports_give_the_email_traits_of_the_feed(world: World) -> None:
    from_feed = traits_of(mapped_events({"member_activity": feed_records(world)}))
    from_reports = traits_of(mapped_events(report_records(world)))

    assert from_feed["email_opens"].sum() > 0 and from_feed["unsubscribed"].any()
    pd.testing.assert_frame_equal(from_reports, from_feed)
