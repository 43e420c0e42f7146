"""HubSpot removals and e-mail opt-outs: batch read and archive, GDPR delete, subscriptions (v3).

Endpoints, answering as HubSpot does:

- ``POST /crm/v3/objects/contacts/batch/read`` ``{idProperty?, properties?, inputs:[{id}]}``
  (≤ 100): 200, or 207 with an ``OBJECT_NOT_FOUND`` error naming the ids it does not know.
- ``POST /crm/v3/objects/contacts/batch/archive`` ``{inputs:[{id}]}`` (≤ 100): 204 whatever the
  state of each id (live, archived already, unknown); archived contacts leave lists and reads.
- ``POST /crm/v3/objects/contacts/gdpr-delete`` ``{objectId, idProperty?}``: 204; the contact
  is gone for good and, with ``idProperty: email``, the address is blocklisted (even when no
  contact had it): a later upsert of it fails its item.
- ``GET /communication-preferences/v3/definitions``: the subscription types.
- ``POST /communication-preferences/v3/unsubscribe`` ``{emailAddress, subscriptionId,
  legalBasis?, legalBasisExplanation?}``: 200 with the status ``NOT_SUBSCRIBED``; 400 for an
  unknown subscription or an address already unsubscribed from it. Unsubscribed from every
  type, the contact's ``hs_email_optout`` becomes ``"true"``. v3 has no re-subscribe.
- ``GET /communication-preferences/v3/status/email/{emailAddress}``: each type's status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox import hubspot_records as records
from connectors.sandbox.hubspot_http import error, present, requested_properties
from connectors.sandbox.routing import Request, Response, Router, empty_response, json_response
from connectors.sandbox.times import rfc3339_ms

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()

DEFINITIONS: tuple[dict[str, Any], ...] = (
    {"id": "7410001", "name": "Marketing Information",
     "description": "Marketing offers and updates.", "isDefault": True},
    {"id": "7410002", "name": "Customer Service Communication",
     "description": "Feedback requests and service updates.", "isDefault": False},
)  # fmt: skip
_LEGAL_BASES = (
    "LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT", "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE", "NON_GDPR", "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER",
)  # fmt: skip


def _state(ctx: Context) -> dict[str, Any]:
    hubspot: dict[str, Any] = ctx.state.setdefault("hubspot", {})
    hubspot.setdefault("blocklist", set())
    hubspot.setdefault("unsubscribed", {})
    return hubspot


def is_blocklisted(ctx: Context, email: str) -> bool:
    """Whether a GDPR delete blocked ``email`` from being used again."""
    return email.strip().lower() in _state(ctx)["blocklist"]


def _inputs(request: Request, limit: int) -> list[str] | Response:
    body = request.json()
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return error(400, "VALIDATION_ERROR", "inputs must be a non-empty array")
    if len(inputs) > limit:
        return error(400, "VALIDATION_ERROR",
                     f"Batch size {len(inputs)} exceeds the limit of {limit} inputs")  # fmt: skip
    ids = [i.get("id") for i in inputs if isinstance(i, dict)]
    if len(ids) != len(inputs) or not all(isinstance(i, str) and i for i in ids):
        return error(400, "VALIDATION_ERROR", "each input needs a string id")
    return [str(i) for i in ids]


def _row(ctx: Context, ident: str, id_property: str | None) -> int | None:
    table = ctx.world.tables["hubspot.contacts"]
    if id_property == "email":
        row = records.email_index(ctx.world).get(ident.strip().lower())
    else:
        row = records.contact_row(ident)
    return row if row is not None and table.is_live(row) else None


def _archive(ctx: Context, row: int) -> None:
    table = ctx.world.tables["hubspot.contacts"]
    email = table.body(row)["properties"].get("email")
    table.columns["deleted"][row] = 1
    table.touch(row, ctx.world.clock.now_ms())
    if email:
        records.email_index(ctx.world).pop(str(email).lower(), None)
    for entry in (ctx.state.get("hubspot") or {}).get("lists", {}).values():
        entry["members"].pop(row, None)


@router.route("POST", "/crm/v3/objects/contacts/batch/read")
def batch_read(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Contacts by record id or by ``idProperty``; unknown ids come back as a 207 error."""
    ids = _inputs(request, ctx.config.page_limits.hubspot_batch)
    if isinstance(ids, Response):
        return ids
    body = request.json()
    id_property = body.get("idProperty")
    if id_property not in (None, "email", "hs_object_id"):
        return error(400, "VALIDATION_ERROR", f"{id_property!r} is not a unique property")
    table = ctx.world.tables["hubspot.contacts"]
    properties = requested_properties(body.get("properties"))
    results, missing = [], []
    for ident in ids:
        row = _row(ctx, ident, "email" if id_property == "email" else None)
        if row is None:
            missing.append(ident)
        else:
            results.append(present(table.body(row), properties))
    now = rfc3339_ms(ctx.world.clock.peek_ms())
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now,
                           "completedAt": now}  # fmt: skip
    if not missing:
        return json_response(200, out)
    out["numErrors"] = 1
    out["errors"] = [{
        "status": "error", "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                   "Check that ids are valid.",
        "context": {"ids": missing},
    }]  # fmt: skip
    return json_response(207, out)


@router.route("POST", "/crm/v3/objects/contacts/batch/archive")
def batch_archive(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Archive contacts by record id: 204 whatever each one's state."""
    ids = _inputs(request, ctx.config.page_limits.hubspot_batch)
    if isinstance(ids, Response):
        return ids
    for ident in ids:
        row = _row(ctx, ident, None)
        if row is not None:
            _archive(ctx, row)
    return empty_response(204)


@router.route("POST", "/crm/v3/objects/contacts/gdpr-delete")
def gdpr_delete(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Delete a contact for good; by e-mail, the address is blocklisted whether found or not."""
    body = request.json()
    ident = body.get("objectId") if isinstance(body, dict) else None
    id_property = body.get("idProperty") if isinstance(body, dict) else None
    if not isinstance(ident, str) or not ident:
        return error(400, "VALIDATION_ERROR", "objectId is required")
    row = _row(ctx, ident, id_property)
    table = ctx.world.tables["hubspot.contacts"]
    email = ident if id_property == "email" else None
    if row is not None:
        email = table.body(row)["properties"].get("email") or email
        _archive(ctx, row)
        table.store(row, {"id": "", "properties": {}, "archived": True},
                    updated=ctx.world.clock.now_ms())  # fmt: skip
    elif id_property != "email":
        return error(404, "OBJECT_NOT_FOUND", "Object not found. objectId are usually numeric.")
    if email:
        state = _state(ctx)
        state["blocklist"].add(str(email).strip().lower())
        state["unsubscribed"].pop(str(email).strip().lower(), None)
    return empty_response(204)


def _definition_json(definition: dict[str, Any]) -> dict[str, Any]:
    return {**definition, "purpose": "Marketing", "communicationMethod": "Email",
            "isActive": True, "isInternal": False, "createdAt": "2024-01-01T00:00:00.000Z",
            "updatedAt": "2024-01-01T00:00:00.000Z"}  # fmt: skip


@router.route("GET", "/communication-preferences/v3/definitions")
def definitions(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """The portal's subscription types."""
    return json_response(
        200, {"subscriptionDefinitions": [_definition_json(d) for d in DEFINITIONS]}
    )


def _unsubscribed(ctx: Context, email: str) -> set[str]:
    found: set[str] = _state(ctx)["unsubscribed"].setdefault(email.strip().lower(), set())
    row = records.email_index(ctx.world).get(email.strip().lower())
    table = ctx.world.tables["hubspot.contacts"]
    if row is not None and table.body(row)["properties"].get("hs_email_optout") == "true":
        found.update(d["id"] for d in DEFINITIONS)  # opted out of everything before
    return found


def _status(definition: dict[str, Any], unsubscribed: set[str], legal: dict[str, Any]) -> Any:
    subscribed = definition["id"] not in unsubscribed
    return {"id": definition["id"], "name": definition["name"],
            "description": definition["description"],
            "status": "SUBSCRIBED" if subscribed else "NOT_SUBSCRIBED",
            "sourceOfStatus": "SUBSCRIPTION_STATUS", **legal}  # fmt: skip


@router.route("POST", "/communication-preferences/v3/unsubscribe")
def unsubscribe(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Unsubscribe an address from one subscription type (no way back in v3)."""
    body = request.json()
    if not isinstance(body, dict):
        return error(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    email, wanted = body.get("emailAddress"), str(body.get("subscriptionId") or "")
    if not isinstance(email, str) or "@" not in email:
        return error(400, "VALIDATION_ERROR", f"Invalid email address {email!r}")
    definition = next((d for d in DEFINITIONS if d["id"] == wanted), None)
    if definition is None:
        return error(400, "VALIDATION_ERROR", f"Subscription {wanted!r} does not exist")
    legal = {k: body[k] for k in ("legalBasis", "legalBasisExplanation") if body.get(k)}
    if legal.get("legalBasis") not in (None, *_LEGAL_BASES):
        return error(400, "VALIDATION_ERROR", f"Invalid legalBasis {legal['legalBasis']!r}")
    done = _unsubscribed(ctx, email)
    if wanted in done:
        return error(400, "VALIDATION_ERROR",
                     f"{email} is already unsubscribed from subscription {wanted}")  # fmt: skip
    done.add(wanted)
    row = records.email_index(ctx.world).get(email.strip().lower())
    if row is not None and done >= {d["id"] for d in DEFINITIONS}:
        table = ctx.world.tables["hubspot.contacts"]
        contact = table.body(row)
        contact["properties"]["hs_email_optout"] = "true"
        table.store(row, contact, updated=ctx.world.clock.now_ms())
    return json_response(200, _status(definition, done, legal))


@router.route("GET", "/communication-preferences/v3/status/email/{email}")
def status(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Each subscription type's status for an address."""
    done = _unsubscribed(ctx, params["email"])
    return json_response(200, {
        "recipient": params["email"],
        "subscriptionStatuses": [_status(d, done, {}) for d in DEFINITIONS],
    })  # fmt: skip
