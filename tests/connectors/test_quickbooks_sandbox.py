"""The QuickBooks manifest over real sockets against the sandbox.

Besides counts, incremental reads and faults: OAuth with rotating refresh tokens. Each refresh
makes the previous refresh token dead, so the new one must leave the connector at once: it is
printed as a CONNECTOR_CONFIG control message (and written into the caller's config).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from airbyte_cdk.models import FailureType, Status
from source_harness import (
    CLOSED_PORT_URL,
    check,
    control_configs,
    final_state,
    inject,
    mutate,
    read,
    records,
    request_log,
    sandbox_config,
    truth_ids,
    waits_after,
    with_unexpired_quickbooks_token,
)

from connectors.sandbox import SandboxServer

VENDOR = "quickbooks"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """~400 QuickBooks customers and ~1,300 invoices (two pages of 1,000)."""
    with SandboxServer(customers=8000, seed=11) as running:
        yield running


def _refresh(server: SandboxServer, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/{VENDOR}{TOKEN_PATH}",
        auth=("sandbox-quickbooks-app", "sandbox-quickbooks-secret"),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def _persisted(control: dict[str, Any]) -> dict[str, Any]:
    """What the hub stores from a control message (the derived api_root is not config)."""
    return {k: v for k, v in control.items() if k != "api_root"}


def test_full_read_returns_every_record_exactly_once(server: SandboxServer) -> None:
    output = read(VENDOR, sandbox_config(VENDOR, server.url))

    tables = server.info()["tables"]
    customer_ids = [c["Id"] for c in records(output, "customers")]
    assert len(customer_ids) == len(set(customer_ids))
    assert set(customer_ids) == truth_ids(server, VENDOR)
    for stream, table in (("invoices", "quickbooks.invoices"), ("payments", "quickbooks.payments")):
        ids = [r["Id"] for r in records(output, stream)]
        assert len(ids) == len(set(ids)) == tables[table], stream
    assert tables["quickbooks.invoices"] > 1000  # STARTPOSITION paging was exercised


def test_incremental_read_returns_only_changed_records(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    config = copy.deepcopy(config)
    first = read(VENDOR, config)  # refreshes: config["credentials"] now holds the new tokens
    newest = {
        s: max(r["last_updated_time"] for r in records(first, s))
        for s in ("customers", "invoices", "payments")
    }
    customers = mutate(server, VENDOR, changes=3, adds=2, deletes=1)
    invoices = mutate(server, VENDOR, table="quickbooks.invoices", changes=3)

    second = read(VENDOR, config, state=final_state(first))

    got = {c["Id"]: c for c in records(second, "customers")}
    expected = set(customers["changed"]) | set(customers["added"]) | set(customers["deleted"])
    assert expected <= set(got)
    assert all(got[i]["last_updated_time"] == newest["customers"] for i in set(got) - expected)
    # Deletion is inactivation in QuickBooks; the query names Active so it is seen.
    assert [got[i]["Active"] for i in customers["deleted"]] == [False]

    paid = {i["Id"]: i for i in records(second, "invoices")}
    assert set(invoices["changed"]) <= set(paid)
    assert all(paid[i]["Balance"] == 0 for i in invoices["changed"])
    for payment in records(second, "payments"):
        linked = {t["TxnId"] for line in payment["Line"] for t in line["LinkedTxn"]}
        assert linked & set(invoices["changed"]) or (
            payment["last_updated_time"] == newest["payments"]
        )


def test_incremental_read_after_changes_re_reads_at_most_one_record_per_stream(
    server: SandboxServer,
) -> None:
    # Seeded LastUpdatedTimes are spread out: the saved cursor's second (read again, inclusive)
    # holds one record, not every invoice paid near the sandbox's anchor.
    streams = ["customers", "invoices", "payments"]
    config = copy.deepcopy(sandbox_config(VENDOR, server.url))
    first = read(VENDOR, config, streams=streams)
    customers = mutate(server, VENDOR, changes=3)
    invoices = mutate(server, VENDOR, table="quickbooks.invoices", changes=3)

    second = read(VENDOR, config, state=final_state(first), streams=streams)

    for stream, report in (("customers", customers), ("invoices", invoices)):
        got = {r["Id"] for r in records(second, stream)}
        assert set(report["changed"]) <= got
        assert len(got - set(report["changed"])) <= 1, stream
    unrelated = [
        payment
        for payment in records(second, "payments")
        if not {t["TxnId"] for line in payment["Line"] for t in line["LinkedTxn"]}
        & set(invoices["changed"])
    ]
    assert len(unrelated) <= 1


def test_deleted_invoices_and_payments_come_from_change_data_capture(
    server: SandboxServer,
) -> None:
    config = copy.deepcopy(sandbox_config(VENDOR, server.url))
    first = read(VENDOR, config)
    # A first sync reads no deletions: nothing was deleted in the last 29 days.
    assert records(first, "deleted_invoices") == records(first, "deleted_payments") == []
    invoices = mutate(server, VENDOR, table="quickbooks.invoices", changes=2, deletes=3)
    payments = mutate(server, VENDOR, table="quickbooks.payments", deletes=2)

    second = read(VENDOR, config, state=final_state(first))

    gone = records(second, "deleted_invoices")
    assert sorted(r["Id"] for r in gone) == sorted(invoices["deleted"])
    assert all(r["_ab_cdc_deleted_at"] == r["last_updated_time"] for r in gone)
    assert sorted(r["Id"] for r in records(second, "deleted_payments")) == sorted(
        payments["deleted"]
    )
    # The query endpoint no longer returns them: CDC is the only way to learn of it.
    assert not {r["Id"] for r in records(second, "invoices")} & set(invoices["deleted"])
    # The next sync starts at the newest second already read (inclusive), as the query streams
    # do: only deletions of that second come again, and the hub's content diff absorbs them.
    third = read(VENDOR, config, state=final_state(second))
    newest = max(r["last_updated_time"] for r in gone)
    again = records(third, "deleted_invoices")
    assert all(r["last_updated_time"] == newest for r in again)
    assert {r["Id"] for r in again} <= set(invoices["deleted"])


def test_a_full_change_data_capture_answer_is_continued(server: SandboxServer) -> None:
    config = copy.deepcopy(sandbox_config(VENDOR, server.url))
    first = read(VENDOR, config, streams=["deleted_invoices"])
    # Over 1,000 changed invoices, fewer than 1,000 in any second (each mutation stamps its own):
    # the first /cdc answer is cut at 1,000 objects and continued from the newest second in it.
    deleted: list[str] = []
    for _ in range(3):
        deleted += mutate(server, VENDOR, table="quickbooks.invoices", changes=600, deletes=1)[
            "deleted"
        ]
    with request_log() as requests:
        second = read(VENDOR, config, streams=["deleted_invoices"], state=final_state(first))

    # Objects of the boundary second come twice (the hub's upsert on Id absorbs it); none is lost.
    assert {r["Id"] for r in records(second, "deleted_invoices")} == set(deleted)
    assert len([r for r in requests if r.path.endswith("/cdc")]) >= 2


def test_over_a_thousand_changes_in_one_second_are_skipped_with_a_warning(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = copy.deepcopy(sandbox_config(VENDOR, server.url))
    first = read(VENDOR, config, streams=["deleted_invoices"])
    mutate(server, VENDOR, table="quickbooks.invoices", changes=1100)
    later = mutate(server, VENDOR, table="quickbooks.invoices", deletes=2)

    second = read(VENDOR, config, streams=["deleted_invoices"], state=final_state(first))

    # CDC cannot page inside that second: the read goes on past it, saying so, and still finds
    # the deletions made after it.
    assert set(later["deleted"]) <= {r["Id"] for r in records(second, "deleted_invoices")}
    assert any(
        "cannot page inside one second" in r.getMessage() and r.levelname == "WARNING"
        for r in caplog.records
    )


def test_expired_token_is_refreshed_once_and_the_rotated_token_emitted(
    server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox_config(VENDOR, server.url)
    original = config["credentials"]["refresh_token"]
    inject(server, VENDOR, "expire_token", path="/query")
    with request_log() as requests:
        output = read(VENDOR, config, streams=["customers"])

    assert set(c["Id"] for c in records(output, "customers")) == truth_ids(server, VENDOR)
    statuses = [r.status for r in requests if r.path.endswith("/query")]
    assert statuses.count(401) == 1
    # One refresh to start (no access token in the config) and one after the 401.
    assert [r.status for r in requests if r.path == TOKEN_PATH] == [200, 200]
    emitted = [c["credentials"] for c in control_configs(capsys.readouterr().out)]
    assert len(emitted) == 2
    tokens = [original] + [c["refresh_token"] for c in emitted]
    assert len(set(tokens)) == 3
    # The caller's own config was updated in place too.
    assert config["credentials"]["refresh_token"] == tokens[-1]
    # Only the newest refresh token still works; the older ones are dead.
    assert _refresh(server, tokens[0]).json() == {"error": "invalid_grant"}
    assert _refresh(server, tokens[1]).json() == {"error": "invalid_grant"}
    assert _refresh(server, tokens[2]).status_code == 200


def test_next_run_needs_the_persisted_config_not_the_original(
    server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    original = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, copy.deepcopy(original), streams=["customers"])
    (control,) = control_configs(capsys.readouterr().out)
    mutate(server, VENDOR, changes=2)

    with request_log() as requests:
        second = read(VENDOR, _persisted(control), state=final_state(first))
    stale = read(VENDOR, copy.deepcopy(original), expect_failure=True)

    assert len(records(second, "customers")) >= 2
    assert not [r for r in requests if r.path == TOKEN_PATH]  # its access token is still good
    assert any(
        e.trace.error.failure_type == FailureType.config_error
        and "Refresh token was rejected" in e.trace.error.message
        for e in stale.errors
        if e.trace and e.trace.error
    )


def test_rate_limit_waits_for_retry_after(server: SandboxServer) -> None:
    config = with_unexpired_quickbooks_token(sandbox_config(VENDOR, server.url))
    inject(server, VENDOR, "429", count=1, retry_after=2, path="/query")
    with request_log() as requests:
        output = read(VENDOR, config, streams=["customers"])

    assert {c["Id"] for c in records(output, "customers")} == truth_ids(server, VENDOR)
    waits = waits_after(requests, 429)
    assert len(waits) == 1
    # Exponential backoff alone would have retried after ~1.1 s (factor 0.05, plus 1 s).
    assert min(waits) >= 2.0  # never before Retry-After


def test_server_errors_are_retried_then_succeed(server: SandboxServer) -> None:
    config = with_unexpired_quickbooks_token(sandbox_config(VENDOR, server.url))
    inject(server, VENDOR, "5xx", count=1, status=500, path="/query")
    with request_log() as requests:
        output = read(VENDOR, config, streams=["invoices"])

    assert len(records(output, "invoices")) == server.info()["tables"]["quickbooks.invoices"]
    assert [r.status for r in requests if r.path.endswith("/query")][:2] == [500, 200]


def test_truncated_json_is_retried(server: SandboxServer) -> None:
    config = with_unexpired_quickbooks_token(sandbox_config(VENDOR, server.url))
    inject(server, VENDOR, "truncate", count=1, path="/query", after=1)
    output = read(VENDOR, config, streams=["invoices"])

    ids = [i["Id"] for i in records(output, "invoices")]
    assert len(ids) == len(set(ids)) == server.info()["tables"]["quickbooks.invoices"]


def test_check_fails_naming_the_refresh_token_when_revoked(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    config["credentials"]["refresh_token"] = "revoked-refresh-token"

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "Refresh token was rejected" in message and "invalid_grant" in message


def test_check_fails_naming_the_host_when_unreachable(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url, base_url=CLOSED_PORT_URL, max_retries=0)

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "Connection refused" in message and "port=9" in message
