"""Standard Webhooks signing (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``.

The key is the base64 part of a ``whsec_`` secret, decoded. The same message id is kept across
retries (receivers de-duplicate on it); the timestamp and signature are fresh per attempt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid


class SecretError(ValueError):
    """The configured secret is not ``whsec_`` + base64."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret.

    Raises:
        SecretError: when the secret lacks the prefix or is not base64.
    """
    if not secret.startswith("whsec_"):
        raise SecretError("the webhook secret must start with 'whsec_' (Standard Webhooks)")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise SecretError("the part of the webhook secret after 'whsec_' is not base64") from exc
    if len(key) < 24:
        raise SecretError("the webhook secret must decode to at least 24 bytes")
    return key


def new_message_id() -> str:
    """A fresh message id (``msg_`` + 32 hex digits)."""
    return f"msg_{uuid.uuid4().hex}"


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one message.

    Example: ``sign(key, "msg_1", 1700000000, b"{}")`` → ``"v1,<44 base64 characters>"``.
    """
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    key: bytes, msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for a body, timestamped now."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }
