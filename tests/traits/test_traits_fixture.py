"""Traits of the fixture people (tests/traits/conftest.py), worked out by hand, on both stores.

The population for RFM and churn is Ann, Bob and Eve (Cat has no orders):
  recency (days)  Ann 5,     Eve 45,  Bob 106  → cut points 21, 37, 57.2, 81.6
  frequency       Ann 4,     Eve 3,   Bob 1    → cut points 1.8, 2.6, 3.2, 3.6
  monetary (GBP)  Ann 17.50, Eve 15,  Bob 40   → cut points 16, 17, 22, 31
  rhythm (days)   Ann 21/3 = 7, Eve 60/2 = 30  → median 18.5 (for Bob, one order)
Fewer than 200 customers: predicted CLV is the heuristic
  orders / max(tenure days, 30) * 365 * (1 - churn risk) * AOV.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from crm_hub.profile.traits import compute_traits
from crm_hub.store import Store
from tests.traits.conftest import TODAY, Fixture


def _clv(orders: int, tenure: int, churn: float, aov: str) -> Decimal:
    value = orders / max(tenure, 30) * 365 * (1 - churn) * float(aov)
    return Decimal(round(value * 100)) / 100


ANN = {
    "orders_count": 4,  # o1, o2, o3 (refunded: still placed), o5; not o4 (refund), o6 (cancelled)
    "visits_count": 3,  # o1, o2 in soho, o5 in paris; o3 was online (no branch)
    "first_order_at": datetime(2026, 5, 20, 12, 0, tzinfo=UTC),
    "last_order_at": datetime(2026, 6, 10, 18, 0, tzinfo=UTC),
    "days_since_last_order": 5,
    "currency": "GBP",  # 17.50 GBP net beats 8.00 EUR
    "total_spend": Decimal("17.50"),  # 10.00 + 12.50 + 0 (refunded) - 5.00 (refund record)
    "average_order_value": Decimal("8.75"),  # 17.50 / 2 paid GBP orders (o1, o2)
    "spend_by_currency": {"EUR": "8.0000", "GBP": "17.5000"},
    "spend_by_category": {"bakery": "8.5000", "coffee": "9.0000"},  # 4+9.5-5, 6+3
    "visits_by_branch": {"paris": 1, "soho": 2},
    "preferred_branch": "soho",
    "usual_weekday": 0,  # local days: Wed 20 May, Mon 1 Jun, Mon 8 Jun, Wed 10 Jun → tie: Monday
    "usual_hour": 10,  # local hours 14, 10, 10, 19
    "favourite_items": [
        {"count": 3, "item": "Latte"},
        {"count": 1, "item": "Bagel"},
        {"count": 1, "item": "Croissant"},
    ],
    "ltv": Decimal("17.50"),
    "predicted_clv": _clv(4, 26, 0.0, "8.75"),  # tenure: 20 May → 15 Jun
    "rfm_recency": 5,
    "rfm_frequency": 5,
    "rfm_monetary": 3,
    "rfm_segment": "champions",
    "churn_risk": 0.0,  # 5 days against a 7-day rhythm
    "next_birthday": None,
    "days_to_birthday": None,
    "age_band": None,
    "open_balance": None,
    "balance_by_currency": None,
    "overdue_amount": None,
    "overdue_days": None,
    "email_opens": 0,
    "email_clicks": 0,
    "last_email_activity_at": None,
    "unsubscribed": None,
    "consent_email": None,
    "consent_sms": None,
    "allergies": None,
    "favourite_dish": None,
    "preferences": None,
}

BOB = {
    **{k: ANN[k] for k in ("next_birthday", "email_opens", "email_clicks", "unsubscribed")},
    "orders_count": 1,
    "visits_count": 1,
    "first_order_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    "last_order_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    "days_since_last_order": 106,
    "currency": "GBP",
    "total_spend": Decimal("40"),
    "average_order_value": Decimal("40"),
    "spend_by_currency": {"GBP": "40.0000"},
    "spend_by_category": {"uncategorised": "40.0000"},
    "visits_by_branch": {"soho": 1},
    "preferred_branch": "soho",
    "usual_weekday": 6,  # Sunday 1 March 2026
    "usual_hour": 12,
    "favourite_items": [{"count": 1, "item": "Sandwich"}],
    "ltv": Decimal("60"),  # 40 spend + 20 paid on invoice i2 (the failed 50 does not count)
    "predicted_clv": Decimal("0"),  # churn risk 1
    "rfm_recency": 1,
    "rfm_frequency": 1,
    "rfm_monetary": 5,
    "rfm_segment": "hibernating",
    "churn_risk": 1.0,  # (106 / 18.5 - 1) / 2 > 1
    "next_birthday": date(2026, 6, 20),
    "days_to_birthday": 5,
    "age_band": "35-44",  # 35 until 20 June
    "open_balance": Decimal("90"),  # i1 60 + i2 (50 - 20 paid); i3 is EUR
    "balance_by_currency": {"EUR": "10.0000", "GBP": "90.0000"},
    "overdue_amount": Decimal("60"),  # i1, due 1 June
    "overdue_days": 14,
    "last_email_activity_at": None,
    "consent_email": None,
    "consent_sms": None,
    "allergies": None,
    "favourite_dish": None,
    "preferences": None,
}

CAT = {
    **{k: None for k in ANN},
    "orders_count": 0,
    "visits_count": 0,
    "next_birthday": date(2027, 2, 28),  # born 29 Feb 2000 (profile beats the source's 1999)
    "days_to_birthday": 258,
    "age_band": "25-34",
    "email_opens": 2,
    "email_clicks": 1,
    "last_email_activity_at": datetime(2026, 6, 2, 10, 0, tzinfo=UTC),
    "unsubscribed": True,
    "consent_email": False,  # granted 1 January, unsubscribed 3 June
    "consent_sms": False,
    "allergies": "dairy, gluten, nuts",
    "favourite_dish": "Shakshuka",  # the more recently updated source customer
    "preferences": {"notes": "window seat", "seating": "quiet"},
}

EVE = {
    **{
        k: ANN[k]
        for k in ANN
        if k.startswith(
            (
                "open",
                "balance",
                "overdue",
                "email",
                "last_email",
                "unsub",
                "consent",
                "allerg",
                "favourite_d",
                "pref",
            )
        )
    },
    "orders_count": 3,
    "visits_count": 3,
    "first_order_at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    "last_order_at": datetime(2026, 5, 1, 8, 0, tzinfo=UTC),
    "days_since_last_order": 45,
    "currency": "GBP",
    "total_spend": Decimal("15"),
    "average_order_value": Decimal("5"),
    "spend_by_currency": {"GBP": "15.0000"},
    "spend_by_category": {"tea": "15.0000"},
    "visits_by_branch": {"camden": 3},
    "preferred_branch": "camden",
    "usual_weekday": 0,  # Mon 2 Mar, Wed 1 Apr, Fri 1 May: a three-way tie → Monday
    "usual_hour": 8,
    "favourite_items": [{"count": 3, "item": "Tea"}],
    "ltv": Decimal("15"),
    "predicted_clv": _clv(3, 105, 0.25, "5.00"),
    "rfm_recency": 3,
    "rfm_frequency": 3,
    "rfm_monetary": 1,
    "rfm_segment": "need_attention",
    "churn_risk": 0.25,  # (45 / 30 - 1) / 2
    "next_birthday": date(2026, 12, 24),  # a birthday without a year: no age band
    "days_to_birthday": 192,
    "age_band": None,
}


def _values(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in expected}


def test_hand_computed_traits(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    result = compute_traits(store, today=TODAY)
    assert (result.status, result.mode, result.masters) == ("succeeded", "full", 4)
    assert result.clv_model == "heuristic"
    rows = read_traits()
    assert sorted(rows) == ["m_ann", "m_bob", "m_cat", "m_eve"]  # merged Dan's row is gone
    assert result.deleted == 1
    for master, expected in (("m_ann", ANN), ("m_bob", BOB), ("m_cat", CAT), ("m_eve", EVE)):
        assert _values(rows[master], expected) == expected, master


def test_timestamps_are_utc_whatever_the_session_time_zone(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    if store.dialect == "postgresql":  # the writer's texts are UTC, the session is not

        @event.listens_for(store.engine, "connect")
        def new_york(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'America/New_York'")
            dbapi_connection.commit()

        store.engine.dispose()
    compute_traits(store, today=TODAY)
    rows = read_traits()
    for master, expected in (("m_ann", ANN), ("m_bob", BOB), ("m_cat", CAT)):
        assert rows[master]["last_order_at"] == expected["last_order_at"], master
        assert rows[master]["first_order_at"] == expected["first_order_at"], master


def test_a_second_run_writes_nothing(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    compute_traits(store, today=TODAY)
    before = read_traits()
    again = compute_traits(store, today=TODAY)
    assert (again.mode, again.masters, again.written, again.deleted) == ("incremental", 0, 0, 0)
    forced = compute_traits(store, today=TODAY, full=True)
    assert (forced.mode, forced.masters, forced.written, forced.unchanged) == ("full", 4, 0, 4)
    assert read_traits() == before


def test_a_changed_order_recomputes_only_its_master(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    compute_traits(store, today=TODAY)
    before = read_traits()
    people.touch_order("pos", "o9", "35.00")  # Eve's second order: 5.00 → 35.00
    result = compute_traits(store, today=TODAY)
    assert (result.mode, result.masters, result.written) == ("incremental", 1, 1)
    after = read_traits()
    assert after["m_eve"]["total_spend"] == Decimal("45")
    assert after["m_eve"]["change_seq"] > before["m_eve"]["change_seq"]
    # The day's cut points are kept: Eve is scored against the morning's population.
    assert after["m_eve"]["rfm_monetary"] == 5
    for master in ("m_ann", "m_bob", "m_cat"):
        assert after[master] == before[master], master


def test_a_new_day_recomputes_everyone(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    compute_traits(store, today=TODAY)
    later = compute_traits(store, today=date(2026, 6, 16))
    assert (later.mode, later.reason, later.masters) == ("full", "new day", 4)
    rows = read_traits()
    assert rows["m_ann"]["days_since_last_order"] == 6
    assert rows["m_bob"]["days_to_birthday"] == 4
    assert rows["m_cat"]["days_since_last_order"] is None


def test_a_master_merged_away_loses_its_row(
    store: Store, people: Fixture, read_traits: Callable[[], dict[str, dict[str, Any]]]
) -> None:
    from sqlalchemy import update

    from crm_hub.store.raw import next_change_seq
    from crm_hub.store.schema import master_links, masters

    compute_traits(store, today=TODAY)
    with store.begin() as conn:  # the resolve stage merging Eve into Bob
        seq = next_change_seq(conn)
        conn.execute(
            update(masters)
            .where(masters.c.master_id == "m_eve")
            .values(status="merged", merged_into="m_bob", change_seq=seq)
        )
        conn.execute(update(master_links).where(master_links.c.master_id == "m_eve")
                     .values(master_id="m_bob", change_seq=seq))  # fmt: skip
    result = compute_traits(store, today=TODAY)
    assert (result.mode, result.masters, result.written, result.deleted) == (
        "incremental", 1, 1, 1)  # fmt: skip
    rows = read_traits()
    assert "m_eve" not in rows
    assert rows["m_bob"]["orders_count"] == 4 and rows["m_bob"]["visits_by_branch"] == {
        "camden": 3, "soho": 1}  # fmt: skip


def test_large_scopes_computed_in_two_processes_give_the_same_traits(
    store: Store,
    people: Fixture,
    read_traits: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: Any,
) -> None:
    from crm_hub.profile.traits import halves, stage

    calls: list[int] = []

    def counted(*args: Any) -> Any:
        calls.append(len(args[2]))
        return halves.per_master_in_halves(*args)

    monkeypatch.setattr(halves, "HALVES_FROM", 2)  # the fixture's four masters: two and two
    monkeypatch.setattr(stage, "per_master_in_halves", counted)
    result = compute_traits(store, today=TODAY)
    assert calls == [4] and (result.masters, result.written, result.deleted) == (4, 4, 1)
    rows = read_traits()
    for master, expected in (("m_ann", ANN), ("m_bob", BOB), ("m_cat", CAT), ("m_eve", EVE)):
        assert _values(rows[master], expected) == expected, master
    # The same values hash as one process computes: a full run in one process writes nothing.
    monkeypatch.setattr(halves, "HALVES_FROM", 1_000_000)
    again = compute_traits(store, today=TODAY, full=True)
    assert (again.masters, again.written, again.unchanged) == (4, 0, 4)


def test_a_failing_second_half_fails_the_run_and_writes_nothing(
    store: Store,
    people: Fixture,
    read_traits: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: Any,
) -> None:
    import os

    import pytest

    from crm_hub.errors import StoreError
    from crm_hub.profile.traits import halves

    parent = os.getpid()
    real = halves.load_frames

    def dies_in_the_fork(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            os._exit(3)  # killed: the pool breaks
        return real(*args, **kwargs)

    monkeypatch.setattr(halves, "HALVES_FROM", 2)
    monkeypatch.setattr(halves, "load_frames", dies_in_the_fork)
    before = read_traits()  # the fixture's stale row of merged Dan only
    with pytest.raises(StoreError, match="second half of the masters died"):
        compute_traits(store, today=TODAY)
    assert read_traits() == before and list(before) == ["m_dan"]
