"""The staff pages on a real store (SQLite and PostgreSQL) through TestClient."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from web_world import (  # with the fixtures `as_` and `tokens`
    ANN,
    ANN_BALANCE,
    BOB,
    OLD_ANN,
    SOUTH_MONEY,
    ZED,
    ZED_PHONE,
    as_fixture,  # noqa: F401
    tokens_fixture,  # noqa: F401
)

from crm_hub.api.tokens import list_tokens, revoke_token
from crm_hub.api.web.chart import MonthPoint, monthly_chart
from crm_hub.api.web.session import COOKIE
from crm_hub.store import Store
from crm_hub.store.schema import audit_log, profiles

Client = Callable[[str], TestClient]


def test_pages_need_a_session_and_login_sets_a_strict_httponly_cookie(
    as_: Client, tokens: dict[str, str]
) -> None:
    anonymous = as_("")
    for path in ("/ui/", f"/ui/customers/{ANN}", "/ui/segments/regulars", "/ui/search?q=a"):
        response = anonymous.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith(
            "/ui/login"
        ), path
    form = anonymous.get("/ui/login")
    assert form.status_code == 200 and '<label for="token">' in form.text
    bad = anonymous.post(
        "/ui/login",
        content="token=chub_nope&next=/ui/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 401 and "chub_nope" not in bad.text
    good = anonymous.post(
        "/ui/login",
        content=f"token={tokens['staff_north']}&next=https://evil.example/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert good.status_code == 303 and good.headers["location"] == "/ui/"
    cookie = good.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = anonymous.get("/ui/")
    assert page.status_code == 200
    assert tokens["staff_north"] not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_search_by_phone_renders_results_with_and_without_javascript(as_: Client) -> None:
    client = as_("admin")
    full = client.get("/ui/", params={"q": "07911 123-456"})
    assert full.status_code == 200 and f'href="/ui/customers/{ANN}"' in full.text
    fragment = client.get("/ui/search", params={"q": "(07911) 123.456"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and f"/ui/customers/{ANN}" in fragment.text
    assert "No customer found" in client.get("/ui/search", params={"q": "07000 000000"}).text


def test_staff_search_masks_contact_and_stays_in_branch(as_: Client) -> None:
    staff = as_("staff_north")
    page = staff.get("/ui/search", params={"q": "+447911123456"}).text
    assert "+44*******456" in page and "+447911123456" not in page
    assert ZED not in staff.get("/ui/search", params={"q": ZED_PHONE}).text


def test_card_shows_preferences_chart_timeline_and_money_to_a_manager(as_: Client) -> None:
    page = as_("manager_north").get(f"/ui/customers/{ANN}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Ann Smith" in text and "peanuts" in text and "risotto" in text
    assert 'id="visits-chart"' in text and "<svg" in text and 'class="bar"' in text
    assert 'class="spend"' in text  # the spend line: managers see money
    assert 'id="money"' in text and f"{ANN_BALANCE:,.2f}" in text
    assert "regulars" in text and "Ann.Smith@example.com" in text
    assert "INV-1" in text  # invoices are in a manager's timeline
    assert f"{SOUTH_MONEY:,.2f}" not in text  # the south order, for a north token


def test_staff_cannot_see_money_on_the_card(as_: Client) -> None:
    page = as_("staff_north").get(f"/ui/customers/{ANN}")
    assert page.status_code == 200
    text = page.text
    assert "peanuts" in text and 'id="visits-chart"' in text
    assert 'id="money"' not in text and "Open balance" not in text and "Total spend" not in text
    assert f"{ANN_BALANCE:,.2f}" not in text and "1,030.15" not in text and "12.50" not in text
    assert 'class="spend"' not in text and "INV-1" not in text
    assert "A***@example.com" in text and "Ann.Smith@example.com" not in text


def test_other_branch_customer_is_404_and_audited(as_: Client, store: Store) -> None:
    north = as_("staff_north")
    for mid in (ZED, BOB, "m_01NOPE0000000000000000000X", "not-an-id"):
        response = north.get(f"/ui/customers/{mid}")
        assert response.status_code == 404, mid
        assert "Zed" not in response.text and "Southey" not in response.text
    assert as_("staff_south").get(f"/ui/customers/{ZED}").status_code == 200
    with store.read() as conn:
        denied = conn.execute(
            select(audit_log.c.master_id).where(
                audit_log.c.status == 404, audit_log.c.path == f"/ui/customers/{ZED}"
            )
        ).all()
    assert [r.master_id for r in denied] == [ZED]


def test_merged_id_redirects_to_the_survivor(as_: Client) -> None:
    response = as_("staff_north").get(f"/ui/customers/{OLD_ANN}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/customers/{ANN}"


def test_segment_page_and_csv_export_follow_the_branch(as_: Client) -> None:
    admin = as_("admin")
    page = admin.get("/ui/segments/regulars")
    assert page.status_code == 200 and "members.csv" in page.text
    assert "regulars" in admin.get("/ui/segments").text
    export = admin.get("/ui/segments/regulars/members.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="regulars.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["master_id"] for r in rows] == sorted([ANN, BOB, ZED])
    assert {r["full_name"] for r in rows} == {"Ann Smith", "Bob Jones", "Zed Southey"}
    assert all(r["entered_at"].startswith("2026-03-01T12:00:00") for r in rows)
    north = as_("staff_north").get("/ui/segments/regulars/members.csv")
    assert [r["master_id"] for r in csv.DictReader(io.StringIO(north.text))] == [ANN]
    assert admin.get("/ui/segments/nope").status_code == 404
    assert admin.get("/ui/segments/nope/members.csv").status_code == 404


def test_static_assets_ship_in_the_package(as_: Client) -> None:
    client = as_("")
    css = client.get("/ui/static/app.css")
    js = client.get("/ui/static/search.js")
    assert css.status_code == 200 and ":focus-visible" in css.text
    assert js.status_code == 200 and "data-instant" in js.text
    page = as_("admin").get("/ui/").text
    assert "http://" not in page and "https://" not in page  # no CDN


def test_csv_cells_cannot_run_as_spreadsheet_formulas(as_: Client, store: Store) -> None:
    with store.begin() as conn:
        conn.execute(
            update(profiles)
            .where(profiles.c.master_id == BOB)
            .values(full_name="=cmd|' /C calc'!A0")
        )
    rows = list(csv.reader(io.StringIO(as_("admin").get("/ui/segments/regulars/members.csv").text)))
    assert [r[1] for r in rows if r[0] == BOB] == ["'=cmd|' /C calc'!A0"]


def test_revoking_the_token_ends_the_session(as_: Client, store: Store) -> None:
    client = as_("staff_north")
    assert client.get("/ui/").status_code == 200
    token_id = next(t.id for t in list_tokens(store) if t.name == "staff_north")
    assert revoke_token(store, token_id)
    assert client.get(f"/ui/customers/{ANN}").status_code == 303


def test_every_visible_input_has_a_label(as_: Client) -> None:
    pages = [as_("").get("/ui/login").text, as_("admin").get("/ui/", params={"q": "ann"}).text]
    for page in pages:
        inputs = re.findall(r"<input\b[^>]*>", page)
        visible = [tag for tag in inputs if 'type="hidden"' not in tag]
        assert visible
        for tag in visible:
            found = re.search(r'\bid="([^"]+)"', tag)
            assert found and f'<label for="{found.group(1)}">' in page, tag


def test_chart_draws_bars_a_spend_line_only_when_asked_and_nothing_when_empty() -> None:
    points = [MonthPoint("2026-01", 2, Decimal("10")), MonthPoint("2026-02", 0, Decimal("0"))]
    with_money = monthly_chart(points, currency="GBP", show_spend=True)
    assert with_money.count('class="bar"') == 2 and 'class="spend"' in with_money
    assert "2 visits from 2026-01 to 2026-02; spend 10.00 GBP." in with_money
    without = monthly_chart(points, currency=None, show_spend=False)
    assert 'class="spend"' not in without and "GBP" not in without
    assert monthly_chart([], currency=None, show_spend=True) == ""
