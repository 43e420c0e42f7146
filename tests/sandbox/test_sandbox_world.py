"""The seeded world: deterministic, a story worth matching, and a ground truth that adds up."""

from __future__ import annotations

import collections
import re

import pytest

from connectors.sandbox import World, build_world, mutate, truth_rows
from connectors.sandbox.world import PEOPLE_TABLES

SYSTEMS = sorted(PEOPLE_TABLES)


def _bodies(world: World, table: str, count: int = 40) -> list[dict]:
    return [world.tables[table].body(row) for row in range(min(count, len(world.tables[table])))]


def test_same_seed_gives_the_same_world() -> None:
    first, second = build_world(11, 120), build_world(11, 120)
    assert [r for r in truth_rows(first)] == [r for r in truth_rows(second)]
    for table in first.tables:
        assert _bodies(first, table, 15) == _bodies(second, table, 15), table


def test_another_seed_gives_another_world() -> None:
    first, second = build_world(11, 120), build_world(12, 120)
    assert _bodies(first, "square.customers", 5) != _bodies(second, "square.customers", 5)


def test_mutations_are_deterministic_too() -> None:
    reports = []
    for _ in range(2):
        world = build_world(3, 100, wall_clock=lambda: 0)
        reports.append(mutate(world, "square", changes=3, adds=2, deletes=1).to_json())
    assert reports[0] == reports[1]


def test_prerendered_bodies_are_the_rendered_ones_until_a_row_changes() -> None:
    rendered, ahead = (
        build_world(5, 150, wall_clock=lambda: 0),
        build_world(5, 150, wall_clock=lambda: 0),
    )
    for table in ahead.tables.values():
        table.prerender()
    for name in ahead.tables:
        count = len(ahead.tables[name])
        assert _bodies(ahead, name, count) == _bodies(rendered, name, count), name

    orders = [
        mutate(w, "square", table="square.orders", changes=5, adds=2, deletes=1).to_json()
        for w in (rendered, ahead)
    ]
    mutate(rendered, "quickbooks", table="quickbooks.invoices", changes=5, deletes=2)
    mutate(ahead, "quickbooks", table="quickbooks.invoices", changes=5, deletes=2)
    assert orders[0] == orders[1]
    for name in ("square.orders", "quickbooks.invoices"):
        count = len(ahead.tables[name])
        assert _bodies(ahead, name, count) == _bodies(rendered, name, count), name


@pytest.mark.parametrize("customers", [0, 1_000_001], ids=["zero", "over-a-million"])
def test_world_size_is_bounded(customers: int) -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        build_world(1, customers)


def test_every_record_maps_to_exactly_one_person(world: World) -> None:
    rows = list(truth_rows(world))
    keys = [(r.system, r.record_id) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r.system for r in rows} == set(SYSTEMS)
    expected = sum(len(world.tables[t]) for t in PEOPLE_TABLES.values())
    assert len(rows) == expected
    assert all(re.fullmatch(r"P\d{7}", r.person_id) for r in rows)


def test_truth_ids_are_the_ids_the_apis_serve(world: World) -> None:
    first: dict[str, str] = {}
    for row in truth_rows(world):
        first.setdefault(row.system, row.record_id)
    assert first["square"] == world.tables["square.customers"].body(0)["id"]
    assert first["hubspot"] == world.tables["hubspot.contacts"].body(0)["id"]
    assert first["quickbooks"] == world.tables["quickbooks.customers"].body(0)["Id"]
    assert first["typeform"] == world.tables["typeform.responses"].body(0)["response_id"]
    member = world.tables["mailchimp.members"].body(0)
    assert first["mailchimp"] == f"{member['list_id']}:{member['id']}"


def test_households_share_surname_address_and_phone() -> None:
    world = build_world(7, 2000)
    members = collections.defaultdict(list)
    for index in range(world.n_people):
        members[world.person_household[index]].append(world.person(index))
    shared = [people for people in members.values() if len(people) > 1]
    people_in_households = sum(len(p) for p in shared)
    assert people_in_households >= 0.05 * world.n_people
    for people in shared[:50]:
        assert len({p.last for p in people}) == 1
        assert len({p.household.address for p in people}) == 1
        assert len({p.household.landline for p in people}) == 1
        assert len({p.email for p in people}) == len(people)


def test_the_same_person_is_written_differently_across_systems(world: World) -> None:
    """Nicknames, other e-mails, reformatted phones: the differences matching must survive."""
    by_person = collections.defaultdict(dict)
    for row in range(len(world.tables["square.customers"])):
        body = world.tables["square.customers"].body(row)
        by_person[world.tables["square.customers"].get("person", row)]["square"] = body
    for row in range(len(world.tables["hubspot.contacts"])):
        body = world.tables["hubspot.contacts"].body(row)
        by_person[world.tables["hubspot.contacts"].get("person", row)]["hubspot"] = body
    both = [v for v in by_person.values() if len(v) == 2]
    assert both
    names_differ = sum(
        v["square"].get("given_name") != v["hubspot"]["properties"]["firstname"] for v in both
    )
    emails_differ = sum(
        v["square"].get("email_address") not in (None, v["hubspot"]["properties"]["email"])
        for v in both
    )
    assert names_differ > 0
    assert emails_differ > 0


def test_the_story_is_in_the_data() -> None:
    world = build_world(7, 1500)
    qb = world.tables["quickbooks.customers"]
    assert any(qb.body(r)["Balance"] > 0 for r in range(len(qb))), "someone owes money"
    statuses = {world.tables["mailchimp.members"].body(r)["status"] for r in range(300)}
    assert {"subscribed", "unsubscribed"} <= statuses
    answers = [a for r in range(100) for a in world.tables["typeform.responses"].body(r)["answers"]]
    refs = {a["field"]["ref"] for a in answers}
    assert {"birthday", "favourite_dish", "home_branch"} <= refs
    orders = world.tables["square.orders"]
    locations = {orders.body(r)["location_id"] for r in range(300)}
    assert len(locations) >= 4
    item = orders.body(0)["line_items"][0]
    assert isinstance(item["quantity"], str) and isinstance(item["base_price_money"]["amount"], int)
    moved = [p for p in map(world.person, range(world.n_people)) if p.household.previous_address]
    assert moved, "some households moved house"
