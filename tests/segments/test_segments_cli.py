"""`crm-hub segments` as a user drives it: check, preview (writes nothing), run, list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_hub.store import open_store
from crm_hub.store.schema import runs, segment_history, segment_memberships, segments
from tests.segments.conftest import put


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
def demo(tmp_path: Path, store_url: str) -> Path:
    assert cli("init", "demo", cwd=tmp_path).returncode == 0
    hub = tmp_path / "demo" / "hub.yaml"
    hub.write_text(hub.read_text().replace("sqlite:///crm-hub.db", store_url))
    store = open_store(store_url)
    put(store, "m_ann", name="Ann Lee", email="ann@example.com", total_spend=Decimal("812.5"),
        orders_count=7, last_order_at=datetime(2025, 12, 1, tzinfo=UTC),
        consent_email=True, profile={"branch": "soho"})  # fmt: skip
    put(store, "m_bob", name="Bob Ray", email="bob@example.com", total_spend=Decimal("40"),
        first_order_at=datetime(2026, 3, 1, tzinfo=UTC), consent_email=True,
        open_balance=Decimal("12.5"), profile={"branch": "camden"})  # fmt: skip
    store.dispose()
    return hub.parent


def _counts(store_url: str) -> tuple[int, int, int, int]:
    store = open_store(store_url)
    with store.read() as conn:
        found = tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (segments, segment_memberships, segment_history, runs)
        )
    store.dispose()
    return found  # type: ignore[return-value]


def test_check_preview_run_list(demo: Path, store_url: str) -> None:
    check = cli("segments", "check", "--json", cwd=demo)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {
        "ok": True, "file": "mappings/segments.yaml", "segments": 6
    }  # fmt: skip
    before = _counts(store_url)
    preview = cli("segments", "preview", "high_value", "--today", "2026-03-02", "--json", cwd=demo)
    assert preview.returncode == 0, preview.stderr
    [shown] = json.loads(preview.stdout)
    assert (shown["members"], shown["current"], shown["would_enter"], shown["would_exit"]) == (
        1, 0, 1, 0
    )  # fmt: skip
    assert shown["sample"] == [
        {"master_id": "m_ann", "full_name": "Ann Lee", "email": "ann@example.com"}
    ]
    table = cli("segments", "preview", "newsletter_by_branch", "--today", "2026-03-02", cwd=demo)
    assert "newsletter_by_branch:soho" in table.stdout and "nothing is written" in table.stdout
    assert _counts(store_url) == before  # preview wrote nothing, not even a runs row

    run = cli("segments", "run", "--today", "2026-03-02", "--json", cwd=demo)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    moved = {s["name"]: s["entered"] for s in result["segments"]}
    assert moved == {
        "birthdays_this_week": 0,
        "lapsed_regulars": 1,
        "high_value": 1,
        "owes_money": 1,
        "new_this_month": 1,
        "newsletter_by_branch": 2,
    }
    per_value = {s["name"]: s["values"] for s in result["segments"]}["newsletter_by_branch"]
    assert per_value == {"newsletter_by_branch:camden": 1, "newsletter_by_branch:soho": 1}
    listed = json.loads(cli("segments", "list", "--json", cwd=demo).stdout)
    assert {r["name"]: r["members"] for r in listed}["newsletter_by_branch:soho"] == 1
    again = cli("segments", "preview", "high_value", "--json", "--today", "2026-03-02", cwd=demo)
    assert json.loads(again.stdout)[0]["would_enter"] == 0


def test_a_bad_file_exits_2_with_file_and_line(demo: Path) -> None:
    path = demo / "mappings" / "segments.yaml"
    path.write_text(path.read_text().replace("total_spend, gte: 500", "total_spent, gte: 500"))
    check = cli("segments", "check", cwd=demo)
    assert check.returncode == 2
    assert "mappings/segments.yaml:20 segments.high_value.where.field: unknown field " in (
        check.stderr.replace("\n", " ")
    )
    as_json = json.loads(cli("segments", "run", "--json", cwd=demo).stdout)
    assert as_json["ok"] is False and "did you mean total_spend" in as_json["problems"][0]
    unknown = cli("segments", "preview", "nope", cwd=demo)
    assert unknown.returncode == 2


def test_unknown_segment_and_bad_today_are_usage_errors(demo: Path) -> None:
    assert cli("segments", "run", "nope", cwd=demo).returncode == 2
    bad_day = cli("segments", "preview", "high_value", "--today", "soon", cwd=demo)
    assert bad_day.returncode == 2 and "YYYY-MM-DD" in bad_day.stderr
