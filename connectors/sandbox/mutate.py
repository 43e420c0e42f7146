"""Changes over time: edit, add and delete records with fresh timestamps.

``mutate(world, "square", changes=5, adds=2, deletes=1)`` touches the vendor's people table (or
the ``table`` named) the way life does: a customer changes phone or moves, a member
unsubscribes, an invoice gets paid, a newcomer signs up (half of them people already known to
other systems, half new people), a profile is deleted. Every touched record gets a timestamp
later than anything before, so an incremental sync picks it up. Deterministic for a seed and a
sequence of calls.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from connectors.sandbox import quickbooks_records, square_records, vocab
from connectors.sandbox.people import rng_for
from connectors.sandbox.variants import PHONE_STYLES, format_phone
from connectors.sandbox.world import MAILCHIMP_STATUSES, ORDER_STATES, PEOPLE_TABLES, World

DEFAULT_TABLES = PEOPLE_TABLES
TABLE_IDS: dict[str, Callable[[World, int], str]] = {
    "square.orders": square_records.order_id,
    "quickbooks.invoices": lambda _w, row: quickbooks_records.invoice_id(row),
    "quickbooks.payments": lambda _w, row: quickbooks_records.payment_id(row),
}


class MutationError(ValueError):
    """Unknown vendor or table, or negative counts."""


@dataclass
class MutationReport:
    """Ids of the records changed, added and deleted, and the instant they were stamped with."""

    vendor: str
    table: str
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    stamped_at: int = 0  # epoch ms: every record of one mutation carries the same stamp

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "vendor": self.vendor,
            "table": self.table,
            "changed": self.changed,
            "added": self.added,
            "deleted": self.deleted,
            "stamped_at": self.stamped_at,
        }


def _record_id(world: World, table: str, row: int) -> str:
    fn = world.record_ids.get(table)
    return fn(row) if fn is not None else TABLE_IDS[table](world, row)


def _new_phone(rng: random.Random) -> tuple[str, str]:
    return "7" + rng.choice(
        "1234579"
    ) + f"{rng.randrange(100):02d}", f"{rng.randrange(1_000_000):06d}"


def _change(world: World, name: str, row: int, rng: random.Random, now: int) -> None:
    table = world.tables[name]
    if name == "square.orders":
        if ORDER_STATES[table.get("state", row)] == "OPEN":
            table.columns["state"][row] = 0
        table.touch(row, now)
        return
    if name == "mailchimp.members":
        status = MAILCHIMP_STATUSES[table.get("status", row)]
        new = {
            "subscribed": "unsubscribed",
            "unsubscribed": "pending",
            "pending": "subscribed",
        }.get(status)
        if new is not None and rng.random() < 0.7:
            table.columns["status"][row] = MAILCHIMP_STATUSES.index(new)
            table.touch(row, now)
            return
        body = table.body(row)
        area, number = _new_phone(rng)
        body["merge_fields"]["PHONE"] = format_phone(area, number, rng.choice(PHONE_STYLES))
        table.store(row, body, updated=now)
        return
    if name == "quickbooks.invoices":
        _pay_invoice(world, row, now)
        return
    if name in ("quickbooks.payments", "typeform.responses"):
        table.touch(row, now)
        return
    body = table.body(row)
    area, number = _new_phone(rng)
    phone = format_phone(area, number, rng.choice(PHONE_STYLES))
    address = f"{rng.randrange(1, 240)} {rng.choice(vocab.STREETS)}"
    if name == "square.customers":
        if rng.random() < 0.5:
            body["phone_number"] = phone
        else:
            body.setdefault("address", {"country": "GB"})["address_line_1"] = address
    elif name == "quickbooks.customers":
        if rng.random() < 0.5:
            body["PrimaryPhone"] = {"FreeFormNumber": phone}
        else:
            body["BillAddr"]["Line1"] = address
    elif name == "hubspot.contacts":
        if rng.random() < 0.5:
            body["properties"]["phone"] = phone
        else:
            body["properties"]["lifecyclestage"] = rng.choice(["lead", "customer", "evangelist"])
    table.store(row, body, updated=now)


def _pay_invoice(world: World, row: int, now: int) -> int | None:
    invoices = world.tables["quickbooks.invoices"]
    owed = invoices.get("total", row) - invoices.get("paid", row)
    invoices.columns["paid"][row] = invoices.get("total", row)
    invoices.touch(row, now)
    if owed <= 0:
        return None
    payments = world.tables["quickbooks.payments"]
    return payments.append(
        {
            "person": invoices.get("person", row),
            "customer": invoices.get("customer", row),
            "invoice": row,
            "amount": owed,
            "created": now,
            "updated": now,
        }
    )


def _pick_person(world: World, name: str, np_rng: np.random.Generator) -> int:
    """Half the time someone known elsewhere but new to this table, else a brand-new person."""
    if np_rng.random() < 0.5 and world.n_people:
        present = world.tables[name].col("person")
        for candidate in np_rng.integers(0, world.n_people, 20):
            if not np.any(present == candidate):
                return int(candidate)
    return world.add_person(np_rng)


def _add(world: World, name: str, np_rng: np.random.Generator, now: int) -> int:
    table = world.tables[name]
    if name == "square.orders":
        customers = world.tables["square.customers"]
        live = np.flatnonzero((customers.col("deleted") == 0) & (customers.col("variant") == 0))
        customer = int(np_rng.choice(live))
        person = customers.get("person", customer)
        branch = world.household_branch[world.person_household[person]]
        return table.append(
            {
                "person": person,
                "customer": customer,
                "location": branch,
                "created": now,
                "updated": now,
            }
        )
    if name == "quickbooks.invoices":
        customers = world.tables["quickbooks.customers"]
        customer = int(np_rng.integers(0, len(customers)))
        total = int(np_rng.integers(150, 2000)) * 100
        invoice = {
            "person": customers.get("person", customer),
            "customer": customer,
            "item": 1,
            "total": total,
        }
        return table.append({**invoice, "paid": 0, "created": now, "updated": now})
    if name == "quickbooks.payments":
        invoices = world.tables["quickbooks.invoices"]
        unpaid = np.flatnonzero(
            (invoices.col("paid") < invoices.col("total")) & (invoices.col("deleted") == 0)
        )
        if len(unpaid) == 0:
            raise MutationError("no unpaid invoice left to pay")
        paid = _pay_invoice(world, int(np_rng.choice(unpaid)), now)
        return paid if paid is not None else len(table) - 1
    person = _pick_person(world, name, np_rng)
    values: dict[str, int] = {"person": person, "created": now, "updated": now}
    if name == "square.customers":
        values["location"] = world.household_branch[world.person_household[person]]
    elif name == "typeform.responses":
        values["form"] = int(np_rng.random() < 0.4)
        values["created"] = now - 90_000
    row = table.append(values)
    world.caches.pop("mailchimp.email_index", None)
    world.caches.pop("hubspot.email_index", None)
    return row


def _delete(world: World, name: str, row: int, now: int) -> None:
    table = world.tables[name]
    if name == "square.orders":  # Square orders are cancelled, never deleted
        table.columns["state"][row] = ORDER_STATES.index("CANCELED")
    else:
        table.columns["deleted"][row] = 1
    table.touch(row, now)
    world.caches.pop("hubspot.email_index", None)


def mutate(
    world: World,
    vendor: str,
    *,
    changes: int = 0,
    adds: int = 0,
    deletes: int = 0,
    table: str | None = None,
) -> MutationReport:
    """Change, add and delete records of one vendor table, stamping them with fresh times.

    Args:
        world: the world (the caller holds ``world.lock`` when a server is running).
        vendor: ``square``, ``mailchimp``, ``typeform``, ``quickbooks`` or ``hubspot``.
        changes: records to edit.
        adds: records to create.
        deletes: records to delete (archive, inactivate or cancel, as the vendor does).
        table: a table of that vendor (default: its people table), e.g. ``square.orders``.

    Returns:
        The ids touched, by kind.

    Raises:
        MutationError: on an unknown vendor or table, or a negative count.
    """
    if vendor not in DEFAULT_TABLES:
        raise MutationError(f"unknown vendor {vendor!r}; vendors: {', '.join(DEFAULT_TABLES)}")
    name = table or DEFAULT_TABLES[vendor]
    if not name.startswith(vendor + ".") or name not in world.tables:
        own = sorted(t for t in world.tables if t.startswith(vendor + "."))
        raise MutationError(f"unknown table {name!r} for {vendor}; tables: {', '.join(own)}")
    if min(changes, adds, deletes) < 0:
        raise MutationError("changes, adds and deletes must be >= 0")
    world.mutations += 1
    np_rng = np.random.default_rng([world.seed, world.mutations])
    rng = rng_for(world.seed, 0xC4A6, world.mutations)
    target = world.tables[name]
    live = np.flatnonzero(target.col("deleted") == 0)
    picked: np.ndarray | list[int] = (
        np_rng.choice(live, size=min(len(live), changes + deletes), replace=False)
        if len(live)
        else []
    )
    now = world.clock.next_second_ms()  # one stamp for the whole mutation, in a fresh second
    report = MutationReport(vendor, name, stamped_at=now)
    for row in (int(r) for r in picked[:changes]):
        if name == "typeform.responses":  # responses never change: the person answers again
            new = _add(world, name, np_rng, now)
            report.added.append(_record_id(world, name, new))
            continue
        _change(world, name, row, rng, now)
        report.changed.append(_record_id(world, name, row))
    for _ in range(adds):
        row = _add(world, name, np_rng, now)
        report.added.append(_record_id(world, name, row))
    for row in (int(r) for r in picked[changes:]):
        _delete(world, name, row, now)
        report.deleted.append(_record_id(world, name, row))
    return report


def add_response(world: World, form: int) -> int:
    """A new Typeform response to form ``form`` (index) submitted now; returns its row."""
    world.mutations += 1
    np_rng = np.random.default_rng([world.seed, world.mutations])
    person = _pick_person(world, "typeform.responses", np_rng)
    now = world.clock.now_ms()
    table = world.tables["typeform.responses"]
    return table.append({"person": person, "form": form, "created": now - 90_000, "updated": now})


__all__ = ["MutationError", "MutationReport", "add_response", "mutate"]
