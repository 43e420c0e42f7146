"""The Typeform manifest over real sockets against the sandbox (its 2 requests/s limit on)."""

from __future__ import annotations

from collections import Counter
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

VENDOR = "typeform"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """~150 responses over two forms."""
    with SandboxServer(customers=500, seed=11) as running:
        yield running


def test_full_read_returns_every_response_exactly_once() -> None:
    with SandboxServer(customers=6500, seed=11) as big:  # a form over 1,000: `after` paging
        with request_log() as requests:
            output = read(VENDOR, sandbox_config(VENDOR, big.url))
        truth = truth_ids(big, VENDOR)

    responses = records(output, "responses")
    ids = [r["response_id"] for r in responses]
    assert len(ids) == len(set(ids))
    assert set(ids) == truth
    assert max(Counter(r["form_id"] for r in responses).values()) > 1000
    paged = [r.query for r in requests if r.path.endswith("/responses") and "after=" in r.query]
    assert paged and all("sort=" not in query for query in paged)
    assert len(records(output, "forms")) == 2


def test_incremental_read_returns_only_new_responses(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config)
    newest: dict[str, str] = {}  # the cursor is kept per form
    for response in records(first, "responses"):
        form = response["form_id"]
        newest[form] = max(newest.get(form, ""), response["submitted_at"])
    report = mutate(server, VENDOR, adds=3, deletes=1)

    second = read(VENDOR, config, state=final_state(first))

    got = {r["response_id"]: r for r in records(second, "responses")}
    assert set(report["added"]) <= set(got)
    # Besides the new ones, only responses of the saved cursor's second are read again.
    extra = set(got) - set(report["added"])
    assert all(got[i]["submitted_at"] == newest[got[i]["form_id"]] for i in extra)
    assert not set(report["deleted"]) & set(got)


def test_rate_limit_waits_for_retry_after(server: SandboxServer) -> None:
    inject(server, VENDOR, "429", count=2, path="/responses")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url))

    assert {r["response_id"] for r in records(output, "responses")} == truth_ids(server, VENDOR)
    waits = waits_after(requests, 429)
    assert len(waits) >= 2
    assert min(waits) >= 1.0  # Typeform's Retry-After is at least a second: never earlier


def test_server_errors_are_retried_then_succeed(server: SandboxServer) -> None:
    inject(server, VENDOR, "5xx", count=1, status=503, path="/responses")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url))

    assert {r["response_id"] for r in records(output, "responses")} == truth_ids(server, VENDOR)
    assert [r.status for r in requests if r.path.endswith("/responses")].count(503) == 1


def test_truncated_json_is_retried_then_fails_clearly(server: SandboxServer) -> None:
    inject(server, VENDOR, "truncate", count=1, path="/responses")
    retried = read(VENDOR, sandbox_config(VENDOR, server.url))
    inject(server, VENDOR, "truncate", count=10, path="/forms")
    config = sandbox_config(VENDOR, server.url, max_retries=1)
    failed = read(VENDOR, config, streams=["forms"], expect_failure=True)

    ids = [r["response_id"] for r in records(retried, "responses")]
    assert len(ids) == len(set(ids)) and set(ids) == truth_ids(server, VENDOR)
    assert any("not valid JSON" in message for message in error_messages(failed))


def test_expired_token_fails_naming_the_access_token(server: SandboxServer) -> None:
    inject(server, VENDOR, "expire_token")
    output = read(VENDOR, sandbox_config(VENDOR, server.url), expect_failure=True)

    assert any("expired" in m and "`access_token`" in m for m in error_messages(output)), (
        error_messages(output)
    )


def test_check_fails_naming_the_access_token(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url, access_token="tfp_not_a_token")

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "refused the access token" in message and "401" in message


def test_check_fails_naming_the_host_when_unreachable() -> None:
    config = sandbox_config(VENDOR, "unused", base_url=CLOSED_PORT_URL, max_retries=0)

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "Connection refused" in message and "port=9" in message
