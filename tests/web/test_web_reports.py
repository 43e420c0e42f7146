"""The manager page (/ui/reports): funnel and campaign charts, by role and branch.

Report rows are inserted as the analytics stage stores them. South's funnel (777 leads in
January) and the chain-wide campaign money (1,234.56 revenue, 99.00 cost) must reach only the
roles allowed them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from web_world import (  # with the fixtures `as_` and `tokens`
    COST,
    REVENUE,
    SOUTH_LEADS,
    as_fixture,  # noqa: F401
    build_reports,
    sign_in,
    tokens_fixture,  # noqa: F401
)

from crm_hub.api.tokens import create_token
from crm_hub.api.web.bar_chart import BarGroup, bar_chart
from crm_hub.store import Store

Client = Callable[[str], TestClient]


@pytest.fixture
def reports(store: Store) -> None:
    build_reports(store)


@pytest.fixture
def chain_manager(store: Store, tokens: dict[str, str], as_: Client) -> TestClient:
    """A manager without a branch: the whole chain, money included."""
    client = as_("")
    sign_in(client, create_token(store, name="owner", role="manager").secret)
    return client


def _leads_total(html: str) -> int:
    """The Form leads bar's number in the funnel chart."""
    found = re.search(r'class="value" x="[\d.]+" y="\d+">([\d,]+)', html)
    assert found, html[:2000]
    return int(found.group(1).replace(",", ""))


@pytest.mark.usefixtures("reports")
@pytest.mark.parametrize(
    ("who", "leads", "sees_money"),
    [("manager_north", 30, False), ("admin", 812, True), ("service", 812, True)],
    ids=["branch-manager-own-branch-no-chain-money", "admin-everything", "service-everything"],
)
def test_reports_show_each_role_its_branch_and_money(
    as_: Client, who: str, leads: int, sees_money: bool
) -> None:
    page = as_(who).get("/ui/reports")
    assert page.status_code == 200
    assert _leads_total(page.text) == leads
    january = 10 if leads == 30 else 10 + int(SOUTH_LEADS)  # south's leads only chain-wide
    assert f'<th scope="row">2026-01</th><td>{january}</td>' in page.text
    assert (REVENUE in page.text) is sees_money and (COST in page.text) is sees_money
    assert "spring-sale" in page.text and ">40<" in page.text  # campaign counts: every role
    assert '<a href="/ui/reports">Reports</a>' in page.text


@pytest.mark.usefixtures("reports")
def test_a_manager_without_a_branch_sees_the_chain_and_its_money(
    chain_manager: TestClient,
) -> None:
    page = chain_manager.get("/ui/reports")
    assert page.status_code == 200 and _leads_total(page.text) == 812
    assert REVENUE in page.text and COST in page.text


@pytest.mark.usefixtures("reports")
@pytest.mark.parametrize("who", ["staff_north", "staff_south"])
def test_staff_get_403_and_no_menu_link(as_: Client, who: str) -> None:
    client = as_(who)
    page = client.get("/ui/reports")
    assert page.status_code == 403 and "Not for this role" in page.text
    assert SOUTH_LEADS not in page.text and REVENUE not in page.text and "spring" not in page.text
    assert "/ui/reports" not in client.get("/ui/").text


def test_signed_out_people_are_sent_to_sign_in(as_: Client) -> None:
    response = as_("").get("/ui/reports")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/reports"


@pytest.mark.usefixtures("reports")
def test_funnel_groups_by_the_chosen_period(as_: Client) -> None:
    client = as_("manager_north")
    quarter = client.get("/ui/reports", params={"period": "quarter"}).text
    assert '<th scope="row">2026-Q1</th><td>30</td><td>16</td><td>7</td><td>3</td>' in quarter
    assert '<option value="quarter" selected>' in quarter
    unknown = client.get("/ui/reports", params={"period": "decade"})
    assert unknown.status_code == 200 and '<th scope="row">2026-02</th>' in unknown.text


@pytest.mark.usefixtures("reports")
def test_charts_are_labelled_and_campaign_names_escaped(as_: Client) -> None:
    page = as_("admin").get("/ui/reports").text
    for chart in ("funnel-chart", "campaigns-chart"):
        assert (
            f'id="{chart}" viewBox' in page
            and f'role="img" aria-labelledby="{chart}-title {chart}-desc"' in page
            and f'<title id="{chart}-title">' in page
            and f'<desc id="{chart}-desc">' in page
        ), chart
    assert "<b>instagram</b>" not in page and "&lt;b&gt;instagram&lt;/b&gt;" in page
    assert '<label for="period">' in page and '<select id="period" name="period">' in page


def test_empty_reports_say_so(as_: Client, tokens: dict[str, str]) -> None:
    page = as_("admin").get("/ui/reports")
    assert page.status_code == 200
    assert "No form leads yet" in page.text and "No campaigns yet" in page.text
    assert "<svg" not in page.text


def test_bar_chart_draws_one_bar_per_series_scaled_to_the_largest() -> None:
    svg = bar_chart("c", "T", ("reached", "converted"),
                    [BarGroup("a", (100, 50), "50.0 %"), BarGroup("b", (10, 0))])  # fmt: skip
    widths = [float(w) for w in re.findall(r'<rect class="bar series-\d" x="\d+" y="\d+" '
                                           r'width="([\d.]+)"', svg)]  # fmt: skip
    assert widths == [330.0, 165.0, 33.0, 0.0]
    assert "50 · 50.0 %" in svg
    assert (
        '<desc id="c-desc">a: 100 reached, 50 converted (50.0 %); b: 10 reached, 0 converted.'
        in svg
    )
    assert bar_chart("c", "T", ("x",), []) == ""
