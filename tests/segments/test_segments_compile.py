"""Every operator, on SQLite and PostgreSQL, against five inline people."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_hub.errors import ConfigError
from crm_hub.segments import compile_segments
from crm_hub.segments.compile import FIELDS, population
from crm_hub.segments.spec import LoadedSegments
from crm_hub.store import Store
from crm_hub.store.schema import profiles
from tests.segments.conftest import put

TODAY = date(2026, 3, 4)  # a Wednesday


def people(store: Store) -> None:
    put(store, "m_ann", name="Ann", email="ann@example.com", orders_count=12,
        total_spend=Decimal("812.5000"), last_order_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        next_birthday=date(2026, 3, 6), consent_email=True, churn_risk=0.1,
        profile={"city": "London", "branch": "soho"})  # fmt: skip
    put(store, "m_bob", name="Bob", orders_count=5, total_spend=Decimal("99.9900"),
        last_order_at=datetime(2025, 12, 1, 18, tzinfo=UTC), next_birthday=date(2026, 3, 20),
        consent_email=False, churn_risk=0.7, allergies="peanuts, sesame",
        profile={"city": "london", "branch": "camden"})  # fmt: skip
    put(store, "m_cat", name="Cat", orders_count=1, total_spend=Decimal("500"),
        last_order_at=datetime(2026, 1, 2, 23, 59, tzinfo=UTC),
        profile={"city": "Zürich"})  # fmt: skip
    put(store, "m_dan", name="Dan", orders_count=0)  # knows nothing but his name
    put(store, "m_eve", name="Eve", status="merged", orders_count=40,
        total_spend=Decimal("9000"))  # merged: never in any segment  # fmt: skip


def selects(store: Store, file: Callable[[str], LoadedSegments], where: str) -> set[str]:
    loaded = file(f"version: 1\nsegments:\n  s:\n    where: {where}\n")
    compiled = compile_segments(loaded, dialect=store.dialect, today=TODAY)["s"]
    query = select(profiles.c.master_id).select_from(population()).where(compiled.expr)
    with store.read() as conn:
        return set(conn.execute(query).scalars())


CASES: list[tuple[str, str, set[str]]] = [
    ("eq integer", "{field: orders_count, eq: 5}", {"m_bob"}),
    ("ne integer", "{field: orders_count, ne: 5}", {"m_ann", "m_cat", "m_dan"}),
    ("gt money", "{field: total_spend, gt: 500}", {"m_ann"}),
    ("gte money", "{field: total_spend, gte: 500}", {"m_ann", "m_cat"}),
    ("lt money as text", "{field: total_spend, lt: '99.995'}", {"m_bob"}),
    ("lte money", "{field: total_spend, lte: 99.99}", {"m_bob"}),
    ("between inclusive", "{field: orders_count, between: [1, 5]}", {"m_bob", "m_cat"}),
    ("float", "{field: churn_risk, gte: 0.5}", {"m_bob"}),
    ("in text ignores case", "{field: city, in: [LONDON, paris]}", {"m_ann", "m_bob"}),
    ("not_in skips unknown", "{field: city, not_in: [london]}", {"m_cat"}),
    ("eq text non-ascii", "{field: city, eq: Zürich}", {"m_cat"}),
    ("contains", "{field: allergies, contains: Sesame}", {"m_bob"}),
    ("contains is no pattern", "{field: allergies, contains: '%'}", set()),
    ("is_null true", "{field: city, is_null: true}", {"m_dan"}),
    ("is_null false", "{field: total_spend, is_null: false}", {"m_ann", "m_bob", "m_cat"}),
    (
        "is_null on json",
        "{field: favourite_items, is_null: true}",
        {"m_ann", "m_bob", "m_cat", "m_dan"},
    ),  # fmt: skip
    ("boolean", "{field: consent_email, eq: true}", {"m_ann"}),
    (
        "not includes unknown",
        "{not: {field: consent_email, eq: true}}",
        {"m_bob", "m_cat", "m_dan"},
    ),
    (
        "all",
        "{all: [{field: orders_count, gte: 5}, {field: city, eq: london}]}",
        {"m_ann", "m_bob"},
    ),  # fmt: skip
    (
        "any",
        "{any: [{field: orders_count, gte: 10}, {field: city, eq: Zürich}]}",
        {"m_ann", "m_cat"},
    ),  # fmt: skip
    ("datetime eq a day", "{field: last_order_at, eq: 2026-01-02}", {"m_cat"}),
    ("datetime gt a day", "{field: last_order_at, gt: 2026-01-02}", {"m_ann"}),
    ("datetime lte a day", "{field: last_order_at, lte: 2026-01-02}", {"m_bob", "m_cat"}),
    ("datetime exact", "{field: last_order_at, gte: '2026-03-01T09:00:00+00:00'}", {"m_ann"}),
    (
        "datetime between days",
        "{field: last_order_at, between: [2025-12-01, 2026-01-02]}",
        {"m_bob", "m_cat"},
    ),  # fmt: skip
    ("older_than_days", "{field: last_order_at, older_than_days: 60}", {"m_bob", "m_cat"}),
    ("older_than_days edge", "{field: last_order_at, older_than_days: 61}", {"m_bob"}),
    ("within_last_days", "{field: last_order_at, within_last_days: 3}", {"m_ann"}),
    ("within_next_days", "{field: next_birthday, within_next_days: 2}", {"m_ann"}),
    ("within_days", "{field: next_birthday, within_days: 16}", {"m_ann", "m_bob"}),
    ("in_this week", "{field: next_birthday, in_this: week}", {"m_ann"}),
    ("in_this month", "{field: last_order_at, in_this: month}", {"m_ann"}),
    ("in_this year", "{field: last_order_at, in_this: year}", {"m_ann", "m_cat"}),
    ("date eq", "{field: next_birthday, eq: 2026-03-20}", {"m_bob"}),
    ("qualified name", "{field: profiles.city, eq: london}", {"m_ann", "m_bob"}),
]


@pytest.mark.parametrize(("where", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_operator_selects_the_right_people(
    store: Store, segments_file: Callable[[str], LoadedSegments], where: str, expected: set[str]
) -> None:
    people(store)
    assert selects(store, segments_file, where) == expected


BAD: list[tuple[str, str, str]] = [
    ("unknown field", "{field: total_spent, gt: 1}",
     "yaml:4 segments.s.where.field: unknown field 'total_spent' (did you mean total_spend"),
    ("text ordered", "{field: city, gt: a}", "gt does not apply to city, which holds text"),
    ("word for a number", "{field: orders_count, gte: many}",
     "where.gte: orders_count holds a whole number: expected a whole number, got 'many'"),
    ("bad amount", "{field: total_spend, gte: 'lots'}", "expected an amount such as 500"),
    ("bad date", "{field: next_birthday, eq: 'soon'}", "expected a date such as 2026-03-01"),
    ("boolean as text", "{field: consent_email, eq: 'yes'}", "expected true or false, got 'yes'"),
    ("json compared", "{field: spend_by_category, eq: 1}", "use: is_null"),
    ("relative on a number", "{field: orders_count, older_than_days: 3}",
     "older_than_days does not apply to orders_count"),
    ("between upside down", "{field: orders_count, between: [9, 1]}", "low end is above the high"),
    ("hidden column", "{field: change_seq, gt: 1}", "unknown field 'change_seq'"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_test_is_a_config_error_naming_line_key_and_fix(
    segments_file: Callable[[str], LoadedSegments], where: str, message: str
) -> None:
    loaded = segments_file(f"version: 1\nsegments:\n  s:\n    where: {where}\n")
    with pytest.raises(ConfigError) as caught:
        compile_segments(loaded, dialect="sqlite", today=TODAY)
    assert message in caught.value.problems[0]


def test_every_problem_of_the_file_is_listed_at_once(
    segments_file: Callable[[str], LoadedSegments],
) -> None:
    loaded = segments_file(
        "version: 1\nsegments:\n  a:\n    where:\n      all:\n"
        "        - {field: orders_count, gte: 5}\n        - {field: nope, eq: 1}\n"
        "  b:\n    where: {field: city, gt: x}\n    per: orders_count\n"
    )
    with pytest.raises(ConfigError) as caught:
        compile_segments(loaded, dialect="sqlite", today=TODAY)
    assert [p.split(": ")[0] for p in caught.value.problems] == [
        "segments.yaml:7 segments.a.where.all.1.field",
        "segments.yaml:9 segments.b.where.gt",
        "segments.yaml:10 segments.b.per",
    ]


def test_the_catalogue_holds_every_trait_and_profile_column_but_bookkeeping() -> None:
    assert {"total_spend", "days_since_last_order", "city", "email", "next_birthday"} <= set(FIELDS)
    assert FIELDS["traits.total_spend"].kind == "money"
    assert not {"master_id", "change_seq", "run_id", "provenance"} & set(FIELDS)


def test_values_are_bound_parameters_never_sql_text(
    segments_file: Callable[[str], LoadedSegments],
) -> None:
    loaded = segments_file(
        'version: 1\nsegments:\n  s:\n    where: {field: city, eq: "x\'); DROP TABLE masters;--"}\n'
    )
    expr = compile_segments(loaded, dialect="sqlite", today=TODAY)["s"].expr
    compiled = expr.compile()
    assert "DROP" not in str(compiled)
    assert "x'); DROP TABLE masters;--" in compiled.params.values()
