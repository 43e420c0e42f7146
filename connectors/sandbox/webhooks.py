"""Typeform webhooks: signing, verifying, building and delivering ``form_response`` events.

The signature is ``Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>``. The
functions here are pure except ``deliver``; tests can build a signed request without a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson

from connectors.sandbox import ids
from connectors.sandbox import typeform_records as records

if TYPE_CHECKING:
    from connectors.sandbox.world import World

SIGNATURE_HEADER = "Typeform-Signature"


def sign(secret: str, body: bytes) -> str:
    """The ``Typeform-Signature`` value for a raw body.

    Example: ``sign("s3cret", b'{"a":1}')`` → ``"sha256=..."`` (44 base64 characters).
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check a ``Typeform-Signature`` header against the raw body, in constant time."""
    if not header:
        return False
    return hmac.compare_digest(
        sign(secret, body).encode("ascii"), header.strip().encode("ascii", "replace")
    )


@dataclass(frozen=True)
class SignedWebhook:
    """A ready-to-send webhook request: exact body bytes and headers."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def build_signed_webhook(
    secret: str | None, payload: dict[str, Any] | bytes, url: str = ""
) -> SignedWebhook:
    """Serialise a payload (or take raw bytes) and sign it as Typeform does.

    Args:
        secret: the webhook secret; ``None`` sends it unsigned (a webhook without a secret).
        payload: the event, or its exact body bytes.
        url: where it would be delivered.

    Returns:
        The signed request.
    """
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "Typeform Webhooks"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return SignedWebhook(url, body, headers)


def form_response_event(world: World, row: int) -> dict[str, Any]:
    """The ``form_response`` event of a stored response (same answers as the Responses API)."""
    table = world.tables["typeform.responses"]
    form = table.get("form", row)
    response = table.body(row)
    definition = records.form_definition(world, form)
    return {
        "event_id": ids.encode(
            world.seed, "typeform.event", row * 1000 + table.get("version", row), 26
        ),
        "event_type": "form_response",
        "form_response": {
            "form_id": definition["id"],
            "token": response["token"],
            "landed_at": response["landed_at"],
            "submitted_at": response["submitted_at"],
            "hidden": response["hidden"],
            "calculated": response["calculated"],
            "variables": response["variables"],
            "definition": {
                "id": definition["id"],
                "title": definition["title"],
                "fields": definition["fields"],
            },
            "answers": response["answers"],
        },
    }


class WebhookDeliveryError(Exception):
    """The delivery target is not allowed (non-loopback host while remote delivery is off)."""


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def deliver(request: SignedWebhook, *, timeout: float = 5.0, allow_remote: bool = False) -> int:
    """POST a signed webhook; returns the receiver's HTTP status.

    Raises:
        WebhookDeliveryError: when the URL is not on loopback and ``allow_remote`` is off.
        httpx.HTTPError: when the receiver cannot be reached.
    """
    if not allow_remote and not _is_loopback(request.url):
        raise WebhookDeliveryError(
            f"refusing to deliver outside loopback: {urlsplit(request.url).hostname}"
        )
    with httpx.Client(timeout=timeout) as client:
        return client.post(request.url, content=request.body, headers=request.headers).status_code
