"""A webhook receiver (``{base}/webhook/{endpoint}``) that verifies Standard Webhooks signatures.

It plays the part of a customer's server that crm-hub's webhook target posts to, and checks
each delivery the way the Standard Webhooks specification (standardwebhooks.com) tells a
receiver to:

- headers ``webhook-id``, ``webhook-timestamp`` (unix seconds) and ``webhook-signature``
  (space-separated ``v1,<base64>`` entries) must all be present, else 400;
- the signed content is ``{id}.{timestamp}.{raw body}``, signed with HMAC-SHA256 under the
  base64-decoded part of the ``whsec_`` secret; one matching ``v1`` entry is enough, compared in
  constant time; none → 401;
- a timestamp more than 5 minutes from now (either way) is refused (401): replay protection;
- a ``webhook-id`` already accepted is acknowledged (204) and not stored twice: retries are safe;
- the body must be JSON (400 otherwise).

Accepted deliveries are kept (``GET /_sandbox/webhook/deliveries``). Faults and ``/requests``
apply as for any vendor (``vendor: "webhook"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

import orjson

from connectors.sandbox.routing import Request, Response, Router, empty_response, json_response
from connectors.sandbox.vendor import VendorSpec, never_public

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

TOLERANCE_SECONDS = 300
router = Router()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret.

    Raises:
        ValueError: when the part after ``whsec_`` is not base64.
    """
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str, headers: dict[str, str], body: bytes, now: float | None = None
) -> str | None:
    """Check a delivery's headers against its raw body; ``None`` when valid, else the reason."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return "missing webhook-id, webhook-timestamp or webhook-signature header"
    if not timestamp.isdigit():
        return f"webhook-timestamp must be unix seconds, got {timestamp!r}"
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > TOLERANCE_SECONDS:
        return "webhook-timestamp is more than 5 minutes from now"
    wanted = expected_signature(secret, msg_id, timestamp, body).encode("ascii")
    for entry in signatures.split():
        if entry.startswith("v1,") and hmac.compare_digest(
            wanted, entry.encode("ascii", "replace")
        ):
            return None
    return "no webhook-signature entry matches"


def _state(ctx: Context) -> dict[str, Any]:
    return ctx.state.setdefault("webhook", {"deliveries": [], "seen": set()})


def deliveries(ctx: Context, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Accepted deliveries, oldest first (optionally of one endpoint)."""
    found: list[dict[str, Any]] = _state(ctx)["deliveries"]
    return [d for d in found if endpoint is None or d["endpoint"] == endpoint]


@router.route("POST", "/{endpoint}")
def receive(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Verify and keep one delivery."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    problem = verify(ctx.config.webhook_secret, headers, request.body)
    if problem is not None:
        status = 400 if problem.startswith(("missing", "webhook-timestamp must")) else 401
        return json_response(status, {"error": "invalid signature", "detail": problem})
    try:
        payload = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return json_response(400, {"error": "invalid body", "detail": "body is not JSON"})
    state = _state(ctx)
    msg_id = headers["webhook-id"]
    if msg_id not in state["seen"]:
        state["seen"].add(msg_id)
        state["deliveries"].append(
            {
                "endpoint": params["endpoint"],
                "webhook_id": msg_id,
                "timestamp": int(headers["webhook-timestamp"]),
                "payload": payload,
            }
        )
    return empty_response(204)


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


SPEC = VendorSpec(
    name="webhook",
    router=router,
    authenticate=lambda ctx, request: "ok",  # the signature is checked by the endpoint
    is_public=never_public,
    unauthorized=lambda request, state: _error(401, "unauthorized"),
    throttled=lambda request, wait: _error(429, "too many requests"),
    server_error=lambda request, status: _error(status, "receiver unavailable"),
    not_found=lambda request, known: _error(405 if known else 404, "no such endpoint"),
    bad_request=lambda request, message: _error(400, message),
)
