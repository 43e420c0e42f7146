"""A campaign's reach counts every recipient Mailchimp's sent-to report lists, mapped by the
shipped mapping, not only those who opened or clicked; a bounced recipient is not reached.

Three audience members got campaign "c0ffee0001" (sent 2026-03-02): Ann never opened it, Bob
opened it, Cat's address bounced hard. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from crm_hub.analytics import compute_reports, read_report
from crm_hub.config.models import HubConfig
from crm_hub.mapping.apply import compile_mapping, map_record
from crm_hub.mapping.spec import load_mapping
from crm_hub.store import Store
from crm_hub.store.schema import events, master_links, masters, source_customers

MAPPING = Path(__file__).parents[2] / "crm_hub/templates/vendors/mappings/mailchimp.yaml"
LIST_ID = "64be17a2c5"
CAMPAIGN = "c0ffee0001"
SENT_AT = "2026-03-02T09:00:00+00:00"
MOMENT = datetime(2026, 3, 1, tzinfo=UTC)
PEOPLE = {"ann": "sent", "bob": "sent", "cat": "hard"}  # name → sent-to status


def _sent_to(name: str, status: str) -> dict[str, Any]:
    return {"campaign_id": CAMPAIGN, "list_id": LIST_ID, "email_id": name,
            "email_address": f"{name}@example.com", "status": status, "open_count": 0,
            "campaign_send_time": SENT_AT}  # fmt: skip


def _activity(name: str, action: str, extra: dict[str, str]) -> dict[str, Any]:
    return {"campaign_id": CAMPAIGN, "list_id": LIST_ID, "email_id": name,
            "email_address": f"{name}@example.com", "action": action,
            "timestamp": "2026-03-02T11:00:00+00:00", **extra}  # fmt: skip


def _add_person(conn: Connection, name: str) -> None:
    source_id = f"{LIST_ID}:{name}"
    stamps = {"created_at": MOMENT, "updated_at": MOMENT, "change_seq": 1}
    conn.execute(
        masters.insert().values(master_id=f"m_{name}", status="active", member_count=1, **stamps)
    )
    conn.execute(
        master_links.insert().values(
            source="mailchimp", source_id=source_id, master_id=f"m_{name}", reason="single",
            linked_at=MOMENT, change_seq=1,
        )
    )  # fmt: skip
    lineage = {"stream": "members", "raw_id": 1, "raw_change_seq": 1, "mapped_at": MOMENT}
    conn.execute(
        source_customers.insert().values(source="mailchimp", source_id=source_id, **lineage)
    )


def _land(conn: Connection, streams: dict[str, list[dict[str, Any]]]) -> None:
    """Map each record with the shipped mapping and write its event row."""
    plans = compile_mapping(load_mapping(MAPPING))
    for n, (stream, record) in enumerate((s, r) for s, rows in streams.items() for r in rows):
        row = map_record(plans[stream], "mailchimp", f"{stream}:{n}", record).row
        lineage = {"stream": stream, "raw_id": n, "raw_change_seq": 1, "mapped_at": MOMENT}
        conn.execute(events.insert().values(**row, **lineage))


def _reach(store: Store) -> tuple[int, str]:
    compute_reports(store, HubConfig.model_validate({}), today=MOMENT.date().replace(month=4))
    with store.read() as conn:
        (row,) = [r for r in read_report(conn, "campaigns") if r["campaign_id"] == CAMPAIGN]
    return row["reached"], row["first_touch_at"].isoformat()


def test_reach_counts_recipients_who_never_opened_but_not_bounces(store: Store) -> None:
    with store.begin() as conn:
        for name in PEOPLE:
            _add_person(conn, name)
        _land(
            conn,
            {
                "sent_to": [_sent_to(name, status) for name, status in PEOPLE.items()],
                "email_activity": [
                    _activity("bob", "open", {"ip": "81.1.2.3"}),
                    _activity("cat", "bounce", {"type": "hard"}),
                ],
            },
        )

    # Ann (never opened) and Bob reached at the send time; Cat bounced.
    assert _reach(store) == (2, SENT_AT)


def test_without_sent_to_only_openers_are_reached(store: Store) -> None:
    with store.begin() as conn:
        for name in PEOPLE:
            _add_person(conn, name)
        _land(conn, {"email_activity": [_activity("bob", "open", {"ip": "81.1.2.3"})]})

    assert _reach(store)[0] == 1  # what the report said before sent_to was synced


def test_a_bounce_reported_after_the_recipient_list_was_read_is_not_reached(store: Store) -> None:
    with store.begin() as conn:
        for name in PEOPLE:
            _add_person(conn, name)
        # sent_to was read before Cat's bounce came in: it still said "sent" for her.
        _land(
            conn,
            {
                "sent_to": [_sent_to(name, "sent") for name in PEOPLE],
                "email_activity": [_activity("cat", "bounce", {"type": "hard"})],
            },
        )

    assert _reach(store)[0] == 2
