"""HubSpot writes: contact batch upsert by e-mail, and the OAuth token endpoint."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from connectors.sandbox import hubspot_records as records
from connectors.sandbox.auth import RefreshError
from connectors.sandbox.hubspot_http import error
from connectors.sandbox.hubspot_privacy import is_blocklisted
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import rfc3339_ms

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()


def _upsert_one(ctx: Context, item: Any, now: int) -> tuple[dict[str, Any], bool]:
    if (
        not isinstance(item, dict)
        or item.get("idProperty") != "email"
        or not isinstance(item.get("id"), str)
    ):
        raise ValueError("each input needs idProperty 'email' and a string id")
    email = item["id"].strip()
    if "@" not in email or "." not in email.rpartition("@")[2]:
        raise ValueError(f"Email address {email} is invalid")
    if is_blocklisted(ctx, email):
        raise ValueError(f"Email address {email} was GDPR-deleted and is blocklisted")
    props = item.get("properties") or {}
    for name, value in props.items():
        if name not in records.ALL_PROPERTIES:
            raise ValueError(f'Property "{name}" does not exist')
        if name in records.READ_ONLY_PROPERTIES:
            raise ValueError(f'Property "{name}" is read-only')
        if value is not None and not isinstance(value, str):
            raise ValueError(f'Property "{name}" must be a string, got {type(value).__name__}')
    table = ctx.world.tables["hubspot.contacts"]
    index = records.email_index(ctx.world)
    row = index.get(email.lower())
    cleaned = {k: (v if v != "" else None) for k, v in props.items()}
    if row is not None:
        body = table.body(row)
        body["properties"].update(cleaned)
        body["properties"]["email"] = email
        table.store(row, body, updated=now)
        return table.body(row), False
    base: dict[str, Any] = {
        "id": "",
        "properties": dict.fromkeys(sorted(records.ALL_PROPERTIES)),
        "archived": False,
    }
    base["properties"].update(cleaned)
    base["properties"]["email"] = email
    row = table.append({"person": -1, "created": now, "updated": now}, base)
    index[email.lower()] = row
    return table.body(row), True


@router.route("POST", "/crm/v3/objects/contacts/batch/upsert")
def batch_upsert(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Create or update up to 100 contacts by e-mail; 207 with ``errors`` when some fail."""
    body = request.json()
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return error(400, "VALIDATION_ERROR", "inputs must be a non-empty array")
    if len(inputs) > ctx.config.page_limits.hubspot_batch:
        return error(
            400,
            "VALIDATION_ERROR",
            f"Batch size {len(inputs)} exceeds the limit of "
            f"{ctx.config.page_limits.hubspot_batch} inputs",
        )
    ids = [str(i.get("id", "")).lower() for i in inputs if isinstance(i, dict)]
    if len(set(ids)) != len(ids):
        return error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
    started = rfc3339_ms(ctx.world.clock.peek_ms())
    results, errors = [], []
    for item in inputs:
        try:
            contact, is_new = _upsert_one(ctx, item, ctx.world.clock.now_ms())
        except ValueError as exc:
            ident = item.get("id") if isinstance(item, dict) else None
            errors.append(
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": str(exc),
                    "context": {"ids": [str(ident)]},
                }
            )
            continue
        results.append({**contact, "new": is_new})
    out: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": rfc3339_ms(ctx.world.clock.peek_ms()),
    }
    if errors:
        out.update(numErrors=len(errors), errors=errors)
        return json_response(207, out)
    return json_response(200, out)


@router.route("POST", "/oauth/v1/token")
def oauth_token(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Refresh an OAuth token (form body); HubSpot refresh tokens do not rotate."""
    form = request.form()
    store = ctx.tokens["hubspot"]
    if not store.check_client(form.get("client_id"), form.get("client_secret")):
        return json_response(
            400,
            {
                "status": "BAD_CLIENT_ID",
                "message": "missing or unknown client id",
                "correlationId": str(uuid.uuid4()),
            },
        )
    if form.get("grant_type") != "refresh_token":
        return json_response(
            400,
            {
                "status": "BAD_GRANT_TYPE",
                "message": "grant_type must be refresh_token",
                "correlationId": str(uuid.uuid4()),
            },
        )
    try:
        issued = store.refresh(form.get("refresh_token"))
    except RefreshError:
        return json_response(
            400,
            {
                "status": "BAD_REFRESH_TOKEN",
                "message": "missing or unknown refresh token",
                "correlationId": str(uuid.uuid4()),
            },
        )
    return json_response(
        200,
        {
            "token_type": "bearer",
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
        },
    )
