"""Serving: in-process and as a subprocess, control endpoints, truth file, reset, the CLI."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import typer
from sandbox_helpers import AUTH, CUSTOMERS, SEED
from typer.testing import CliRunner

import connectors.sandbox
from connectors.sandbox import SandboxProcess, SandboxServer, truth_rows
from crm_hub.cli import sandbox as sandbox_cli


def test_truth_endpoint_streams_the_ground_truth(
    server: SandboxServer, client: httpx.Client
) -> None:
    answer = client.get("/_sandbox/truth")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == ["system", "record_id", "person_id", "household_id", "deleted"]
    expected = list(truth_rows(server.sandbox.world))
    assert [(r["system"], r["record_id"], r["person_id"]) for r in rows] == [
        (e.system, e.record_id, e.person_id) for e in expected
    ]
    only_square = list(
        csv.DictReader(io.StringIO(client.get("/_sandbox/truth", params={"system": "square"}).text))
    )
    assert only_square and {r["system"] for r in only_square} == {"square"}


def test_truth_matches_what_the_api_serves(client: httpx.Client) -> None:
    truth = {
        r["record_id"]
        for r in csv.DictReader(
            io.StringIO(client.get("/_sandbox/truth", params={"system": "hubspot"}).text)
        )
    }
    served = {
        c["id"]
        for c in client.get(
            "/hubspot/crm/v3/objects/contacts", params={"limit": 100}, headers=AUTH["hubspot"]
        ).json()["results"]
    }
    assert served and served <= truth


def test_added_people_join_the_truth(client: httpx.Client) -> None:
    before = client.get("/_sandbox/truth").text.count("\n")
    added = client.post("/_sandbox/mutate", json={"vendor": "hubspot", "adds": 3}).json()["added"]
    truth = client.get("/_sandbox/truth").text
    assert truth.count("\n") == before + 3
    assert all(record_id in truth for record_id in added)


def test_reset_restores_the_seeded_world(client: httpx.Client) -> None:
    original = client.get("/_sandbox/truth").text
    client.post("/_sandbox/mutate", json={"vendor": "square", "adds": 2, "deletes": 2})
    client.post("/_sandbox/faults", json={"vendor": "square", "kind": "429", "count": 9})
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/truth").text == original
    assert client.get("/_sandbox/faults").json() == {"faults": []}


def test_info_lists_every_vendor_with_urls_and_credentials(
    server: SandboxServer, client: httpx.Client
) -> None:
    info: dict[str, Any] = client.get("/_sandbox/info").json()
    assert info["seed"] == SEED and info["customers"] == CUSTOMERS
    assert set(info["vendors"]) == {
        "square",
        "mailchimp",
        "typeform",
        "quickbooks",
        "hubspot",
        "webhook",
    }
    for vendor, entry in info["vendors"].items():
        assert entry["base_url"] == f"{server.url}/{vendor}"
    assert client.get("/_sandbox/health").json() == {"status": "ok"}


def test_unknown_paths_answer_like_the_vendor(client: httpx.Client) -> None:
    assert client.get("/nowhere/x").status_code == 404
    square = client.get("/square/v2/nothing", headers=AUTH["square"])
    assert square.status_code == 404 and square.json()["errors"][0]["code"] == "NOT_FOUND"
    wrong_method = client.delete("/square/v2/customers", headers=AUTH["square"])
    assert wrong_method.status_code == 405
    bad_json = client.post(
        "/square/v2/customers/search", content=b"{not json", headers=AUTH["square"]
    )
    assert bad_json.status_code == 400 and "errors" in bad_json.json()


def test_request_log_keeps_recent_requests_without_secrets(client: httpx.Client) -> None:
    client.get("/square/v2/customers", params={"limit": 2}, headers=AUTH["square"])
    entries = client.get("/_sandbox/requests", params={"vendor": "square"}).json()["requests"]
    assert client.get("/_sandbox/requests", params={"limit": "lots"}).status_code == 400
    assert entries[-1]["path"] == "/v2/customers" and entries[-1]["status"] == 200
    assert "sandbox-square-token" not in str(entries)


def test_public_api_is_pinned() -> None:
    assert sorted(connectors.sandbox.__all__) == [
        "Credentials",
        "FAULT_KINDS",
        "Fault",
        "FaultError",
        "MutationError",
        "MutationReport",
        "PageLimits",
        "RateLimit",
        "Sandbox",
        "SandboxConfig",
        "SandboxProcess",
        "SandboxServer",
        "SignedWebhook",
        "TruthRow",
        "World",
        "build_signed_webhook",
        "build_world",
        "mutate",
        "sign",
        "truth_csv_chunks",
        "truth_rows",
        "verify_signature",
    ]
    assert all(hasattr(connectors.sandbox, name) for name in connectors.sandbox.__all__)


def test_sandbox_runs_as_a_subprocess() -> None:
    with SandboxProcess(customers=30, seed=3, extra_args=("--no-rate-limits",)) as proc:
        assert proc.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=proc.url, timeout=5) as client:
            assert client.get("/_sandbox/health").json() == {"status": "ok"}
            assert client.get("/_sandbox/info").json()["seed"] == 3
            assert client.get("/square/v2/customers", headers=AUTH["square"]).status_code == 200
        url = proc.url
    try:
        httpx.get(f"{url}/_sandbox/health", timeout=1)
        stopped = False
    except httpx.TransportError:
        stopped = True
    assert stopped


def test_cli_registers_a_documented_sandbox_command() -> None:
    app = typer.Typer()
    sandbox_cli.register(app)

    @app.command()
    def other() -> None:
        """Keep the app multi-command so the sub-command name is required."""

    result = CliRunner().invoke(app, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--customers", "--seed", "--no-rate-limits"):
        assert option in result.output
    assert CliRunner().invoke(app, ["sandbox", "--customers", "0"]).exit_code == 2
