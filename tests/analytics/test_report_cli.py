"""`crm-hub report` as a user drives it: real subprocesses on the hand-computed store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_hub.analytics.charts import write_chart
from crm_hub.errors import ConfigError
from crm_hub.store import Store
from tests.analytics.conftest import TODAY


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def project(people: Store, store_url: str, tmp_path: Path) -> Path:
    hub = tmp_path / "hub.yaml"
    hub.write_text(
        f"store: {store_url}\n"
        "sources:\n  typeform:\n    type: typeform\n"
        "campaigns:\n  spring: {cost: 84, currency: GBP}\n",
        encoding="utf-8",
    )
    return tmp_path


def test_campaigns_json_and_png_chart(project: Path) -> None:
    result = cli("report", "campaigns", "--json", "--chart", "campaigns.png", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = {r["campaign_id"]: r for r in json.loads(result.stdout)}
    assert rows["spring"]["converted"] == 2 and rows["spring"]["cost_per_acquisition"] == "42.00"
    assert rows["flyer"]["channel"] == "form"  # typeform found as the form source in hub.yaml
    png = (project / "campaigns.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_funnel_table_by_quarter_and_html_chart(project: Path) -> None:
    result = cli("report", "funnel", "--period", "quarter", "--chart", "funnel.html", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "2026-Q1" in result.stdout and "66.7%" in result.stdout  # 2 of 3 leads ordered
    page = (project / "funnel.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "<td>2026-Q1</td>" in page


def test_cohorts_for_one_branch_from_the_stored_report(project: Path) -> None:
    assert cli("report", "cohorts", "--today", TODAY.isoformat(), cwd=project).returncode == 0
    result = cli("report", "cohorts", "--stored", "--branch", "shoreditch", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["months_since"], r["active"]) for r in rows] == [(0, 1), (1, 1), (2, 0), (3, 0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["funnel", "--period", "week"], "period 'week' is not one of month, quarter, year"),
        (["cohorts", "--chart", "out.pdf"], "name a .png or .html file"),
        (["cohorts", "--today", "April"], "--today 'April' is not a date"),
    ],
    ids=["period", "chart-type", "today"],
)
def test_bad_options_exit_2_with_a_clear_message(
    project: Path, args: list[str], message: str
) -> None:
    result = cli("report", *args, cwd=project)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


def test_cohort_heat_map_png_is_written(tmp_path: Path) -> None:
    rows = [{"cohort": "2026-01", "branch": "all", "months_since": k, "cohort_size": 4,
             "active": a, "retention": a / 4} for k, a in enumerate([4, 2, 1])]  # fmt: skip
    path = write_chart("cohorts", rows, tmp_path / "c.png", title="Retention")
    assert path.stat().st_size > 5000


def test_chart_into_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        write_chart("funnel", [], tmp_path / "no" / "f.png", title="Funnel")
