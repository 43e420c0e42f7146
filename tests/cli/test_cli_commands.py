"""The command line as a user drives it: real subprocesses, real exit codes, real output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_hub.config import load_config
from crm_hub.config.models import SOURCE_TYPES
from crm_hub.store import open_store
from crm_hub.store.leases import hold_lease
from crm_hub.store.schema import review_queue


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def project(tmp_path: Path, store_url: str) -> Path:
    """`crm-hub init` output, pointed at this test's store."""
    result = cli("init", "cafe", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hub = tmp_path / "cafe" / "hub.yaml"
    hub.write_text(hub.read_text().replace("sqlite:///crm-hub.db", store_url))
    return hub.parent


def test_init_check_run_status_rejected_work_at_once(project: Path) -> None:
    assert cli("check", cwd=project).returncode == 0
    run = cli("run", "--json", cwd=project)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["ok"] and {s["source"]: s["inserted"] for s in summary["sync"]} == {
        "pos_export": 10,
        "pos_orders": 6,
        "newsletter": 5,
    }
    status = json.loads(cli("status", "--json", cwd=project).stdout)
    by_source = {s["source"]: s for s in status["sources"]}
    assert by_source["pos_export"]["raw_records"] == 10
    assert by_source["pos_export"]["open_rejections"] == 1
    assert by_source["pos_export"]["state"]["customers"]["cursor"] == "2026-10-12T14:15:00Z"
    rejected = json.loads(cli("rejected", "list", "--json", cwd=project).stdout)
    assert [(r["location"], r["reason_code"]) for r in rejected] == [
        ("data/customers.csv:11", "missing_primary_key")
    ]
    again = json.loads(cli("run", "--json", cwd=project).stdout)
    assert sum(s["inserted"] + s["updated"] for s in again["sync"]) == 0
    table = cli("status", cwd=project).stdout
    assert "pos_export" in table and "ok" in table


def test_broken_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text(
        "store: sqlite:///x.db\nsources:\n  a:\n    type: file\n    colour: red\n"
        "  b:\n    type: ftp\n"
    )
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "hub.yaml:5 sources.a.colour: unknown key" in result.stderr
    assert "hub.yaml:7 sources.b.type: unknown source type 'ftp'" in result.stderr
    assert "hub.yaml:3 sources.a.path: required key is missing" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_json_errors_are_machine_readable(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text("store: sqlite:///x.db\nsources:\n  a:\n    type: ftp\n")
    result = cli("sync", "--json", cwd=tmp_path)
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"] == [
        "hub.yaml:4 sources.a.type: unknown source type 'ftp'; allowed: "
        + ", ".join(sorted(SOURCE_TYPES))
    ]


def test_unknown_source_name_is_a_usage_error(project: Path) -> None:
    result = cli("sync", "nope", cwd=project)
    assert result.returncode == 2
    assert "no source named nope" in result.stderr


def test_busy_source_exits_1_naming_the_holder(project: Path) -> None:
    config = load_config(project / "hub.yaml")
    store = open_store(config.store)
    try:
        with hold_lease(store, "sync:pos_export", "HOLDER-RUN"):
            result = cli("sync", "pos_export", cwd=project)
    finally:
        store.dispose()
    assert result.returncode == 1
    assert "sync:pos_export is already running (run HOLDER-RUN" in result.stderr


def test_missing_data_file_fails_the_source_but_not_the_others(project: Path) -> None:
    (project / "data" / "orders.jsonl").unlink()
    result = cli("run", "--json", cwd=project)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert [s["source"] for s in summary["sync"]] == ["pos_export", "newsletter"]
    assert summary["failures"] == [
        "sync pos_orders: source pos_orders: path 'data/orders.jsonl' matches no file "
        f"(looked for {project / 'data/orders.jsonl'})"
    ]
    status = json.loads(cli("status", "--json", cwd=project).stdout)
    failed = {s["source"]: s for s in status["sources"]}["pos_orders"]
    assert failed["last_status"] == "failed" and "matches no file" in failed["last_error"]


def test_unreachable_store_exits_1(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text(
        "store: postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2\nsources: {}\n"
    )
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach the store" in result.stdout + result.stderr


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert cli("init", "p", cwd=tmp_path).returncode == 0
    again = cli("init", "p", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr


def test_cli_start_up_stays_light() -> None:
    """Every command pays for what `import crm_hub.cli` imports: keep the heavy engines lazy."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, crm_hub.cli; "
            "print(sorted(m for m in ('numpy', 'pandas', 'airbyte_cdk', 'prefect', 'scipy') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_people_resolve_explain_override_and_review(project: Path, store_url: str) -> None:
    run = json.loads(cli("run", "--json", cwd=project).stdout)
    assert run["stages"]["resolve"]["records"] == 15
    people = run["stages"]["resolve"]["masters"]

    # Jim Miller in the newsletter and James Miller at the till: one person, by score.
    jim_news, jim_pos = "newsletter:jim.miller@example.com", "pos_export:c-1008"
    trace = json.loads(cli("explain", jim_pos, "--json", cwd=project).stdout)
    assert {(r["source"], r["source_id"]) for r in trace["records"]} == {
        ("newsletter", "jim.miller@example.com"),
        ("pos_export", "c-1008"),
    }
    assert {r["link"]["reason"] for r in trace["records"]} == {"score"}
    golden = trace["golden"]["last_name"]
    assert (golden["value"], golden["rule"]) == ("Miller", "most_recent")
    assert golden["source"] in {"newsletter", "pos_export"} and golden["at"]
    assert json.loads(cli("resolve", "--json", cwd=project).stdout)["skipped"] is True

    inside = cli("identity", "never", jim_news, trace["master_id"], "--json", cwd=project)
    assert inside.returncode == 2  # one is part of the other: that is a split
    split = cli("identity", "split", trace["master_id"], jim_news, "--json", cwd=project)
    assert split.returncode == 0, split.stderr
    assert json.loads(split.stdout)["masters"] == people + 1
    overrides = json.loads(cli("identity", "overrides", "--json", cwd=project).stdout)
    assert [o["kind"] for o in overrides] == ["cannot_link"]
    merged = cli("identity", "merge", jim_news, jim_pos, "--note", "same Jim", cwd=project)
    assert merged.returncode == 0, merged.stderr
    again = json.loads(cli("explain", jim_news, "--json", cwd=project).stdout)
    assert again["master_id"] == trace["master_id"]  # the id they had together comes back
    assert {r["link"]["reason"] for r in again["records"]} == {"must_link"}
    assert [o["note"] for o in again["overrides"]] == ["same Jim"]  # the merge replaced the split

    # A pair the matcher was unsure about, decided by a person, becomes an override.
    store = open_store(store_url)
    with store.begin() as conn:
        conn.execute(review_queue.insert().values(
            left_source="pos_export", left_source_id="c-1003", right_source="pos_export",
            right_source_id="c-1006", reason="maybe", probability=0.7, evidence={"levels": {}},
            status="open", created_at=datetime.now(UTC)))  # fmt: skip
    store.dispose()
    review = json.loads(cli("review", "list", "--json", cwd=project).stdout)
    assert [(r["left"]["source_id"], r["right"]["source_id"]) for r in review] == [
        ("c-1003", "c-1006")
    ]
    decided = cli("review", "decide", str(review[0]["id"]), "--different", cwd=project)
    assert decided.returncode == 0, decided.stderr
    assert json.loads(cli("review", "list", "--json", cwd=project).stdout) == []
    kinds = {(o["kind"], o["origin"]) for o in
             json.loads(cli("identity", "overrides", "--json", cwd=project).stdout)}  # fmt: skip
    assert ("cannot_link", "review") in kinds

    unknown = cli("explain", "nobody@nowhere.test", cwd=project)
    assert unknown.returncode == 2 and "nobody in the store" in unknown.stderr
