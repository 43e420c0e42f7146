"""The reports on a hand-computed store (see conftest.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_hub.analytics import compute_reports, read_report
from crm_hub.analytics.compute import regroup_cohorts, regroup_funnel
from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError
from crm_hub.store import Store
from crm_hub.store.schema import report_campaigns, report_cohorts, report_funnel
from tests.analytics.conftest import TODAY

CONFIG = HubConfig.model_validate({"campaigns": {"spring": {"cost": "84", "currency": "GBP"}}})


def compute(store: Store, **options: Any) -> dict[str, list[dict[str, Any]]]:
    return compute_reports(store, CONFIG, today=TODAY, form_sources=["typeform"], **options)


def by_campaign(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    with store.read() as conn:
        return {(r["channel"], r["campaign_id"]): r for r in read_report(conn, "campaigns")}


def test_campaigns_count_reach_engagement_conversion_revenue_and_cpa(people: Store) -> None:
    compute(people)
    rows = by_campaign(people)
    assert set(rows) == {("email", "spring"), ("email", "summer"), ("form", "flyer")}
    spring = rows["email", "spring"]
    # A, B (by e-mail address), D reached; C bounced; E is merged away
    assert (spring["reached"], spring["engaged"], spring["converted"]) == (3, 1, 2)
    assert spring["conversion_rate"] == pytest.approx(0.6667)
    # A's orders 01-10 + 01-20, B's 01-25, within 30 days of the 01-02 send
    assert spring["revenue"] == Decimal("42") and spring["currency"] == "GBP"
    assert spring["cost"] == Decimal("84") and spring["cost_per_acquisition"] == Decimal("42.00")
    summer = rows["email", "summer"]
    assert (summer["reached"], summer["engaged"], summer["converted"]) == (1, 0, 0)
    assert summer["revenue"] is None and summer["cost_per_acquisition"] is None
    flyer = rows["form", "flyer"]
    assert (flyer["reached"], flyer["engaged"], flyer["converted"]) == (2, 2, 2)
    # A: 10 + 20 + 5 (to 02-04), B: 12 (to 02-19)
    assert flyer["revenue"] == Decimal("47") and flyer["revenue_by_currency"] == {"GBP": "47.00"}
    assert flyer["first_touch_at"].date().isoformat() == "2026-01-05"


def test_a_first_order_before_the_touch_is_not_a_conversion(people: Store) -> None:
    rows = compute(people, attribution_days=5)["campaigns"]
    spring = next(r for r in rows if r["campaign_id"] == "spring")
    # only... nobody: A ordered 8 days, B 23 days after the send; D had ordered before it
    assert spring["converted"] == 0 and spring["cost_per_acquisition"] is None


def test_funnel_counts_orders_after_the_lead_per_month_and_branch(people: Store) -> None:
    compute(people)
    with people.read() as conn:
        rows = read_report(conn, "funnel")
    got = {(r["period"], r["branch"]): (r["leads"], r["first_orders"], r["repeat_customers"],
                                        r["regulars"]) for r in rows}  # fmt: skip
    assert got == {
        ("2026-01", "shoreditch"): (1, 1, 1, 0),  # B's branch comes from the first order
        ("2026-01", "soho"): (1, 1, 1, 1),
        ("2026-02", "soho"): (1, 0, 0, 0),
    }
    quarter = regroup_funnel(rows, period="quarter")
    assert quarter == [
        {
            "period": "2026-Q1",
            "branch": "all",
            "leads": 3,
            "first_orders": 2,
            "repeat_customers": 2,
            "regulars": 1,
            "lead_to_order_rate": 0.6667,
            "order_to_repeat_rate": 1.0,
            "repeat_to_regular_rate": 0.5,
        }  # fmt: skip
    ]


def test_cohorts_retain_by_month_of_first_order_up_to_today(people: Store) -> None:
    compute(people)
    with people.read() as conn:
        rows = read_report(conn, "cohorts")
    got: dict[tuple[str, str], list[int]] = {}
    for row in rows:  # in key order: months_since ascending
        got.setdefault((row["cohort"], row["branch"]), []).append(row["active"])
    assert got == {
        ("2025-12", "soho"): [1, 0, 1, 0, 0],  # D: the canceled 12-01 order does not count
        ("2026-01", "shoreditch"): [1, 1, 0, 0],
        ("2026-01", "soho"): [1, 1, 1, 0],
    }
    january = [r for r in regroup_cohorts(rows) if r["cohort"] == "2026-01"]
    assert [(r["cohort_size"], r["active"], r["retention"]) for r in january] == [
        (2, 2, 1.0), (2, 2, 1.0), (2, 1, 0.5), (2, 0, 0.0)]  # fmt: skip


def test_recomputing_replaces_the_reports_without_duplicates(people: Store) -> None:
    first = compute(people)
    second = compute(people)
    for name in ("campaigns", "funnel", "cohorts"):
        assert [{k: v for k, v in r.items() if k != "computed_at"} for r in first[name]] == [
            {k: v for k, v in r.items() if k != "computed_at"} for r in second[name]
        ]
    with people.read() as conn:
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (report_campaigns, report_funnel, report_cohorts)]  # fmt: skip
    assert counts == [3, 3, 13]  # cohorts: 5 + 4 + 4 months


def test_an_empty_store_gives_empty_reports(store: Store) -> None:
    assert compute(store) == {"campaigns": [], "funnel": [], "cohorts": []}


@pytest.mark.parametrize(
    ("option", "message"),
    [({"attribution_days": 0}, "attribution days"), ({"regular_orders": 1}, "regular")],
    ids=["days", "regular"],
)
def test_bad_parameters_are_config_errors(
    store: Store, option: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        compute(store, **option)
