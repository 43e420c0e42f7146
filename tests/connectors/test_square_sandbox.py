"""The Square manifest over real sockets against the sandbox: counts, incremental, faults, auth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from airbyte_cdk.models import Status
from source_harness import (
    CLOSED_PORT_URL,
    check,
    error_messages,
    final_state,
    inject,
    mutate,
    read,
    records,
    request_log,
    sandbox_config,
    truth_ids,
    waits_after,
)

from connectors.sandbox import SandboxServer

VENDOR = "square"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """~330 Square customers (4 pages of 100) and ~1,200 orders (2 pages of 1,000)."""
    with SandboxServer(customers=400, seed=11) as running:
        yield running


def test_full_read_returns_every_record_exactly_once(server: SandboxServer) -> None:
    output = read(VENDOR, sandbox_config(VENDOR, server.url))

    customer_ids = [c["id"] for c in records(output, "customers")]
    order_ids = [o["id"] for o in records(output, "orders")]
    assert len(customer_ids) == len(set(customer_ids))
    assert set(customer_ids) == truth_ids(server, "square")
    assert len(order_ids) == len(set(order_ids)) == server.info()["tables"]["square.orders"]
    assert len(records(output, "locations")) == 6
    assert all(order["line_items"] for order in records(output, "orders"))


def test_incremental_read_returns_only_changed_records(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config)
    newest = {
        stream: max(r["updated_at"] for r in records(first, stream))
        for stream in ("customers", "orders")
    }
    customers = mutate(server, VENDOR, changes=4, adds=2, deletes=1)
    orders = mutate(server, VENDOR, table="square.orders", changes=3, deletes=1)

    second = read(VENDOR, config, state=final_state(first))

    for stream, expected in (
        ("customers", set(customers["changed"]) | set(customers["added"])),
        ("orders", set(orders["changed"]) | set(orders["deleted"])),
    ):
        got = {r["id"]: r["updated_at"] for r in records(second, stream)}
        assert expected <= set(got), stream
        # Besides the changes, only the record at the saved cursor is read again (inclusive start).
        assert all(got[extra] == newest[stream] for extra in set(got) - expected), stream
    # Square deletes profiles outright: a deleted customer is simply not listed any more.
    assert not set(customers["deleted"]) & {c["id"] for c in records(second, "customers")}


def test_rate_limit_storm_backs_off_and_completes(server: SandboxServer) -> None:
    # Since 2026: one window, so the throttled requests are retried one after the other.
    config = sandbox_config(VENDOR, server.url, start_date="2026-01-01T00:00:00Z")
    expected = {c["id"] for c in records(read(VENDOR, config, streams=["customers"]), "customers")}
    inject(server, VENDOR, "429", count=3, path="/v2/customers/search")
    with request_log() as requests:
        output = read(VENDOR, config, streams=["customers"])

    assert len(expected) > 100  # more than one page
    assert {c["id"] for c in records(output, "customers")} == expected
    waits = waits_after(requests, 429)
    # Square sends no Retry-After: exponential backoff, and the CDK adds a second to each wait.
    assert len(waits) == 3
    assert min(waits) >= 1.0


def test_server_errors_are_retried_then_succeed(server: SandboxServer) -> None:
    inject(server, VENDOR, "5xx", count=1, status=503, path="/v2/orders/search")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["orders"])

    assert len(records(output, "orders")) == server.info()["tables"]["square.orders"]
    assert [r.status for r in requests if r.path == "/v2/orders/search"][:2] == [503, 200]


def test_truncated_json_is_retried(server: SandboxServer) -> None:
    inject(server, VENDOR, "truncate", count=1, path="/v2/customers/search", after=1)
    output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["customers"])

    ids = [c["id"] for c in records(output, "customers")]
    assert len(ids) == len(set(ids))
    assert set(ids) == truth_ids(server, "square")


def test_truncated_json_every_time_fails_clearly(server: SandboxServer) -> None:
    inject(server, VENDOR, "truncate", count=10, path="/v2/customers/search")
    config = sandbox_config(VENDOR, server.url, max_retries=1)
    output = read(VENDOR, config, streams=["customers"], expect_failure=True)

    assert any("not valid JSON" in message for message in error_messages(output))


def test_expired_token_fails_naming_the_access_token(server: SandboxServer) -> None:
    inject(server, VENDOR, "expire_token")
    output = read(VENDOR, sandbox_config(VENDOR, server.url), expect_failure=True)

    assert any(
        "ACCESS_TOKEN_EXPIRED" in m and "`access_token`" in m for m in error_messages(output)
    )


def test_check_fails_naming_auth_for_a_bad_token(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url, access_token="not-a-square-token")

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "refused the access token" in message and "401" in message


def test_check_fails_naming_the_host_when_unreachable() -> None:
    config = sandbox_config(VENDOR, "unused", base_url=CLOSED_PORT_URL, max_retries=0)

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "Connection refused" in message and "port=9" in message
    assert "access token" not in message
