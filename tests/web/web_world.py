"""Fixtures for the staff pages: the read API tests' world and signed-in clients.

The world (tests/api/conftest.py) is loaded by path under its own module name, and the fixtures
live here rather than in a ``conftest.py``: tests/api imports ``conftest`` by that bare name,
which a second conftest module would shadow. Test modules import the fixtures they use.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from crm_hub.api import create_app
from crm_hub.api.tokens import create_token
from crm_hub.api.web.session import COOKIE
from crm_hub.store import Store
from crm_hub.store.schema import report_campaigns, report_funnel


def _load_api_world() -> ModuleType:
    name = "crm_hub_tests_api_world"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "api" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


api_world = _load_api_world()
ANN: str = api_world.ANN
BOB: str = api_world.BOB
ZED: str = api_world.ZED
OLD_ANN: str = api_world.OLD_ANN
ZED_PHONE: str = api_world.ZED_PHONE
SOUTH_MONEY = api_world.SOUTH_MONEY
ANN_BALANCE = api_world.ANN_BALANCE
PERSONAS: dict[str, tuple[str, str | None]] = api_world.PERSONAS
build_world = api_world.build_world

# The analytics reports: south's January leads and the campaign money must reach only the roles
# allowed them.
SOUTH_LEADS = "777"
REVENUE, COST = "1,234.56", "99.00"
_T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _funnel(period: str, branch: str, *counts: int) -> dict[str, object]:
    leads, first, repeat, regulars = counts
    return {"period": period, "branch": branch, "leads": leads, "first_orders": first,
            "repeat_customers": repeat, "regulars": regulars, "lead_to_order_rate": None,
            "order_to_repeat_rate": None, "repeat_to_regular_rate": None, "regular_orders": 5,
            "computed_at": _T0}  # fmt: skip


def _campaign(
    channel: str, campaign: str, reached: int, converted: int, **money: object
) -> dict[str, object]:
    no_money = dict.fromkeys(("revenue", "currency", "cost", "cost_currency",
                              "cost_per_acquisition"))  # fmt: skip
    return {"channel": channel, "campaign_id": campaign, "reached": reached, "engaged": reached,
            "converted": converted, "conversion_rate": round(converted / reached, 4),
            "attribution_days": 30, "computed_at": _T0, **no_money, **money}  # fmt: skip


def build_reports(store: Store) -> None:
    """Funnel rows for north, south and unassigned; two campaigns, one with money."""
    with store.begin() as conn:
        conn.execute(report_funnel.insert(), [
            _funnel("2026-01", "north", 10, 6, 3, 1),
            _funnel("2026-02", "north", 20, 10, 4, 2),
            _funnel("2026-01", "south", int(SOUTH_LEADS), 500, 300, 100),
            _funnel("2026-02", "unassigned", 5, 1, 0, 0),
        ])  # fmt: skip
        conn.execute(report_campaigns.insert(), [
            _campaign("email", "spring-sale", 40, 8, revenue=Decimal("1234.56"), currency="GBP",
                      cost=Decimal("99"), cost_currency="GBP",
                      cost_per_acquisition=Decimal("12.38")),
            _campaign("form", "<b>instagram</b>", 15, 3),
        ])  # fmt: skip


def sign_in(client: TestClient, secret: str) -> None:
    """Sign in through the form, as a person would; asserts the cookie came back."""
    response = client.post(
        "/ui/login",
        content=f"token={secret}&next=/ui/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    assert COOKIE in response.cookies


@pytest.fixture(name="tokens")
def tokens_fixture(store: Store) -> dict[str, str]:
    """The world built in ``store`` and one token secret per persona."""
    build_world(store)
    return {
        who: create_token(store, name=who, role=role, branch=branch).secret
        for who, (role, branch) in PERSONAS.items()
    }


@pytest.fixture(name="as_")
def as_fixture(store: Store, tokens: dict[str, str]) -> Iterator[Callable[[str], TestClient]]:
    """``as_("staff_north")``: a client signed in as that persona (none: ``as_("")``)."""
    app = create_app(store, phone_regions=("GB",))
    opened: list[TestClient] = []

    def client(who: str) -> TestClient:
        c = TestClient(app, follow_redirects=False)
        c.__enter__()
        opened.append(c)
        if who:
            sign_in(c, tokens[who])
        return c

    yield client
    for c in opened:
        c.__exit__(None, None, None)
