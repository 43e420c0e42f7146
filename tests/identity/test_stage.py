"""The resolve stage against a real store: masters, stable ids, merges, splits, overrides."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, inspect, select, update

from crm_hub.errors import BusyError
from crm_hub.identity import stage as stage_module
from crm_hub.identity.ids import master_id_for
from crm_hub.identity.settings import MatchSettings
from crm_hub.identity.stage import resolve_store
from crm_hub.normalize.email import normalize_email
from crm_hub.store import Store
from crm_hub.store.leases import hold_lease, lease_holders
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import (
    identity_overrides,
    leases,
    master_events,
    master_links,
    masters,
    review_queue,
    runs,
    source_customers,
)

ANNA_POS = {"source": "pos", "source_id": "1", "first_name": "Anna", "last_name": "Berg",
            "email": "anna.berg@gmail.com", "phone": "+4915112345678", "birth_year": 1990,
            "birth_month": 4, "birth_day": 2}  # fmt: skip
ANNA_NEWS = {"source": "news", "source_id": "a-9", "first_name": "Anna", "last_name": "Berg",
             "email": "anna.berg@gmail.com"}  # fmt: skip
TOM = {"source": "pos", "source_id": "2", "first_name": "Tom", "last_name": "Novak",
       "email": "tom.novak@web.de", "phone": "+4915199988877"}  # fmt: skip


def add(store: Store, *people: dict[str, Any], seq: int = 1) -> None:
    now = utcnow()
    with store.begin() as conn:
        for person in people:
            if person.get("email"):  # what the map stage derives
                person = {**person, "email_match_key": normalize_email(person["email"]).match_key}
            conn.execute(source_customers.insert().values(
                stream="customers", raw_id=1, raw_change_seq=seq, mapped_at=now, deleted=False,
                **person))  # fmt: skip


def links(store: Store) -> dict[tuple[str, str], str]:
    with store.read() as conn:
        rows = conn.execute(select(master_links.c.source, master_links.c.source_id,
                                   master_links.c.master_id))  # fmt: skip
        return {(s, i): m for s, i, m in rows}


def statuses(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.read() as conn:
        rows = conn.execute(select(masters.c.master_id, masters.c.status, masters.c.merged_into))
        return {m: (s, into) for m, s, into in rows}


def events(store: Store) -> list[tuple[str, str, list[str] | None]]:
    with store.read() as conn:
        e = master_events.c
        rows = conn.execute(select(e.kind, e.master_id, e.other_ids).order_by(e.id))
        return [(k, m, o) for k, m, o in rows]


def test_same_person_across_sources_gets_one_master_with_evidence(store: Store) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    result = resolve_store(store)
    assert (result.records, result.masters, result.created) == (3, 2, 2)
    found = links(store)
    assert found[("pos", "1")] == found[("news", "a-9")] == master_id_for("news", "a-9")
    assert found[("pos", "2")] == master_id_for("pos", "2")
    with store.read() as conn:
        anna = conn.execute(select(master_links).where(master_links.c.source == "news")).one()
        tom = conn.execute(select(master_links).where(master_links.c.source_id == "2")).one()
    assert anna.reason.startswith("rule:") or anna.reason == "score"
    assert anna.evidence["linked_to"] == ["pos", "1"]
    assert anna.evidence["levels"]
    assert (tom.reason, tom.probability, tom.evidence) == ("single", None, None)
    assert sorted(kind for kind, _, _ in events(store)) == ["created", "created"]


def test_rerun_without_change_does_nothing(store: Store) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    resolve_store(store)
    again = resolve_store(store)
    assert again.skipped and again.links_written == 0
    forced = resolve_store(store, force=True)
    assert not forced.skipped
    assert (forced.links_written, forced.created, forced.merged) == (0, 0, 0)
    assert len(events(store)) == 2


def test_new_record_joins_existing_master_and_bridge_merges_two(store: Store) -> None:
    add(store, ANNA_POS, TOM, seq=1)
    resolve_store(store)
    anna = links(store)[("pos", "1")]
    add(store, ANNA_NEWS, seq=2)
    result = resolve_store(store)
    assert (result.links_written, result.created) == (2, 0)  # pos:1 is no longer single
    assert links(store)[("news", "a-9")] == anna

    # Two masters of one person (different e-mails), then a record that has both keys.
    other = {"source": "forms", "source_id": "f1", "first_name": "Anna", "last_name": "Berg",
             "email": "anna@berg-design.de"}  # fmt: skip
    add(store, other, seq=3)
    resolve_store(store)
    before = links(store)
    assert before[("forms", "f1")] != anna
    bridge = {"source": "forms", "source_id": "f2", "first_name": "Anna", "last_name": "Berg",
              "email": "anna@berg-design.de", "phone": "+4915112345678"}  # fmt: skip
    add(store, bridge, seq=4)
    merged = resolve_store(store)
    after = links(store)
    assert after[("forms", "f1")] == after[("pos", "1")] == anna  # the bigger master survives
    assert merged.merged == 1
    assert statuses(store)[before[("forms", "f1")]] == ("merged", anna)
    assert ("merged", anna, [before[("forms", "f1")]]) in events(store)


def test_cannot_link_override_splits_and_must_link_joins(store: Store) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    resolve_store(store)
    anna = links(store)[("pos", "1")]
    with store.begin() as conn:
        conn.execute(identity_overrides.insert(), [
            {"kind": "cannot_link", "left_source": "news", "left_source_id": "a-9",
             "right_source": "pos", "right_source_id": "1", "origin": "cli",
             "created_at": utcnow()}])  # fmt: skip
    split = resolve_store(store)
    found = links(store)
    assert found[("pos", "1")] != found[("news", "a-9")]
    assert anna in (found[("pos", "1")], found[("news", "a-9")])  # one part keeps the id
    assert split.split == 1
    assert any(kind == "split" and others == [anna] for kind, _, others in events(store))

    with store.begin() as conn:
        conn.execute(identity_overrides.insert(), [
            {"kind": "must_link", "left_source": "pos", "left_source_id": "2",
             "right_source": "news", "right_source_id": "a-9", "origin": "cli",
             "created_at": utcnow()}])  # fmt: skip
    resolve_store(store)
    found = links(store)
    assert found[("pos", "2")] == found[("news", "a-9")] != found[("pos", "1")]


def test_deleted_source_customer_leaves_and_empty_master_retires(store: Store) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    resolve_store(store)
    tom = links(store)[("pos", "2")]
    with store.begin() as conn:
        conn.execute(update(source_customers).where(source_customers.c.source_id == "2")
                     .values(deleted=True, raw_change_seq=9))  # fmt: skip
    result = resolve_store(store)
    assert ("pos", "2") not in links(store)
    assert statuses(store)[tom] == ("retired", None)
    assert result.retired == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ids_do_not_depend_on_insert_order(seed: int, tmp_path: Any) -> None:
    from crm_hub.store import open_store

    people = [ANNA_POS, ANNA_NEWS, TOM] + [
        {"source": "pos", "source_id": f"x{i}", "first_name": name, "last_name": "Kowalski",
         "email": f"{name.lower()}.k{i % 3}@gmail.com"}
        for i, name in enumerate(["Jan", "Janek", "Ewa", "Piotr", "Jan", "Ewa"])
    ]  # fmt: skip
    shuffled = people[:]
    random.Random(seed).shuffle(shuffled)
    results = []
    for index, batch in enumerate((people, shuffled)):
        store = open_store(f"sqlite:///{tmp_path}/order-{index}.db")
        try:
            add(store, *batch)
            resolve_store(store)
            results.append(links(store))
        finally:
            store.dispose()
    assert results[0] == results[1]


def test_review_queue_keeps_maybe_pairs_open_and_decided_ones_decided(store: Store) -> None:
    # Same surname and birthday, first name an initial, different e-mails: a "maybe" pair
    # once the match threshold is above its probability.
    left = {
        "source": "pos",
        "source_id": "8",
        "first_name": "Maria",
        "last_name": "Lindqvist",
        "email": "maria.l@gmail.com",
        "birth_year": 1980,
        "birth_month": 2,
        "birth_day": 3,
    }
    right = {"source": "news", "source_id": "m8", "first_name": "M", "last_name": "Lindqvist",
             "email": "maria.l@yahoo.com", "birth_year": 1980, "birth_month": 2, "birth_day": 3,
             "city": "Uppsala"}  # fmt: skip
    add(store, left, right, TOM)
    strict = MatchSettings(threshold=0.99999, review_threshold=0.5)
    result = resolve_store(store, settings=strict)
    assert result.masters == 3 and result.review_open == 1
    with store.read() as conn:
        row = conn.execute(select(review_queue)).one()
    assert (row.left_source, row.right_source, row.status) == ("news", "pos", "open")
    assert row.evidence["levels"] and 0.5 <= row.probability < 0.99999

    with store.begin() as conn:
        conn.execute(update(review_queue).values(status="kept_apart", decided_by="ops"))
    again = resolve_store(store, settings=strict, force=True)
    with store.read() as conn:
        assert conn.execute(select(review_queue.c.status)).scalar_one() == "kept_apart"
    assert again.review_open == 0


def test_online_match_finds_the_known_person_and_says_no_to_a_stranger(store: Store) -> None:
    from crm_hub.identity.online import OnlineMatcher

    add(store, ANNA_POS, ANNA_NEWS, TOM)
    resolve_store(store)
    anna = links(store)[("pos", "1")]
    matcher = OnlineMatcher(store)
    known = matcher.match({"first_name": "anna", "last_name": "BERG",
                           "email": "Anna.Berg@GMAIL.com"})  # fmt: skip
    assert known.master_id == anna and known.decision != "no"
    assert {(c.source, c.source_id) for c in known.candidates} == {("pos", "1"), ("news", "a-9")}
    by_phone = matcher.match({"first_name": "Anna", "last_name": "Berg",
                              "phone": "+49 151 12345678", "birth_date": "1990-04-02"})  # fmt: skip
    assert by_phone.master_id == anna and by_phone.decision.startswith("rule:")
    stranger = matcher.match({"first_name": "Tim", "last_name": "Novak",
                              "email": "tim.novak@web.de", "phone": "+4915199988877"})  # fmt: skip
    assert stranger.master_id is None  # shares Tom's phone, not his name
    assert [c.source_id for c in stranger.candidates] == ["2"]
    assert matcher.match({"first_name": "Nobody"}).candidates == []


def test_a_model_saved_before_a_comparison_gained_a_level_is_not_used(store: Store) -> None:
    import numpy as np

    from crm_hub.identity.online import load_model, save_model
    from crm_hub.identity.scoring import FellegiSunter

    two = [np.array([0.4, 0.6])]  # e-mail as it was: different, exact
    with store.begin() as conn:
        save_model(conn, FellegiSunter(("email",), two, two, two, 0.1))
    with store.read() as conn:
        assert load_model(conn) is None  # a full resolve trains a new one
    three = [np.array([0.4, 0.1, 0.5])]
    with store.begin() as conn:
        save_model(conn, FellegiSunter(("email",), three, three, three, 0.1))
    with store.read() as conn:
        assert load_model(conn) is not None


def crowd(count: int) -> list[dict[str, Any]]:
    """A population of distinct people, some with a second record in another source."""
    rng = random.Random(5)
    first = ["Anna", "Tom", "Ewa", "Jan", "Lena", "Omar", "Sara", "Paul", "Mia", "Ivan"]
    last = ["Berg", "Novak", "Kowalski", "Smith", "Haddad", "Rossi", "Klein", "Moreau"]
    people = []
    for i in range(count):
        person = {"source": "pos", "source_id": f"p{i}", "first_name": rng.choice(first),
                  "last_name": f"{rng.choice(last)}{i % 37}", "email": f"user{i}@gmail.com",
                  "phone": f"+44770090{i:04d}", "birth_year": 1950 + i % 50,
                  "birth_month": 1 + i % 12, "birth_day": 1 + i % 28}  # fmt: skip
        people.append(person)
        if i % 3 == 0:
            people.append({**person, "source": "news", "source_id": f"n{i}", "phone": None})
    return people


def test_incremental_run_touches_the_neighbourhood_and_agrees_with_a_full_run(
    store: Store,
) -> None:
    add(store, *crowd(400), seq=1)
    first = resolve_store(store, incremental_from=0)
    assert not first.incremental and first.records == 534
    p7 = next(person for person in crowd(400) if person["source_id"] == "p7")
    newcomer = {"source": "forms", "source_id": "f1", "first_name": p7["first_name"],
                "last_name": p7["last_name"], "email": "User7@gmail.com"}  # fmt: skip
    stranger = {"source": "forms", "source_id": "f2", "first_name": "Zoe", "last_name": "Quill",
                "email": "zoe.quill@gmail.com"}  # fmt: skip
    known = links(store)
    add(store, newcomer, stranger, seq=2)
    second = resolve_store(store, incremental_from=0)
    assert second.incremental and second.records < 10  # not the whole store
    found = links(store)
    assert found[("forms", "f1")] == known[("pos", "p7")]
    assert found[("forms", "f2")] not in known.values()
    assert {k: v for k, v in found.items() if k in known} == known  # nobody else moved
    full = resolve_store(store, force=True)
    assert not full.incremental and full.links_written == 0  # the full run agrees
    assert links(store) == found


# --- Lease and write atomicity: a resolve longer than the lease TTL (SQLite and PostgreSQL). ---

LEASE_TTL = 1.0
LONGER_THAN_TTL = 2.5


def competitor(store: Store) -> tuple[threading.Thread, list[str]]:
    """Another run trying to take the resolve lease now, in its own thread."""
    outcome: list[str] = []

    def attempt() -> None:
        try:
            with hold_lease(store, "resolve", "COMPETITOR", ttl=LEASE_TTL):
                outcome.append("took the lease")
        except BusyError:
            outcome.append("busy")
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    return thread, outcome


def answer(thread: threading.Thread, outcome: list[str], within: float = 10.0) -> str:
    thread.join(timeout=within)
    return outcome[0] if outcome else "still blocked"


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_HUB_SYNC__LEASE_TTL_SECONDS", str(LEASE_TTL))


def slow_engine(monkeypatch: pytest.MonkeyPatch, during: Callable[[], None]) -> None:
    """Make matching take LONGER_THAN_TTL, then call ``during`` (still matching)."""
    real = stage_module.resolve

    def engine(*args: Any, **kwargs: Any) -> Any:
        time.sleep(LONGER_THAN_TTL)
        during()
        return real(*args, **kwargs)

    monkeypatch.setattr(stage_module, "resolve", engine)


def on_write(store: Store, action: Callable[[Any], None]) -> None:
    """Call ``action(conn)`` once, inside the resolve's write transaction (at its watermark)."""
    done: list[bool] = []

    def hook(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not done and statement.lstrip().upper().startswith("INSERT INTO IDENTITY_STATE"):
            done.append(True)
            action(conn)

    event.listen(store.engine, "before_cursor_execute", hook)


def test_resolve_keeps_its_lease_while_matching_longer_than_the_ttl(
    store: Store, short_lease: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    seen: dict[str, Any] = {}

    def during() -> None:
        seen["live"] = "resolve" in lease_holders(store)
        seen["competitor"] = answer(*competitor(store))

    slow_engine(monkeypatch, during)
    result = resolve_store(store)
    assert seen == {"live": True, "competitor": "busy"}  # not expired, not blocked, not taken
    assert result.masters == 2 and lease_holders(store) == {}


def test_resolve_keeps_its_lease_while_writing_longer_than_the_ttl(
    store: Store, short_lease: None
) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    attempts: list[tuple[threading.Thread, list[str]]] = []

    def long_write(_conn: Any) -> None:
        time.sleep(LONGER_THAN_TTL)
        attempts.append(competitor(store))  # SQLite: waits for the commit; then still ours

    on_write(store, long_write)
    result = resolve_store(store)
    assert result.masters == 2
    assert answer(*attempts[0]) == "busy"


def test_failed_write_leaves_the_previous_resolution_whole(store: Store) -> None:
    add(store, ANNA_POS, TOM, seq=1)
    resolve_store(store)
    before = (links(store), statuses(store), events(store))
    add(store, ANNA_NEWS, seq=2)

    def crash(_conn: Any) -> None:
        raise RuntimeError("disk full")

    on_write(store, crash)
    with pytest.raises(RuntimeError, match="disk full"):
        resolve_store(store)
    assert (links(store), statuses(store), events(store)) == before
    with store.read() as conn:
        assert conn.execute(select(runs.c.status).order_by(runs.c.started_at.desc())).first() == (
            "failed",
        )
    again = resolve_store(store)  # the next run does the work
    assert again.links_written == 2 and links(store)[("news", "a-9")] == before[0][("pos", "1")]


def test_run_that_lost_its_lease_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, ANNA_POS, ANNA_NEWS, TOM)

    def taken_over() -> None:  # as another host does once the lease lapsed
        with store.begin() as conn:
            conn.execute(update(leases).where(leases.c.name == "resolve").values(holder="OTHER"))

    slow_engine(monkeypatch, taken_over)
    with pytest.raises(BusyError, match="lost its lease"):
        resolve_store(store)
    assert links(store) == {} and statuses(store) == {}


def test_erasure_while_matching_fails_the_run_and_stays_erased(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_hub.erase import erase_person

    add(store, ANNA_POS, TOM, seq=1)
    resolve_store(store)
    tom = links(store)[("pos", "2")]
    add(store, ANNA_NEWS, seq=2)
    slow_engine(monkeypatch, lambda: erase_person(store, tom))
    with pytest.raises(BusyError, match="masters changed"):
        resolve_store(store)
    assert statuses(store)[tom][0] == "erased" and ("pos", "2") not in links(store)
    monkeypatch.undo()
    resolve_store(store)  # starts over from the erased state
    assert statuses(store)[tom][0] == "erased" and ("pos", "2") not in links(store)
    assert links(store)[("news", "a-9")] == links(store)[("pos", "1")]


def test_large_first_write_rebuilds_the_indexes_it_set_aside(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_hub.identity import bulk

    def index_names() -> list[str]:
        found = []
        for table in ("master_links", "masters", "master_events"):
            found += sorted(str(ix["name"]) for ix in inspect(store.engine).get_indexes(table))
        return found

    before = index_names()
    monkeypatch.setattr(bulk, "_REBUILD_FROM", 2)  # every first write counts as large
    add(store, ANNA_POS, ANNA_NEWS, TOM)
    result = resolve_store(store)
    assert result.masters == 2 and len(links(store)) == 3
    inspect(store.engine).clear_cache()
    assert index_names() == before and any("master_id" in name for name in before)
