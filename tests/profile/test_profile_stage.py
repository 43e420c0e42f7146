"""The profile stage's contract: incremental, idempotent, removes profiles of merged masters,
records its run; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from profile_helpers import World, day, mid
from sqlalchemy import func, select

from crm_hub.errors import ConfigError
from crm_hub.store.canonical import Watermark, save_watermark
from crm_hub.store.schema import identity_state, profiles, runs


def three_people(w: World) -> None:
    w.customer("pos", "p1", mid(1), first_name="Ann", updated_at=day(1))
    w.customer("web", "w1", mid(1), first_name="Anne", updated_at=day(2))
    w.customer("pos", "p2", mid(2), first_name="Bob", updated_at=day(1))
    w.customer("news", "n3", mid(3), email="cy@x.com", updated_at=day(1))


def seqs(w: World) -> dict[str, int]:
    with w.store.read() as conn:
        rows = conn.execute(select(profiles.c.master_id, profiles.c.change_seq))
        return {master: seq for master, seq in rows}


def test_first_run_writes_every_profile_and_a_second_run_writes_nothing(
    world: Callable[..., World],
) -> None:
    w = world()
    three_people(w)
    first = w.run()
    assert (first.masters_read, first.profiles_written, first.removed) == (3, 3, 0)
    before = seqs(w)
    again = w.run()
    assert (again.masters_read, again.profiles_written, again.unchanged) == (0, 0, 0)
    full = w.run(full=True)
    assert (full.masters_read, full.profiles_written, full.unchanged) == (3, 0, 3)
    assert seqs(w) == before  # unchanged profiles keep their change_seq


def test_a_changed_source_customer_rewrites_only_its_master(world: Callable[..., World]) -> None:
    w = world()
    three_people(w)
    w.run()
    before = seqs(w)
    w.customer("pos", "p2", first_name="Robert", updated_at=day(5))
    result = w.run()
    assert (result.masters_read, result.profiles_written) == (1, 1)
    after = seqs(w)
    assert after[mid(2)] > before[mid(2)]
    assert {k: v for k, v in after.items() if k != mid(2)} == {
        k: v for k, v in before.items() if k != mid(2)
    }
    assert w.profile(mid(2))["first_name"] == "Robert"  # type: ignore[index]


def test_a_touched_but_unchanged_customer_writes_nothing(world: Callable[..., World]) -> None:
    w = world()
    three_people(w)
    w.run()
    w.customer("pos", "p2", first_name="Bob", updated_at=day(1))  # re-mapped, same content
    result = w.run()
    assert (result.masters_read, result.profiles_written, result.unchanged) == (1, 0, 1)


def test_a_merged_master_loses_its_profile_and_the_survivor_gains_its_values(
    world: Callable[..., World],
) -> None:
    w = world()
    three_people(w)
    w.run()
    w.merge(mid(3), into=mid(2))
    result = w.run()
    assert result.removed == 1
    assert w.profile(mid(3)) is None
    survivor = w.profile(mid(2))
    assert survivor is not None
    assert (survivor["first_name"], survivor["email"]) == ("Bob", "cy@x.com")


def test_a_deleted_source_customer_no_longer_feeds_the_profile(
    world: Callable[..., World],
) -> None:
    w = world()
    three_people(w)
    w.run()
    w.customer("web", "w1", first_name="Anne", updated_at=day(2), deleted=True)
    assert w.golden(mid(1))["first_name"] == "Ann"
    w.customer("pos", "p1", first_name="Ann", updated_at=day(1), deleted=True)
    assert w.run().removed == 1  # no live member left


def mapped_up_to(w: World, source: str, change_seq: int) -> None:
    with w.store.begin() as conn:
        save_watermark(conn, source, Watermark(change_seq, 1, "h"), run_id="x", now=day(0))


def test_a_source_mapped_late_is_not_skipped(world: Callable[..., World]) -> None:
    """pos's map lags behind web's: its changes carry raw change_seqs below web's."""
    w = world()
    three_people(w)
    mapped_up_to(w, "pos", 300)
    mapped_up_to(w, "web", 300)
    w.run()
    w.customer("web", "w1", first_name="Annie", updated_at=day(3), raw_change_seq=5_000)
    mapped_up_to(w, "web", 10_000)
    assert w.golden(mid(1))["first_name"] == "Annie"
    w.customer("pos", "p2", first_name="Robert", updated_at=day(5), raw_change_seq=400)
    mapped_up_to(w, "pos", 1_000)  # pos's map catches up, after the profile saw web's 5,000
    assert w.golden(mid(2))["first_name"] == "Robert"
    w.customer("pos", "p2", first_name="Rob", updated_at=day(6), raw_change_seq=15_000)
    assert w.golden(mid(2))["first_name"] == "Robert"  # beyond pos's map watermark: not yet
    mapped_up_to(w, "pos", 20_000)
    assert w.golden(mid(2))["first_name"] == "Rob"


def test_a_remapped_source_recomputes_its_masters(world: Callable[..., World]) -> None:
    w = world()
    three_people(w)
    mapped_up_to(w, "pos", 300)
    w.run()
    with w.store.begin() as conn:  # a new mapping: rows rewritten, raw change_seqs unchanged
        save_watermark(conn, "pos", Watermark(300, 1, "new"), run_id="x", now=day(0))
    w.customer("pos", "p2", first_name="Bobby", updated_at=day(1), raw_change_seq=20)
    assert w.golden(mid(2))["first_name"] == "Bobby"


def test_a_changed_survivorship_file_recomputes_every_profile(
    world: Callable[..., World],
) -> None:
    w = world()
    three_people(w)
    w.run()
    assert w.profile(mid(1))["first_name"] == "Anne"  # type: ignore[index]
    w2 = world("version: 1\nfields:\n  first_name: {rule: source_priority, sources: [pos]}\n")
    result = w2.run()
    # mid 1: another value; mid 2: the same value, now by source_priority; mid 3: no name
    assert result.full and result.masters_read == 3 and result.profiles_written == 2
    assert w2.profile(mid(1))["first_name"] == "Ann"  # type: ignore[index]


def test_the_run_is_recorded_and_the_watermark_saved(world: Callable[..., World]) -> None:
    w = world()
    three_people(w)
    result = w.run()
    with w.store.read() as conn:
        run = conn.execute(select(runs).where(runs.c.id == result.run_id)).one()
        mark = conn.execute(
            select(identity_state.c.value).where(identity_state.c.name == "profile_watermark")
        ).scalar_one()
    assert (run.stage, run.status, run.counts["profiles_written"]) == ("profile", "succeeded", 3)
    assert mark["links"] > 0 and mark["customers"]["pos"] > 0


def test_batches_cover_every_master(world: Callable[..., World]) -> None:
    w = world()
    for n in range(7):
        w.customer("pos", f"p{n}", mid(n), first_name=f"N{n}")
    assert w.run(batch_size=2).profiles_written == 7
    w.customer("pos", "p3", first_name="Changed")
    w.customer("pos", "p6", first_name="Changed")
    assert w.run(batch_size=1).profiles_written == 2


def test_a_broken_survivorship_file_fails_before_writing(world: Callable[..., World]) -> None:
    w = world("version: 1\nfields:\n  email: newest\n")
    three_people(w)
    with pytest.raises(ConfigError) as caught:
        w.run()
    assert "mappings/survivorship.yaml:3 fields.email" in caught.value.message
    with w.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(profiles)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(runs)).scalar() == 0
