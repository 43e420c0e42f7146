"""The sandbox world: who exists, which system knows them, and how.

``build_world(seed, customers)`` draws, with numpy and in a few vectorised passes, the compact
columns of every table (owner person, timestamps, statuses); record bodies are rendered later,
one at a time, by the vendor ``*_records`` modules. 100 000 customers build in well under a
second and take a few tens of MB.

The story: a network of six restaurants (``vocab.BRANCHES``). Regulars pay at the till (Square),
read the newsletter (Mailchimp), fill in the birthday-club and feedback forms (Typeform), book
events paid by invoice (QuickBooks) and are tracked by marketing (HubSpot). Households share a
surname, an address and a home phone. Each system writes people its own way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from connectors.sandbox import vocab
from connectors.sandbox.people import People, Person
from connectors.sandbox.table import Column, Table
from connectors.sandbox.times import DAY_MS, DEFAULT_ANCHOR, WorldClock

# Systems whose records are people, and the table holding them (the ground truth covers these).
PEOPLE_TABLES: dict[str, str] = {
    "square": "square.customers",
    "mailchimp": "mailchimp.members",
    "typeform": "typeform.responses",
    "quickbooks": "quickbooks.customers",
    "hubspot": "hubspot.contacts",
}

MAX_CUSTOMERS = 1_000_000
_YEAR_MS = 365 * DAY_MS

# Codes kept in numpy columns.
MAILCHIMP_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
ORDER_STATES = ("COMPLETED", "OPEN", "CANCELED")


@dataclass
class World:
    """Everything the sandbox serves, for one seed.

    Attributes:
        seed: the seed it was built from.
        anchor_ms: the instant seeded data ends.
        people: lazy person/household builder.
        tables: record tables by name (``"square.customers"``...).
        clock: hands out timestamps for run-time changes.
        lock: held by the server around every read and write of the world.
        record_ids: per people table, the function giving a row's vendor id.
        caches: derived lookups (e-mail indexes, sort keys) that vendors build on first use.
    """

    seed: int
    anchor_ms: int
    people: People
    person_household: Column
    person_rank: Column
    household_branch: Column
    household_moved: Column
    tables: dict[str, Table]
    clock: WorldClock
    lock: threading.RLock = field(default_factory=threading.RLock)
    record_ids: dict[str, Callable[[int], str]] = field(default_factory=dict)
    caches: dict[str, Any] = field(default_factory=dict)
    mutations: int = 0

    @property
    def n_people(self) -> int:
        """How many persons exist (seeded and added)."""
        return len(self.person_household)

    def person(self, index: int) -> Person:
        """The person with this index."""
        return self.people.person(index)

    def table(self, name: str) -> Table:
        """A table by name (``KeyError`` lists the names on a miss)."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}; tables: {sorted(self.tables)}") from None

    def add_person(self, rng: np.random.Generator) -> int:
        """Create a new person in a new household near a random branch; returns its index."""
        household = len(self.household_branch)
        branch = int(rng.choice(len(vocab.BRANCHES), p=vocab.BRANCH_WEIGHTS))
        self.household_branch.append(branch)
        self.household_moved.append(0)
        self.person_household.append(household)
        self.person_rank.append(0)
        return len(self.person_household) - 1


def _household_layout(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    sizes = rng.choice(np.array([1, 2, 3, 4]), size=max(n, 1), p=[0.905, 0.065, 0.022, 0.008])
    cumulative = np.cumsum(sizes)
    count = int(np.searchsorted(cumulative, n)) + 1
    sizes = sizes[:count].copy()
    sizes[-1] -= int(cumulative[count - 1]) - n
    household = np.repeat(np.arange(count, dtype=np.int64), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    rank = np.arange(n, dtype=np.int64) - starts
    return household, rank, count


def _record_times(
    rng: np.random.Generator, start: np.ndarray, anchor: int, *, spread_days: int = 45
) -> tuple[np.ndarray, np.ndarray]:
    """created = start + up to ``spread_days``; updated = created or a later edit (< anchor)."""
    created = start + rng.integers(0, spread_days * DAY_MS, len(start))
    created = np.minimum(created, anchor - DAY_MS - rng.integers(0, DAY_MS, len(start)))
    edited = rng.random(len(start)) < 0.6
    delta = rng.exponential(150 * DAY_MS, len(start)).astype(np.int64)
    updated = np.where(
        edited, np.minimum(created + delta, anchor - rng.integers(0, DAY_MS, len(start))), created
    )
    return created, np.maximum(updated, created)


def _last_day(rng: np.random.Generator, anchor: int, size: int) -> np.ndarray:
    """Instants spread over the day before the anchor: the cap of times drawn past it.

    One cap for all would stamp every such record with the anchor's last second, which an
    inclusive incremental cursor then reads again on every sync (and which saturates QuickBooks'
    change data capture). The draws come from a child generator: the world's others stay as they
    were.
    """
    return anchor - 1000 - rng.spawn(1)[0].integers(0, DAY_MS, size)


# Narrow column types keep a million-customer world in a few hundred MB.
_INT64_COLUMNS = {"created", "updated", "total", "paid", "amount"}
_INT8_COLUMNS = {"variant", "location", "state", "list", "status", "form", "tender_only", "item"}


def _sorted_table(name: str, columns: dict[str, np.ndarray]) -> Table:
    """Make a table whose row order is creation order (ids then grow with time, like vendors')."""
    order = np.lexsort((columns["person"], columns["created"]))

    def narrow(key: str, values: np.ndarray) -> np.ndarray:
        dtype = np.int64 if key in _INT64_COLUMNS else np.int8 if key in _INT8_COLUMNS else np.int32
        return values[order].astype(dtype, copy=False)

    return Table(name, {k: narrow(k, v) for k, v in columns.items()})


def build_world(
    seed: int = 7,
    customers: int = 3000,
    *,
    anchor: datetime = DEFAULT_ANCHOR,
    wall_clock: Callable[[], int] | None = None,
) -> World:
    """Build the deterministic world of a seed.

    Args:
        seed: same seed, same world (people, records, ids, timestamps).
        customers: number of real persons (1 to 1 000 000).
        anchor: the instant seeded data ends; run-time changes are stamped later than it.
        wall_clock: epoch-milliseconds source for run-time changes (tests may inject one).

    Returns:
        The world, with every table's renderer attached.

    Raises:
        ValueError: when ``customers`` is out of range.
    """
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS}, got {customers}")
    rng = np.random.default_rng(seed)
    n = customers
    anchor_ms = int(anchor.timestamp() * 1000)

    household, rank, n_households = _household_layout(rng, n)
    branch = rng.choice(len(vocab.BRANCHES), size=n_households, p=vocab.BRANCH_WEIGHTS)
    moved = rng.random(n_households) < 0.12
    moved_ms = np.where(moved, anchor_ms - rng.integers(20 * DAY_MS, 900 * DAY_MS, n_households), 0)

    person_household = Column(household)
    person_rank = Column(rank)
    household_branch = Column(branch)
    household_moved = Column(moved_ms)
    digits = max(4, len(str(4 * n)))
    people = People(
        seed,
        anchor_ms,
        digits,
        household_branch=lambda h: household_branch[h],
        household_moved=lambda h: household_moved[h],
        household_of=lambda i: (person_household[i], person_rank[i]),
    )

    first_seen = anchor_ms - rng.integers(30 * DAY_MS, 3 * _YEAR_MS, n)
    u = rng.random((n, 5))
    member = {
        "square": u[:, 0] < 0.80,
        "mailchimp": u[:, 1] < 0.50,
        "typeform": u[:, 2] < 0.28,
        "hubspot": u[:, 3] < 0.30,
        "quickbooks": u[:, 4] < 0.05,
    }
    nobody = ~np.logical_or.reduce(list(member.values()))
    member["square"] |= nobody
    persons = np.arange(n, dtype=np.int64)
    home_branch = branch[household]

    tables: dict[str, Table] = {}
    tables["square.customers"] = _square_customers(
        rng, persons[member["square"]], first_seen, home_branch, anchor_ms
    )
    tables["square.orders"] = _square_orders(
        rng, tables["square.customers"], home_branch, anchor_ms
    )
    tables["mailchimp.members"] = _mailchimp_members(
        rng, persons[member["mailchimp"]], first_seen, anchor_ms
    )
    tables["typeform.responses"] = _typeform_responses(
        rng, persons[member["typeform"]], first_seen, anchor_ms
    )
    qb_people = persons[member["quickbooks"]]
    created, updated = _record_times(rng, first_seen[qb_people], anchor_ms, spread_days=120)
    tables["quickbooks.customers"] = _sorted_table(
        "quickbooks.customers", {"person": qb_people, "created": created, "updated": updated}
    )
    tables["quickbooks.invoices"], tables["quickbooks.payments"] = _quickbooks_ledger(
        rng, tables["quickbooks.customers"], anchor_ms
    )
    hs_people = persons[member["hubspot"]]
    created, updated = _record_times(rng, first_seen[hs_people], anchor_ms, spread_days=200)
    tables["hubspot.contacts"] = _sorted_table(
        "hubspot.contacts", {"person": hs_people, "created": created, "updated": updated}
    )

    floor = max(int(t.col("updated").max()) if len(t) else 0 for t in tables.values())
    world = World(
        seed=seed,
        anchor_ms=anchor_ms,
        people=people,
        person_household=person_household,
        person_rank=person_rank,
        household_branch=household_branch,
        household_moved=household_moved,
        tables=tables,
        clock=WorldClock(max(floor, anchor_ms), wall_clock),
    )
    from connectors.sandbox import renderers  # late: renderers import this module

    renderers.attach(world)
    return world


def _square_customers(
    rng: np.random.Generator,
    people: np.ndarray,
    first_seen: np.ndarray,
    home_branch: np.ndarray,
    anchor: int,
) -> Table:
    created, updated = _record_times(rng, first_seen[people], anchor)
    location = np.where(
        rng.random(len(people)) < 0.85, home_branch[people], rng.integers(0, 6, len(people))
    )
    dup = rng.random(len(people)) < 0.025  # a second profile made at the till, phone only
    dup_people = people[dup]
    dup_created = np.minimum(
        created[dup] + rng.integers(DAY_MS, 400 * DAY_MS, len(dup_people)), anchor - DAY_MS
    )
    return _sorted_table(
        "square.customers",
        {
            "person": np.concatenate([people, dup_people]),
            "variant": np.concatenate(
                [np.zeros(len(people), np.int64), np.ones(len(dup_people), np.int64)]
            ),
            "created": np.concatenate([created, dup_created]),
            "updated": np.concatenate([updated, dup_created]),
            "location": np.concatenate([location, rng.integers(0, 6, len(dup_people))]),
        },
    )


def _square_orders(
    rng: np.random.Generator, customers: Table, home_branch: np.ndarray, anchor: int
) -> Table:
    primary = np.flatnonzero(customers.col("variant") == 0)
    counts = rng.poisson(rng.gamma(1.1, 2.7, len(primary)))
    rows = np.repeat(primary, counts)
    person = customers.col("person")[rows]
    start = customers.col("created")[rows]
    created = start + (rng.random(len(rows)) * (anchor - start)).astype(np.int64)
    n_guest = len(rows) // 4
    guest_created = anchor - rng.integers(DAY_MS, 3 * _YEAR_MS, n_guest)
    location = np.where(
        rng.random(len(rows)) < 0.75, home_branch[person], rng.integers(0, 6, len(rows))
    )
    all_created = np.concatenate([created, guest_created])
    total = len(all_created)
    state = rng.choice(3, size=total, p=[0.93, 0.03, 0.04])
    closing = rng.integers(5 * 60_000, 3 * 3_600_000, total)
    late = rng.random(total) < 0.03  # refunded or amended later
    closing = np.where(late, rng.integers(DAY_MS, 20 * DAY_MS, total), closing)
    updated = np.minimum(all_created + closing, _last_day(rng, anchor, total))
    open_recent = state == 1
    updated = np.where(open_recent, all_created, updated)
    return _sorted_table(
        "square.orders",
        {
            "person": np.concatenate([person, np.full(n_guest, -1)]),
            "customer": np.concatenate([rows, np.full(n_guest, -1)]),
            "tender_only": np.concatenate(
                [rng.random(len(rows)) < 0.15, np.zeros(n_guest, bool)]
            ).astype(np.int64),
            "location": np.concatenate([location, rng.integers(0, 6, n_guest)]),
            "state": state,
            "created": all_created,
            "updated": np.maximum(updated, all_created),
        },
    )


def _mailchimp_members(
    rng: np.random.Generator, people: np.ndarray, first_seen: np.ndarray, anchor: int
) -> Table:
    created, updated = _record_times(rng, first_seen[people], anchor, spread_days=90)
    status = rng.choice(5, size=len(people), p=[0.76, 0.12, 0.03, 0.04, 0.05])
    club = rng.random(len(people)) < 0.15
    c_people = people[club]
    c_created, c_updated = _record_times(
        rng, np.maximum(created[club], anchor - _YEAR_MS), anchor, spread_days=60
    )
    c_status = rng.choice(5, size=len(c_people), p=[0.9, 0.08, 0.0, 0.02, 0.0])
    return _sorted_table(
        "mailchimp.members",
        {
            "person": np.concatenate([people, c_people]),
            "list": np.concatenate(
                [np.zeros(len(people), np.int64), np.ones(len(c_people), np.int64)]
            ),
            "status": np.concatenate([status, c_status]),
            "created": np.concatenate([created, c_created]),
            "updated": np.concatenate([updated, c_updated]),
        },
    )


def _typeform_responses(
    rng: np.random.Generator, people: np.ndarray, first_seen: np.ndarray, anchor: int
) -> Table:
    twice = rng.random(len(people)) < 0.25
    who = np.concatenate([people, people[twice]])
    form = np.concatenate(
        [(rng.random(len(people)) >= 0.7).astype(np.int64), np.ones(int(twice.sum()), np.int64)]
    )
    start = first_seen[who]
    submitted = start + (rng.random(len(who)) * (anchor - start)).astype(np.int64)
    submitted -= submitted % 1000  # Typeform keeps seconds
    landed = submitted - rng.integers(20_000, 600_000, len(who))
    return _sorted_table(
        "typeform.responses", {"person": who, "form": form, "created": landed, "updated": submitted}
    )


def _quickbooks_ledger(
    rng: np.random.Generator, customers: Table, anchor: int
) -> tuple[Table, Table]:
    counts = 1 + rng.poisson(2.0, len(customers))
    rows = np.repeat(np.arange(len(customers), dtype=np.int64), counts)
    start = customers.col("created")[rows]
    created = start + (rng.random(len(rows)) * (anchor - start - DAY_MS)).astype(np.int64)
    item = rng.integers(0, len(vocab.INVOICE_ITEMS), len(rows))
    low = np.array([i[1] for i in vocab.INVOICE_ITEMS])[item]
    high = np.array([i[2] for i in vocab.INVOICE_ITEMS])[item]
    total = (low + rng.random(len(rows)) * (high - low)).astype(np.int64) // 50 * 50
    age = anchor - created
    outcome = rng.random(len(rows))
    paid_full = (outcome < 0.72) | (age > 400 * DAY_MS) & (outcome < 0.9)
    partial = ~paid_full & (outcome < 0.82)
    paid = np.where(paid_full, total, np.where(partial, total // 2 // 50 * 50, 0))
    paying = rng.integers(DAY_MS, 45 * DAY_MS, len(rows))
    pay_at = np.minimum(created + paying, _last_day(rng, anchor, len(rows)))
    updated = np.where(paid > 0, pay_at, created)
    invoices = _sorted_table(
        "quickbooks.invoices",
        {
            "person": customers.col("person")[rows],
            "customer": rows,
            "item": item,
            "total": total,
            "paid": paid,
            "created": created,
            "updated": updated,
        },
    )
    paid_rows = np.flatnonzero(invoices.col("paid") > 0)
    payments = _sorted_table(
        "quickbooks.payments",
        {
            "person": invoices.col("person")[paid_rows],
            "customer": invoices.col("customer")[paid_rows],
            "invoice": paid_rows,
            "amount": invoices.col("paid")[paid_rows],
            "created": invoices.col("updated")[paid_rows],
            "updated": invoices.col("updated")[paid_rows],
        },
    )
    return invoices, payments
