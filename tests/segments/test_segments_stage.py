"""The segments stage on SQLite and PostgreSQL: entries, exits with their cause, incremental
runs, definition changes, removed segments, per-branch segments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from crm_hub.config.models import HubConfig
from crm_hub.segments import evaluate_segments
from crm_hub.segments.spec import LoadedSegments
from crm_hub.store import Store
from crm_hub.store.schema import runs, segment_memberships, segments
from tests.segments.conftest import history, put

TODAY = date(2026, 3, 2)

HIGH_VALUE = """
version: 1
segments:
  high_value:
    description: Spent 500 or more
    where: {field: total_spend, gte: 500}
"""


def members(store: Store, segment: str) -> set[str]:
    with store.read() as conn:
        rows = conn.execute(
            select(segment_memberships.c.master_id).where(segment_memberships.c.segment == segment)
        )
        return set(rows.scalars())


def test_people_enter_with_the_values_that_put_them_in(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("812.5"))
    put(store, "m_bob", total_spend=Decimal("499.99"))
    put(store, "m_cat")  # no spend known
    loaded = segments_file(HIGH_VALUE)
    result = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert [(s.name, s.mode, s.entered, s.exited, s.members) for s in result.segments] == [
        ("high_value", "full", 1, 0, 1)
    ]
    assert members(store, "high_value") == {"m_ann"}
    [entry] = history(store, "high_value")
    assert entry["action"] == "entered" and entry["master_id"] == "m_ann"
    assert entry["cause"]["reason"] == "matched"
    assert Decimal(str(entry["cause"]["values"]["total_spend"])) == Decimal("812.5")
    with store.read() as conn:
        row = conn.execute(select(segments)).mappings().one()
        run = conn.execute(select(runs).where(runs.c.stage == "segments")).mappings().one()
    assert (row["member_count"], row["evaluated_for"], row["description"]) == (
        1,
        TODAY,
        "Spent 500 or more",
    )
    assert run["status"] == "succeeded" and run["counts"]["entered"] == 1


def test_a_second_run_changes_nothing_and_a_trait_change_moves_people_with_before_and_after(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("812.5"))
    put(store, "m_bob", total_spend=Decimal("100"))
    loaded = segments_file(HIGH_VALUE)
    evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    again = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert [(s.mode, s.entered, s.exited) for s in again.segments] == [("incremental", 0, 0)]
    put(store, "m_ann", total_spend=Decimal("20"))  # a refund
    put(store, "m_bob", total_spend=Decimal("600"))
    moved = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert [(s.mode, s.entered, s.exited, s.members) for s in moved.segments] == [
        ("incremental", 1, 1, 1)
    ]
    assert members(store, "high_value") == {"m_bob"}
    exit_row = [h for h in history(store) if h["action"] == "exited"][0]
    assert exit_row["master_id"] == "m_ann"
    assert exit_row["cause"]["reason"] == "no_longer_matches"
    assert Decimal(str(exit_row["cause"]["values"]["total_spend"])) == Decimal("20")
    assert Decimal(str(exit_row["cause"]["before"]["total_spend"])) == Decimal("812.5")


def test_merged_people_exit_as_not_active(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("900"))
    loaded = segments_file(HIGH_VALUE)
    evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    put(store, "m_ann", status="merged", total_spend=Decimal("900"))
    result = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert [(s.entered, s.exited) for s in result.segments] == [(0, 1)]
    assert history(store)[-1]["cause"]["reason"] == "not_active"


def test_a_changed_definition_re_evaluates_everyone(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("812.5"))
    put(store, "m_bob", total_spend=Decimal("300"))
    evaluate_segments(store, hub, today=TODAY, definitions=segments_file(HIGH_VALUE))
    lowered = segments_file(HIGH_VALUE.replace("gte: 500", "gte: 250"))
    result = evaluate_segments(store, hub, today=TODAY, definitions=lowered)
    assert [(s.mode, s.entered, s.exited) for s in result.segments] == [("full", 1, 0)]
    assert history(store)[-1]["cause"]["reason"] == "definition_changed"
    raised = segments_file(HIGH_VALUE.replace("gte: 500", "gte: 1000"))
    result = evaluate_segments(store, hub, today=TODAY, definitions=raised)
    assert [(s.mode, s.entered, s.exited) for s in result.segments] == [("full", 0, 2)]
    assert members(store, "high_value") == set()


def test_a_removed_segment_lets_its_members_exit_and_drops_its_row(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("812.5"), orders_count=9)
    evaluate_segments(store, hub, today=TODAY, definitions=segments_file(
        HIGH_VALUE + "  regulars:\n    where: {field: orders_count, gte: 5}\n"
    ))  # fmt: skip
    result = evaluate_segments(store, hub, today=TODAY, definitions=segments_file(HIGH_VALUE))
    assert {(s.name, s.mode, s.exited) for s in result.segments} == {
        ("high_value", "incremental", 0),
        ("regulars", "removed", 1),
    }
    assert members(store, "regulars") == set()
    assert history(store, "regulars")[-1]["cause"]["reason"] == "segment_removed"
    with store.read() as conn:
        assert set(conn.execute(select(segments.c.name)).scalars()) == {"high_value"}


def test_relative_dates_follow_the_injected_today(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", next_birthday=TODAY + timedelta(days=3))
    put(store, "m_bob", next_birthday=TODAY + timedelta(days=12))
    loaded = segments_file(
        "version: 1\nsegments:\n  birthdays:\n"
        "    where: {field: next_birthday, within_next_days: 7}\n"
    )
    evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert members(store, "birthdays") == {"m_ann"}
    later = evaluate_segments(store, hub, today=TODAY + timedelta(days=6), definitions=loaded)
    assert [(s.mode, s.entered, s.exited) for s in later.segments] == [("full", 1, 1)]
    assert members(store, "birthdays") == {"m_bob"}


def test_per_branch_gives_one_segment_per_value(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", consent_email=True, profile={"branch": "soho"})
    put(store, "m_bob", consent_email=True, profile={"branch": "camden"})
    put(store, "m_cat", consent_email=False, profile={"branch": "soho"})
    put(store, "m_dan", consent_email=True)  # no branch: in no branch segment
    loaded = segments_file(
        "version: 1\nsegments:\n  news:\n    where: {field: consent_email, eq: true}\n"
        "    per: branch\n"
    )
    evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert members(store, "news:soho") == {"m_ann"}
    assert members(store, "news:camden") == {"m_bob"}
    put(store, "m_bob", consent_email=True, profile={"branch": "soho"})  # moved house
    result = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert [(s.name, s.mode, s.entered, s.exited, s.values) for s in result.segments] == [
        ("news", "incremental", 1, 1, {"news:soho": 2})
    ]
    moves = [(h["segment"], h["master_id"], h["action"]) for h in history(store)][-2:]
    assert sorted(moves) == [("news:camden", "m_bob", "exited"), ("news:soho", "m_bob", "entered")]
    with store.read() as conn:
        assert set(conn.execute(select(segments.c.name)).scalars()) == {"news:soho"}


def test_preview_shows_the_diff_and_writes_nothing(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    from crm_hub.segments import preview_segment

    put(store, "m_ann", name="Ann", email="ann@example.com", total_spend=Decimal("812.5"))
    put(store, "m_bob", name="Bob", total_spend=Decimal("100"))
    loaded = segments_file(HIGH_VALUE)
    evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    put(store, "m_ann", total_spend=Decimal("10"))
    put(store, "m_bob", name="Bob", email="bob@example.com", total_spend=Decimal("700"))
    before = history(store), members(store, "high_value")
    [shown] = preview_segment(store, hub, "high_value", sample=5, today=TODAY, definitions=loaded)
    assert (shown.members, shown.current, shown.would_enter, shown.would_exit) == (1, 1, 1, 1)
    assert shown.sample == [{"master_id": "m_bob", "full_name": "Bob", "email": "bob@example.com"}]
    assert [p["master_id"] for p in shown.entering] == ["m_bob"]
    assert [p["master_id"] for p in shown.exiting] == ["m_ann"]
    assert (history(store), members(store, "high_value")) == before
    with store.read() as conn:
        assert conn.execute(select(runs.c.id).where(runs.c.stage == "segments")).all() != []
        assert len(conn.execute(select(runs.c.id)).all()) == 1  # only the real run's row


def test_only_the_named_segments_run_and_others_are_not_removed(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    put(store, "m_ann", total_spend=Decimal("812.5"), orders_count=9)
    both = segments_file(HIGH_VALUE + "  regulars:\n    where: {field: orders_count, gte: 5}\n")
    evaluate_segments(store, hub, today=TODAY, definitions=both)
    only = evaluate_segments(
        store, hub, names=["high_value"], today=TODAY, definitions=segments_file(HIGH_VALUE)
    )
    assert [s.name for s in only.segments] == ["high_value"]
    assert members(store, "regulars") == {"m_ann"}


def test_a_busy_lease_stops_a_second_run(
    store: Store, hub: HubConfig, segments_file: Callable[[str], LoadedSegments]
) -> None:
    import pytest

    from crm_hub.errors import BusyError
    from crm_hub.store.leases import hold_lease

    with hold_lease(store, "segments", "someone-else"), pytest.raises(BusyError):
        evaluate_segments(store, hub, today=TODAY, definitions=segments_file(HIGH_VALUE))
