"""Echo suppression end to end over the sandbox: the vendor project pushes golden names and
segment tags into the Mailchimp audience its `mailchimp` source reads (`source: mailchimp`).
What comes back at the next sync is the hub's own write, not new evidence; an edit made in
Mailchimp after the push is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import and_, select
from typer.testing import CliRunner

from connectors.sandbox import SandboxServer
from connectors.sandbox import mailchimp_records as mailchimp_sandbox
from crm_hub.cli import app
from crm_hub.config import HubConfig
from crm_hub.demo_vendors import load_vendor_config
from crm_hub.pipeline import RunSummary, run_pipeline
from crm_hub.store import Store
from crm_hub.store.schema import master_links, profiles, publish_echoes, publish_state
from crm_hub.store.schema import source_customers as customers

CUSTOMERS = 150
SEED = 5
_BOOKKEEPING = {"provenance", "updated_at", "change_seq", "run_id"}


@dataclass
class Loop:
    sandbox: SandboxServer
    store: Store
    config: HubConfig
    first: RunSummary
    list_id: str
    members_before: int


@pytest.fixture
def pushed(store: Store, tmp_path: Path) -> Iterator[Loop]:
    """A vendor project run once: everything synced, resolved and pushed, Mailchimp included."""
    result = CliRunner().invoke(app, ["init", str(tmp_path / "p"), "--vendors"])
    assert result.exit_code == 0, result.output
    with SandboxServer(customers=CUSTOMERS, seed=SEED) as sandbox:
        list_id = mailchimp_sandbox.list_id(sandbox.sandbox.world, 0)
        config = load_vendor_config(tmp_path / "p" / "hub.yaml", sandbox.url, list_id)
        members_before = len(sandbox.sandbox.world.tables["mailchimp.members"])
        first = run_pipeline(store, config)
        assert first.failures == []
        yield Loop(sandbox, store, config, first, list_id, members_before)


def golden(store: Store) -> dict[str, dict[str, Any]]:
    """Every profile's values, without provenance and bookkeeping."""
    with store.read() as conn:
        rows = conn.execute(select(profiles)).mappings().all()
    return {r["master_id"]: {k: v for k, v in r.items() if k not in _BOOKKEEPING} for r in rows}


def people_pushed_to(store: Store, destination: str) -> int:
    """People the destination confirmed so far."""
    with store.read() as conn:
        return len(conn.execute(
            select(publish_state.c.master_id).where(publish_state.c.destination == destination)
        ).all())  # fmt: skip


def test_the_hubs_own_writes_come_back_as_echoes_and_push_nothing(pushed: Loop) -> None:
    store = pushed.store
    assert people_pushed_to(store, "newsletter") > 20  # the audience got golden names and tags
    with store.read() as conn:
        echoes = conn.execute(select(publish_echoes.c.source).distinct()).scalars().all()
    assert echoes == ["mailchimp"]
    before = golden(store)

    again = run_pipeline(store, pushed.config)

    assert again.failures == []
    mailchimp = next(r for r in again.map if r.source == "mailchimp")
    assert mailchimp.read > 0 and mailchimp.echoes > 0  # the pushed members came back
    assert again.stages["publish"]["sent"] == 0
    assert golden(store) == before
    third = run_pipeline(store, pushed.config)
    assert third.stages["publish"]["sent"] == 0 and all(r.read == 0 for r in third.map)


def test_a_member_the_hub_created_is_no_new_record(pushed: Loop) -> None:
    """Square-only people who agreed to e-mail are created in the audience by the push; read
    back, they are the hub's own writes: no new customer record, consent or name."""
    members = pushed.sandbox.sandbox.world.tables["mailchimp.members"]
    assert len(members) > pushed.members_before  # the push created members
    before = count_customers(pushed.store, "mailchimp")

    again = run_pipeline(pushed.store, pushed.config)

    assert again.failures == [] and again.stages["publish"]["sent"] == 0
    assert count_customers(pushed.store, "mailchimp") == before


def count_customers(store: Store, source: str) -> int:
    with store.read() as conn:
        return len(conn.execute(
            select(customers.c.source_id).where(customers.c.source == source)
        ).all())  # fmt: skip


def test_an_edit_in_mailchimp_after_the_push_is_new_evidence(pushed: Loop) -> None:
    store = pushed.store
    master_id, member, first_name = _pushed_member(store, pushed.list_id)
    url = f"{pushed.sandbox.url}/mailchimp/3.0/lists/{pushed.list_id}/members/{member}"
    # The person types a new address into the newsletter's profile page; the hub's own name
    # and tags stay beside it in the same record.
    address = {"addr1": "12 Echo Lane", "city": "Leeds", "zip": "LS1 4AB", "country": "GB"}
    edited = httpx.patch(
        url, json={"merge_fields": {"ADDRESS": address}}, auth=("any", "sandbox-mailchimp-key-us21")
    )
    assert edited.status_code == 200, edited.text
    # The source reads changes made before the second its sync starts in (Mailchimp's
    # last_changed has whole seconds); one made within that very second waits for the next sync.
    time.sleep(1.1)

    again = run_pipeline(store, pushed.config)

    assert again.failures == []
    with store.read() as conn:
        row = conn.execute(
            select(customers.c.address_line1, customers.c.first_name, customers.c.branch).where(
                customers.c.source == "mailchimp",
                customers.c.source_id == f"{pushed.list_id}:{member}",
            )
        ).one()
        golden_row = conn.execute(
            select(profiles.c.address_line1, profiles.c.city, profiles.c.first_name).where(
                profiles.c.master_id == master_id
            )
        ).one()
    seen = [(r.source, r.read, r.echoes) for r in again.map]
    assert row.address_line1 == "12 Echo Lane", (row, seen, edited.json()["last_changed"])
    assert row.first_name == first_name
    assert not (row.branch or "").startswith("hub: ")  # a tag the hub wrote is no branch
    assert (golden_row.address_line1, golden_row.city) == ("12 Echo Lane", "Leeds")
    assert golden_row.first_name == first_name


def _pushed_member(store: Store, list_id: str) -> tuple[str, str, str]:
    """A person the hub pushed to the audience who was a member of it before (a mailchimp
    customer of that audience with a first name, whose e-mail is the one pushed): master id,
    the member id, the first name sent."""
    s, link = publish_state, master_links
    with store.read() as conn:
        rows = conn.execute(
            select(s.c.master_id, s.c.payload, customers.c.source_id, customers.c.email)
            .join(link, and_(link.c.master_id == s.c.master_id, link.c.source == "mailchimp"))
            .join(customers, and_(customers.c.source == "mailchimp",
                                  customers.c.source_id == link.c.source_id))
            .where(s.c.destination == "newsletter", customers.c.first_name.is_not(None),
                   customers.c.source_id.startswith(f"{list_id}:"))
            .order_by(customers.c.source_id)
        ).all()  # fmt: skip
    for master_id, payload, source_id, email in rows:
        fields = (payload or {}).get("fields") or {}
        pushed_email = str(fields.get("email") or "")
        same = pushed_email.lower() == email.lower() and fields.get("first_name")
        if payload.get("status") == "active" and same:
            return master_id, source_id.split(":", 1)[1], fields["first_name"]
    raise AssertionError("no member was pushed")
