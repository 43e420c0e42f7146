"""The sandbox's Standard Webhooks receiver: what it accepts, refuses and de-duplicates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx

from connectors.sandbox import SandboxServer


def signed(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers signed independently of the target's code (spec: id.timestamp.body)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1,bm90LXRoaXM= v1," + base64.b64encode(digest).decode(),
    }


def deliveries(client: httpx.Client, endpoint: str | None = None) -> list[dict[str, Any]]:
    params = {"endpoint": endpoint} if endpoint else {}
    found: list[dict[str, Any]] = client.get("/_sandbox/webhook/deliveries", params=params).json()[
        "deliveries"
    ]
    return found


def test_a_signed_delivery_is_kept_once_even_when_resent(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    secret = info["vendors"]["webhook"]["secret"]
    body = b'{"type":"t","data":{"n":1}}'
    headers = signed(secret, "msg_1", body)

    first = client.post("/webhook/crm", content=body, headers=headers)
    again = client.post("/webhook/crm", content=body, headers=headers)

    assert (first.status_code, again.status_code) == (204, 204)
    assert [d["payload"]["data"] for d in deliveries(client, "crm")] == [{"n": 1}]
    assert deliveries(client, "other") == []


def test_bad_signatures_stale_timestamps_and_missing_headers_are_refused(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    secret = info["vendors"]["webhook"]["secret"]
    body = b'{"a":1}'
    wrong = signed("whsec_" + base64.b64encode(b"x" * 32).decode(), "msg_2", body)
    stale = signed(secret, "msg_3", body, timestamp=int(time.time()) - 301)

    assert client.post("/webhook/crm", content=body, headers=wrong).status_code == 401
    assert client.post("/webhook/crm", content=body, headers=stale).status_code == 401
    assert client.post("/webhook/crm", content=body).status_code == 400
    assert deliveries(client) == []


def test_faults_apply_to_the_receiver(server: SandboxServer, info: dict[str, Any]) -> None:
    server.sandbox.inject("webhook", "429", count=1, retry_after=2)
    body = b"{}"
    with httpx.Client(base_url=server.url) as http:
        answer = http.post(
            "/webhook/crm",
            content=body,
            headers=signed(info["vendors"]["webhook"]["secret"], "msg_4", body),
        )

    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "2")
