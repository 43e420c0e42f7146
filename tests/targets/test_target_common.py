"""The shared HTTP behaviour of the targets: Retry-After forms, timeouts, the time budget."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from targets_helpers import messages, run_target, sandbox_requests

from connectors.sandbox import SandboxServer
from connectors.target_common.http import retry_after_seconds
from connectors.target_webhook import TargetWebhook


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("", None), (None, None), ("soon", None)],
    ids=["seconds", "zero", "empty", "absent", "garbage"],
)
def test_retry_after_in_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 11, 2, 10, 0, 7, tzinfo=UTC), usegmt=True)

    assert retry_after_seconds(later, now=now.timestamp()) == 7.0
    assert retry_after_seconds(later, now=now.timestamp() + 60) == 0.0


def test_a_stalled_request_times_out_and_is_retried(
    sandbox: SandboxServer, webhook_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("webhook", "stall", count=1, seconds=3)
    config = {**webhook_config, "timeout_seconds": 0.5}

    started = time.monotonic()
    run = run_target(TargetWebhook, config, messages("profiles", [{"id": "a"}]))

    assert time.monotonic() - started < 3  # gave up on the stalled attempt after 0.5 s
    assert run.confirmed == ["a"]
    # the stalled request is still being held by the sandbox: only the retry is logged yet
    assert [r["status"] for r in sandbox_requests(sandbox, "webhook")] == [204]
