"""One real browser: Debian's Chromium (headless, via selenium) against uvicorn on loopback.

Signs in with a pasted token, types a phone number into the search box, follows the instant
result to the customer card and checks the server-rendered SVG chart is drawn; a manager reaches
the reports page with the keyboard alone and sees the funnel and campaign charts. Screenshots go
to the test's tmp dir. ``make test`` installs chromium and chromium-driver when they are missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_world import ANN, build_reports, build_world

from crm_hub.api import create_app
from crm_hub.api.tokens import create_token
from crm_hub.store import Store, open_store
from tests.live_server import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, a staff token, a manager token) of a real uvicorn serving the world and its
    reports from a SQLite store."""
    store: Store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    build_world(store)
    build_reports(store)
    secret = create_token(store, name="till-north", role="staff", branch="north").secret
    manager = create_token(store, name="boss-north", role="manager", branch="north").secret
    with serve_in_thread(create_app(store)) as base:
        yield base, secret, manager
    store.dispose()


@pytest.fixture
def driver() -> Iterator[Any]:
    """Headless Debian Chromium through selenium, at a tablet's size."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("needs Debian's chromium: `apt-get install -y chromium chromium-driver`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1024,1366"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


@pytest.mark.slow
@pytest.mark.xdist_group("chromium")
def test_search_a_phone_open_the_card_and_see_the_chart(
    served: tuple[str, str, str], driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, secret, _ = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    wait = WebDriverWait(driver, 10)
    driver.get(f"{base}/ui/")
    assert "/ui/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(secret)
    driver.save_screenshot(str(shots / "1-login.png"))
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    box = wait.until(ec.element_to_be_clickable((By.ID, "q")))
    assert secret not in driver.page_source
    assert driver.find_elements(By.LINK_TEXT, "Reports") == []  # not for staff
    box.send_keys("07911 123456")  # instant results: no Enter pressed
    link = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f'a[href="/ui/customers/{ANN}"]'))
    )
    assert "+44*******456" in link.text  # staff: the phone is masked
    driver.save_screenshot(str(shots / "2-search.png"))
    link.click()
    chart = wait.until(ec.visibility_of_element_located((By.ID, "visits-chart")))
    assert chart.tag_name == "svg"
    bars = driver.find_elements(By.CSS_SELECTOR, "#visits-chart rect.bar")
    assert bars and bars[0].size["height"] > 0
    assert driver.find_elements(By.ID, "money") == []  # staff see no money
    assert "peanuts" in driver.find_element(By.TAG_NAME, "main").text
    driver.save_screenshot(str(shots / "3-card.png"))
    for name in ("1-login.png", "2-search.png", "3-card.png"):
        assert (shots / name).stat().st_size > 5_000, name


@pytest.mark.slow
@pytest.mark.xdist_group("chromium")
def test_a_manager_tabs_to_the_reports_and_sees_both_charts(
    served: tuple[str, str, str], driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, _, manager = served
    wait = WebDriverWait(driver, 10)
    driver.get(f"{base}/ui/login")
    driver.find_element(By.ID, "token").send_keys(manager, Keys.ENTER)
    wait.until(ec.element_to_be_clickable((By.ID, "q")))
    for _ in range(12):  # keyboard only: Tab until the Reports link has the focus
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if driver.switch_to.active_element.text == "Reports":
            break
    assert driver.switch_to.active_element.text == "Reports", "Reports is not reachable by Tab"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    funnel = wait.until(ec.visibility_of_element_located((By.ID, "funnel-chart")))
    assert funnel.tag_name == "svg" and "/ui/reports" in driver.current_url
    bars = driver.find_elements(By.CSS_SELECTOR, "#funnel-chart rect.bar")
    assert len(bars) == 4 and all(bar.size["height"] > 0 for bar in bars)
    assert bars[0].size["width"] > bars[-1].size["width"] > 0  # leads > regulars, drawn to scale
    campaigns = driver.find_elements(By.CSS_SELECTOR, "#campaigns-chart rect.bar")
    assert len(campaigns) == 4 and campaigns[0].size["width"] > 0
    assert "1,234.56" not in driver.page_source  # a branch manager: no chain-wide money
    driver.save_screenshot(str(tmp_path / "4-reports.png"))
    assert (tmp_path / "4-reports.png").stat().st_size > 5_000
