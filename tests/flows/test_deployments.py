"""hub.yaml schedules become Prefect deployments; none of this needs a Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_hub.config import load_config
from crm_hub.errors import ConfigError
from flows.deployments import build_deployments, plan_deployments

HUB = """\
store: sqlite:///crm-hub.db
sources:
  tills:
    type: file
    path: data/customers.csv
    stream: customers
    primary_key: [id]
  news:
    type: file
    path: data/news.csv
    stream: members
    primary_key: [email]
schedules:
  nightly:
    cron: "0 2 * * *"
    timezone: Europe/London
  every_15_minutes:
    cron: "*/15 * * * *"
    run: sync
    sources: [tills]
"""


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(HUB)
    return path


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def no_server_env(tmp_path: Path) -> dict[str, str]:
    """No PREFECT_API_URL, and a Prefect home without a profile that could set one."""
    home = tmp_path / "prefect-home"
    home.mkdir(exist_ok=True)
    return {
        "PREFECT_API_URL": "",
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
    }


def test_each_schedule_becomes_a_deployment_with_its_cron_and_time_zone(hub: Path) -> None:
    deployments = {d.name: d for d in build_deployments(hub)}

    assert set(deployments) == {"nightly", "every_15_minutes"}
    nightly, quarter = deployments["nightly"], deployments["every_15_minutes"]
    assert nightly.flow_name == "crm-hub-pipeline"
    assert nightly.entrypoint == "flows.pipeline.crm_hub_pipeline"
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        ("0 2 * * *", "Europe/London")
    ]
    assert nightly.parameters == {"config_path": str(hub.resolve())}
    assert quarter.flow_name == "crm-hub-sync"
    assert [(s.schedule.cron, s.schedule.timezone) for s in quarter.schedules] == [
        ("*/15 * * * *", "UTC")
    ]
    assert quarter.parameters == {"config_path": str(hub.resolve()), "sources": ["tills"]}
    for deployment in (nightly, quarter):
        assert deployment.concurrency_limit == 1
        assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"


def test_next_runs_follow_the_schedule_time_zone_across_dst(hub: Path) -> None:
    from datetime import UTC, datetime

    nightly = next(p for p in plan_deployments(hub) if p.name == "nightly")
    # The UK leaves summer time on 2026-10-25: 02:00 London is 01:00 UTC the day before.
    runs = nightly.next_runs(2, after=datetime(2026, 10, 23, 12, tzinfo=UTC))
    assert [r.astimezone(UTC).hour for r in runs] == [1, 2]


def test_dry_run_prints_the_deployments_without_a_server(hub: Path, tmp_path: Path) -> None:
    shown = cli("deploy", "--dry-run", cwd=hub.parent, env=no_server_env(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "crm-hub-pipeline/nightly" in shown.stdout and "Europe/London" in shown.stdout
    assert "crm-hub-sync/every_15_minutes" in shown.stdout and "*/15 * * * *" in shown.stdout

    as_json = cli("deploy", "--dry-run", "--json", cwd=hub.parent, env=no_server_env(tmp_path))
    assert as_json.returncode == 0, as_json.stderr
    assert [
        (d["deployment"], d["cron"], d["timezone"], d["parameters"].get("sources"))
        for d in json.loads(as_json.stdout)
    ] == [
        ("crm-hub-pipeline/nightly", "0 2 * * *", "Europe/London", None),
        ("crm-hub-sync/every_15_minutes", "*/15 * * * *", "UTC", ["tills"]),
    ]


def test_deploy_without_a_server_says_how_to_start_one(hub: Path, tmp_path: Path) -> None:
    result = cli("deploy", cwd=hub.parent, env=no_server_env(tmp_path))
    assert result.returncode == 2
    assert "PREFECT_API_URL is not set" in result.stderr
    assert "prefect server start" in result.stderr


def test_deploy_with_a_server_that_does_not_answer_names_it(hub: Path, tmp_path: Path) -> None:
    env = {**no_server_env(tmp_path), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    result = cli("deploy", cwd=hub.parent, env=env)
    assert result.returncode == 2
    assert "http://127.0.0.1:9/api does not answer" in result.stderr


def test_unknown_time_zone_is_a_config_error_with_its_line(hub: Path) -> None:
    hub.write_text(HUB.replace("Europe/London", "Europe/Atlantis"))
    with pytest.raises(ConfigError) as caught:
        load_config(hub)
    assert caught.value.problems == [
        "hub.yaml:16 schedules.nightly.timezone: Value error, unknown time zone "
        "'Europe/Atlantis' (an IANA name, e.g. UTC, Europe/London) (got 'Europe/Atlantis')"
    ]


def test_bad_cron_names_the_schedule(hub: Path) -> None:
    hub.write_text(HUB.replace('"0 2 * * *"', '"every night"'))
    with pytest.raises(ConfigError, match=r"schedules.nightly.cron: 'every night' is not a cron"):
        plan_deployments(hub)
