"""Issue 4's finish line: one hub.yaml with the four native connectors on the sandbox and one
external Airbyte source (the real airbyte-source-faker, a subprocess) syncs everything into raw
with `crm-hub sync`, and a second sync lands nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_airbyte_runner import USERS, faker_yaml
from typer.testing import CliRunner

from connectors.sandbox import SandboxServer
from crm_hub.cli import app
from crm_hub.config import load_config
from crm_hub.store.engine import open_store
from crm_hub.store.schema import raw_records

NATIVE = ("square", "mailchimp", "typeform", "quickbooks")


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(customers=150, seed=7) as server:
        yield server


def _raw_counts(hub: Path) -> dict[tuple[str, str], int]:
    store = open_store(load_config(hub).store)
    with store.read() as conn:
        rows = conn.execute(
            select(raw_records.c.source, raw_records.c.stream, func.count()).group_by(
                raw_records.c.source, raw_records.c.stream
            )
        ).all()
    return {(source, stream): n for source, stream, n in rows}


def test_four_native_sources_and_an_airbyte_source_sync_into_raw(
    sandbox: SandboxServer,
    tmp_path: Path,
    faker_command: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_HUB_SANDBOX_URL", sandbox.url)
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "hub"), "--vendors"]).exit_code == 0
    hub = tmp_path / "hub" / "hub.yaml"
    text = hub.read_text(encoding="utf-8")
    hub.write_text(text.replace("\nsources:\n", "\nsources:\n" + faker_yaml(faker_command), 1))

    first = runner.invoke(app, ["sync", "--config", str(hub), "--json"])
    assert first.exit_code == 0, first.output
    counts = _raw_counts(hub)
    tables = sandbox.info()["tables"]
    assert counts[("square", "customers")] == tables["square.customers"]
    assert counts[("square", "orders")] == tables["square.orders"]
    assert counts[("mailchimp", "members")] == tables["mailchimp.members"]
    assert counts[("typeform", "responses")] == tables["typeform.responses"]
    assert counts[("quickbooks", "invoices")] == tables["quickbooks.invoices"]
    assert counts[("faker", "users")] == USERS
    assert {source for source, _ in counts} == {*NATIVE, "faker"}

    second = runner.invoke(app, ["sync", "--config", str(hub), "--json"])
    assert second.exit_code == 0, second.output
    assert _raw_counts(hub) == counts
    results = json.loads(second.output)
    inserted = {r["source"]: r["inserted"] for r in results["sync"]}
    assert inserted == {name: 0 for name in (*NATIVE, "faker")}, inserted
