"""target-crmhub-webhook: Standard Webhooks signatures checked by the sandbox's receiver."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from targets_helpers import messages, run_target, sandbox_requests

from connectors.sandbox import SandboxServer
from connectors.sandbox.webhook_receiver import verify
from connectors.target_common import DestinationAuthError
from connectors.target_webhook import TargetWebhook
from connectors.target_webhook.signing import new_message_id, secret_key, sign, signed_headers

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def deliveries(sandbox: SandboxServer) -> list[dict[str, Any]]:
    answer = httpx.get(f"{sandbox.url}/_sandbox/webhook/deliveries")
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


def people(count: int) -> list[dict[str, Any]]:
    return [{"id": f"m-{i}", "email": f"p{i}@example.com"} for i in range(count)]


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        secret_key(SPEC_SECRET), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_batches_arrive_signed_and_verified_by_the_receiver(
    sandbox: SandboxServer, webhook_config: dict[str, Any]
) -> None:
    records = people(7)

    run = run_target(
        TargetWebhook, {**webhook_config, "batch_size": 3}, messages("profiles", records)
    )

    got = deliveries(sandbox)
    assert [len(d["payload"]["data"]["records"]) for d in got] == [3, 3, 1]
    assert got[0]["payload"]["type"] == "crm_hub.records"
    assert got[0]["payload"]["data"]["stream"] == "profiles"
    assert [r["id"] for d in got for r in d["payload"]["data"]["records"]] == [
        r["id"] for r in records
    ]
    assert [rep["batch_id"] for rep in run.reports] == [d["webhook_id"] for d in got]
    assert run.confirmed == [r["id"] for r in records]


def test_the_receiver_refuses_a_wrong_signature_and_the_target_stops_without_retrying(
    sandbox: SandboxServer, webhook_config: dict[str, Any]
) -> None:
    config = {**webhook_config, "secret": SPEC_SECRET}

    with pytest.raises(
        DestinationAuthError, match="HTTP 401: invalid signature: no webhook-signature entry"
    ):
        run_target(TargetWebhook, config, messages("profiles", people(2)))

    assert [r["status"] for r in sandbox_requests(sandbox, "webhook")] == [401]
    assert deliveries(sandbox) == []


def test_the_receiver_refuses_a_stale_timestamp_and_a_tampered_body() -> None:
    secret = "whsec_" + "Y3JtLWh1Yi1zYW5kYm94LXdlYmhvb2stc2VjcmV0ISE="
    body = b'{"a":1}'
    headers = signed_headers(secret_key(secret), new_message_id(), body, now=1_700_000_000)

    assert verify(secret, headers, body, now=1_700_000_100) is None
    assert verify(secret, headers, body, now=1_700_000_400) == (
        "webhook-timestamp is more than 5 minutes from now"
    )
    assert verify(secret, headers, b'{"a":2}', now=1_700_000_000) == (
        "no webhook-signature entry matches"
    )


def test_429_and_5xx_are_retried_with_the_same_message_id_honouring_retry_after(
    sandbox: SandboxServer, webhook_config: dict[str, Any]
) -> None:
    sandbox.sandbox.inject("webhook", "429", count=2, retry_after=1)
    sandbox.sandbox.inject("webhook", "5xx", count=2, status=502)

    run = run_target(TargetWebhook, webhook_config, messages("profiles", people(3)))

    statuses = [r["status"] for r in sandbox_requests(sandbox, "webhook")]
    assert sorted(statuses) == [204, 429, 429, 502, 502]
    assert len(deliveries(sandbox)) == 1
    assert run.confirmed == ["m-0", "m-1", "m-2"]


def test_a_4xx_rejects_the_batch_once_without_retrying(
    sandbox: SandboxServer, webhook_config: dict[str, Any]
) -> None:
    config = {**webhook_config, "url": f"{sandbox.vendor_url('webhook')}/no/such/endpoint"}

    run = run_target(TargetWebhook, config, messages("profiles", people(2)))

    assert [r["status"] for r in sandbox_requests(sandbox, "webhook")] == [404]
    assert run.rejected == {"m-0": "HTTP 404 no such endpoint", "m-1": "HTTP 404 no such endpoint"}
    assert [json.loads(json.dumps(x))["key"] for x in run.rejections] == ["m-0", "m-1"]


def test_a_secret_without_the_whsec_prefix_is_a_config_error(
    webhook_config: dict[str, Any],
) -> None:
    from singer_sdk.exceptions import ConfigValidationError

    with pytest.raises(ConfigValidationError, match="whsec_"):
        TargetWebhook(config={**webhook_config, "secret": "plain-text"})
