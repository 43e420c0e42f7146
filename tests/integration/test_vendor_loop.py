"""The vendor loop end to end: `crm-hub init --vendors`, then sync (the four native connectors
over real HTTP to the in-process sandbox), map (the shipped vendor mappings) and resolve, on
SQLite and PostgreSQL; the people found are scored against the sandbox's ground truth.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.sandbox import SandboxServer, mailchimp_reports
from connectors.sandbox.world import MAILCHIMP_STATUSES, ORDER_STATES
from crm_hub.cli import app
from crm_hub.config import load_config
from crm_hub.demo_vendors import VENDOR_SOURCES, run_vendor_demo
from crm_hub.identity import pairwise_scores
from crm_hub.mapping.apply import Mapped, compile_mapping, map_record
from crm_hub.mapping.spec import load_mapping
from crm_hub.pipeline import run_pipeline
from crm_hub.store import Store
from crm_hub.store.schema import (
    events,
    invoices,
    master_links,
    masters,
    order_lines,
    orders,
    payments,
    source_customers,
)

CUSTOMERS = 300
SEED = 7


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh world per test: the loop pushes into the Mailchimp audience it reads."""
    with SandboxServer(customers=CUSTOMERS, seed=SEED) as server:
        yield server


def expected_counts(sandbox: SandboxServer) -> dict[str, dict[str, int]]:
    """Records per source and stream, computed from the sandbox's own tables."""
    world = sandbox.sandbox.world
    tables = world.tables
    members = tables["mailchimp.members"]
    reports = mailchimp_reports.campaigns(world).values()
    activity = sum(len(r.actions) for c in reports for r in c.recipients)
    recipients = sum(len(c.recipients) for c in reports)
    unsubscribes = sum(len(c.unsubscribes) for c in reports)
    return {
        "square": {
            "customers": len(tables["square.customers"]),
            "orders": len(tables["square.orders"]),
        },
        "mailchimp": {
            "members": len(members),
            "sent_to": recipients,
            "email_activity": activity,
            "unsubscribes": unsubscribes,
        },
        "typeform": {"responses": len(tables["typeform.responses"])},
        "quickbooks": {
            "customers": len(tables["quickbooks.customers"]),
            "invoices": len(tables["quickbooks.invoices"]),
            "payments": len(tables["quickbooks.payments"]),
        },
    }


def init_vendor_project(directory: Path) -> Path:
    result = CliRunner().invoke(app, ["init", str(directory), "--vendors"])
    assert result.exit_code == 0, result.output
    return directory / "hub.yaml"


def truth_of(sandbox: SandboxServer) -> dict[tuple[str, str], str]:
    """(system, record id) → person, from the sandbox's control endpoint."""
    answer = httpx.get(f"{sandbox.url}/_sandbox/truth", params={"system": ",".join(VENDOR_SOURCES)})
    answer.raise_for_status()
    return {
        (row["system"], row["record_id"]): row["person_id"]
        for row in csv.DictReader(io.StringIO(answer.text))
    }


def count(store: Store, table: Any, **where: Any) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_vendor_loop_syncs_maps_and_resolves_every_source(
    store: Store,
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_HUB_SANDBOX_URL", sandbox.url)
    config = load_config(init_vendor_project(tmp_path / "vendors"))
    assert set(config.sources) == set(VENDOR_SOURCES)

    expected = expected_counts(sandbox)  # before the push adds members to the audience
    statuses = Counter(
        MAILCHIMP_STATUSES[s]
        for s in sandbox.sandbox.world.tables["mailchimp.members"].col("status")
    )
    summary = run_pipeline(store, config)

    assert summary.failures == []
    synced = {r.source: r for r in summary.sync}
    mapped = {r.source: r for r in summary.map}
    assert set(synced) == set(mapped) == set(VENDOR_SOURCES)
    for name, streams in expected.items():
        assert synced[name].status == "succeeded", synced[name].error
        assert dict(synced[name].streams) == streams, name
        assert (mapped[name].read, mapped[name].rejected) == (sum(streams.values()), 0), name
        assert mapped[name].accepted == mapped[name].read

    world = sandbox.sandbox.world
    people_records = {
        "square": expected["square"]["customers"],
        "mailchimp": expected["mailchimp"]["members"],
        "typeform": expected["typeform"]["responses"],
        "quickbooks": expected["quickbooks"]["customers"],
    }
    for name, n in people_records.items():
        assert count(store, source_customers, source=name) == n, name
    assert count(store, orders) == expected["square"]["orders"]
    square_orders = world.tables["square.orders"]
    lines = sum(len(square_orders.body(row)["line_items"]) for row in range(len(square_orders)))
    assert count(store, order_lines) == lines
    assert count(store, events) == (
        expected["mailchimp"]["sent_to"]
        + expected["mailchimp"]["email_activity"]
        + expected["mailchimp"]["unsubscribes"]
    )
    assert count(store, invoices) == expected["quickbooks"]["invoices"]
    assert count(store, payments) == expected["quickbooks"]["payments"]

    # Orders name their customer on the order or only on the tender of a completed order.
    customer = square_orders.col("customer")
    on_order = square_orders.col("tender_only") == 0
    completed = square_orders.col("state") == ORDER_STATES.index("COMPLETED")
    linked_orders = int(((customer >= 0) & (on_order | completed)).sum())
    with store.read() as conn:
        with_customer = conn.execute(
            select(func.count()).where(orders.c.customer_source_id.is_not(None))
        ).scalar_one()
        owed = conn.execute(select(func.sum(invoices.c.balance))).scalar_one()
        members = conn.execute(
            select(source_customers.c.attributes, source_customers.c.consents).where(
                source_customers.c.source == "mailchimp"
            )
        ).all()
        kinds = Counter(k for (k,) in conn.execute(select(events.c.kind)))
    assert with_customer == linked_orders
    qb_invoices = world.tables["quickbooks.invoices"]
    pence = int((qb_invoices.col("total") - qb_invoices.col("paid")).sum())
    assert Decimal(owed) == Decimal(pence) / 100

    # Mailchimp status → e-mail consent: unsubscribed and cleaned are withdrawn.
    granted = Counter(
        (attributes["status"], (consents or {}).get("email", {}).get("granted"))
        for attributes, consents in members
    )
    assert granted[("subscribed", True)] == statuses["subscribed"]
    assert granted[("unsubscribed", False)] == statuses["unsubscribed"]
    assert granted[("cleaned", False)] == statuses["cleaned"]
    assert set(kinds) <= {"sent", "opened", "clicked", "unsubscribed", "bounced"}
    assert kinds["sent"] + kinds["bounced"] >= expected["mailchimp"]["sent_to"]
    assert kinds["unsubscribed"] == statuses["unsubscribed"]

    # Resolve ran after map: every source customer belongs to exactly one active person.
    resolved = summary.stages["resolve"]
    customers_total = sum(people_records.values())
    assert resolved["records"] == customers_total
    with store.read() as conn:
        links = conn.execute(
            select(master_links.c.source, master_links.c.source_id, master_links.c.master_id)
        ).all()
        active = set(
            conn.execute(select(masters.c.master_id).where(masters.c.status == "active"))
            .scalars()
            .all()
        )
    assert len(links) == len({(s, i) for s, i, _ in links}) == customers_total
    assert {m for *_, m in links} == active
    assert resolved["masters"] == len(active) < customers_total

    truth = truth_of(sandbox)
    who = [truth[(source, source_id)] for source, source_id, _ in links]
    scores = pairwise_scores([m for *_, m in links], who)
    print(  # noqa: T201 (the figures, shown with -s)
        f"\nvendor loop {store.engine.dialect.name}: {customers_total} source customers, "
        f"{len(active)} people, precision {scores.precision:.4f}, recall {scores.recall:.4f}"
    )
    assert scores.precision >= 0.95
    assert scores.recall >= 0.8

    # The loop closes: people and their segments reach the four destinations.
    pushed = summary.stages["publish"]
    assert pushed["destinations"] == 4 and pushed["sent"] > len(active) and pushed["rejected"] == 0
    deliveries = httpx.get(f"{sandbox.url}/_sandbox/webhook/deliveries").json()
    assert deliveries  # signed batches the sandbox receiver verified

    # A second run reads back only what the hub wrote into the audience, knows it for its own
    # echo, and sends nothing; a third reads nothing at all.
    again = run_pipeline(store, config)
    assert again.failures == []
    read = {r.source: r.read for r in again.map}
    assert read["mailchimp"] > 0 and {read[n] for n in ("square", "typeform", "quickbooks")} == {0}
    assert again.stages["publish"]["sent"] == 0
    third = run_pipeline(store, config)
    assert [(r.source, r.read) for r in third.map] == [(name, 0) for name in VENDOR_SOURCES]
    assert third.stages["publish"]["sent"] == 0


def test_init_vendors_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    hub = init_vendor_project(tmp_path / "p")
    mapping = tmp_path / "p" / "mappings" / "square.yaml"
    mapping.write_text("edited", encoding="utf-8")
    hub.unlink()
    result = CliRunner().invoke(app, ["init", str(tmp_path / "p"), "--vendors"])
    assert result.exit_code == 2
    assert "already exist" in result.output and "--force" in result.output
    assert not hub.exists() and mapping.read_text(encoding="utf-8") == "edited"
    forced = CliRunner().invoke(app, ["init", str(tmp_path / "p"), "--vendors", "--force"])
    assert forced.exit_code == 0, forced.output
    assert hub.exists() and mapping.read_text(encoding="utf-8") != "edited"


def test_run_vendor_demo_summarises_the_loop(tmp_path: Path) -> None:
    summary = run_vendor_demo(tmp_path / "demo", customers=150, seed=11)

    assert summary["failures"] == []
    assert set(summary["sources"]) == set(VENDOR_SOURCES)
    assert all(s["rejected"] == 0 and s["mapped"] == s["read"] for s in summary["sources"].values())
    assert summary["records_in"] == sum(s["read"] for s in summary["sources"].values())
    assert summary["rejected"]["total"] == 0
    assert summary["people"] + summary["duplicates_merged"] == summary["source_customers"]
    assert 0 < summary["people"] < summary["source_customers"]
    assert summary["truth"]["unscored"] == 0
    assert summary["truth"]["precision"] >= 0.95 and summary["truth"]["recall"] >= 0.8
    assert (tmp_path / "demo" / "hub.yaml").exists() and summary["seconds"] > 0
    pushed = summary["pushed"]
    assert set(pushed) == {"newsletter", "crm", "loyalty_app", "accountant_drop"}
    assert all(p["status"] == "succeeded" and p["rejected"] == 0 for p in pushed.values())
    assert pushed["newsletter"]["confirmed"] > 0 and pushed["crm"]["confirmed"] > 0
    rerun = summary["rerun"]  # the audience gives back what the hub wrote: echoes, not news
    assert rerun["failures"] == [] and rerun["echoes"] > 0 and rerun["sent"] == 0


MAPPINGS = Path(__file__).parents[2] / "crm_hub" / "templates" / "vendors" / "mappings"


def map_one(vendor: str, stream: str, record: dict[str, Any]) -> Mapped:
    plans = compile_mapping(load_mapping(MAPPINGS / f"{vendor}.yaml"))
    return map_record(plans[stream], vendor, "key", record)


def answer(ref: str, kind: str, value: Any) -> dict[str, Any]:
    key = {"choice": "choice", "choices": "choices"}.get(kind, kind)
    return {"field": {"ref": ref}, "type": kind, key: value}


def test_typeform_answers_are_told_apart_by_content() -> None:
    club = map_one(
        "typeform",
        "responses",
        {
            "response_id": "r1",
            "submitted_at": "2026-10-01T10:00:00Z",
            "hidden": {"source": "receipt", "customer_id": "SQ1"},
            "answers": [
                answer("first_name", "text", "zoë"),
                answer("last_name", "text", "de la Cruz"),
                answer("email", "email", "zoe.cruz@gmail.com"),
                answer("birthday", "date", "1990-02-03"),
                answer("favourite_dish", "choice", {"label": "Fish & Chips"}),
                answer("allergies", "choices", {"labels": ["Gluten"]}),
                answer("home_branch", "choice", {"label": "Copper Kettle Leith"}),
                answer("newsletter", "boolean", False),
            ],
        },
    ).row
    assert (club["first_name"], club["last_name"]) == ("zoë", "de la Cruz")
    assert (club["birth_year"], club["birth_month"], club["birth_day"]) == (1990, 2, 3)
    assert club["branch"] == "edinburgh" and club["consents"]["email"]["granted"] is False
    assert club["attributes"] == {
        "favourite_dish": "Fish & Chips",
        "allergies": ["Gluten"],
        "utm_source": "receipt",
        "square_customer_id": "SQ1",
    }
    feedback = map_one(
        "typeform",
        "responses",
        {
            "response_id": "r2",
            "submitted_at": "2026-10-01T10:00:00Z",
            "answers": [
                answer("email", "email", "ann@gmail.com"),
                answer("branch", "choice", {"label": "Copper Kettle Soho"}),
                answer("visit_date", "date", "2026-09-30"),
                answer("comments", "text", "Perfect Sunday with the family."),
            ],
        },
    ).row
    assert feedback["full_name"] is None and feedback["birth_year"] is None
    assert feedback["branch"] == "soho" and feedback["email"] == "ann@gmail.com"
    assert feedback["attributes"]["visit_date"] == "2026-09-30"
    assert feedback["attributes"]["notes"] == "Perfect Sunday with the family."


def test_vendor_quirks_map_without_rejection() -> None:
    leap = map_one(
        "mailchimp",
        "members",
        {
            "id": "h1",
            "list_id": "L1",
            "email_address": "leap@gmail.com",
            "status": "unsubscribed",
            "merge_fields": {"FNAME": "Lea", "BIRTHDAY": "02/29", "ADDRESS": ""},
            "tags": [{"id": 1000, "name": "Soho"}, {"id": 2001, "name": "Birthday Club"}],
        },
    ).row
    assert leap["source_id"] == "L1:h1" and leap["branch"] == "soho"
    assert leap["attributes"]["birthday"] == "02/29" and leap["birth_month"] is None
    assert leap["consents"]["email"]["granted"] is False
    guest_tender = map_one(
        "square",
        "orders",
        {
            "id": "o1",
            "location_id": "7SPR9QAJJ2A1P",
            "state": "COMPLETED",
            "created_at": "2026-10-01T12:00:00.000Z",
            "total_money": {"amount": 1250, "currency": "GBP"},
            "tenders": [{"customer_id": "C9", "type": "CARD"}],
            "line_items": [{"name": "Soup", "quantity": "2", "base_price_money": {"amount": 625}}],
        },
    )
    assert guest_tender.row["customer_source_id"] == "C9"
    assert guest_tender.row["branch"] == "soho" and guest_tender.row["total"] == Decimal("12.5")
    assert guest_tender.lines[0]["amount"] == Decimal("12.5")
    booker = map_one(
        "quickbooks",
        "customers",
        {
            "Id": "7",
            "GivenName": "Eleanor",
            "FamilyName": "JOHNSON",
            "BillAddr": {
                "Line1": "1 High St",
                "PostalCode": "sw1a1aa",
                "Country": "United Kingdom",
            },
            "Balance": 72.5,
        },
    ).row
    assert booker["country"] == "GB" and booker["postcode"] == "SW1A 1AA"
    assert booker["attributes"]["balance"] == "72.5"
