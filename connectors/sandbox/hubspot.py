"""HubSpot CRM v3 emulation (``{base}/hubspot/...``): contacts and lists.

Endpoints: ``GET /crm/v3/objects/contacts`` (``limit`` ≤ 100, ``after``, ``properties``,
``archived``), ``GET /crm/v3/objects/contacts/{id}`` (``idProperty=email`` too),
``POST /crm/v3/objects/contacts/search`` (``limit`` ≤ 200, results stop at 10 000, about 5
searches a second), ``POST /crm/v3/objects/contacts/batch/upsert`` (≤ 100 inputs,
``idProperty: email``, 207 on partial failure, property values must be strings), the lists
endpoints of ``hubspot_lists``, batch read/archive, GDPR delete and e-mail subscriptions of
``hubspot_privacy``, ``POST /oauth/v1/token``. Bearer auth; errors ``{status,
message, correlationId, category}``; 429 with ``policyName``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import hubspot_lists, hubspot_privacy, hubspot_writes
from connectors.sandbox import hubspot_records as records
from connectors.sandbox.auth import TokenState, bearer_token
from connectors.sandbox.hubspot_http import (
    SearchError,
    error,
    limit_arg,
    present,
    requested_properties,
)
from connectors.sandbox.paging import query_hash
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import parse_instant
from connectors.sandbox.vendor import VendorSpec

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()
router.include(hubspot_writes.router)
router.include(hubspot_lists.router)
router.include(hubspot_privacy.router)
_COLUMN_PROPERTIES = {"lastmodifieddate": "updated", "createdate": "created", "hs_object_id": "row"}
_OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
)


@router.route("GET", "/crm/v3/objects/contacts")
def list_contacts(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Contacts by id ascending; ``paging.next.after`` is the id to continue from."""
    limit = limit_arg(request.arg("limit"), 10, ctx.config.page_limits.hubspot_list)
    if isinstance(limit, Response):
        return limit
    archived = (request.arg("archived", "false") or "false").lower() == "true"
    table = ctx.world.tables["hubspot.contacts"]
    view = table.view(
        "row",
        filter_key=("archived", archived),
        mask=lambda: table.col("deleted") == (1 if archived else 0),
    )
    after = request.arg("after")
    if after is not None and not after.isdigit():
        return error(
            400,
            "VALIDATION_ERROR",
            f"after must be a paging token returned by a previous call, got {after!r}",
        )
    start, end = view.bounds(records.contact_row(after) if after else None)
    stop = start if request.empty_page else min(end, start + limit)
    properties = requested_properties(request.query.get("properties"))
    results = [present(table.body(r), properties) for r in view.rows[start:stop].tolist()]
    out: dict[str, Any] = {"results": results}
    if stop < end:
        token = records.contact_id(int(view.rows[stop]))
        out["paging"] = {
            "next": {
                "after": token,
                "link": f"{ctx.vendor_url('hubspot')}/crm/v3/objects/contacts?after={token}",
            }
        }
    return json_response(200, out)


@router.route("GET", "/crm/v3/objects/contacts/{contact_id}")
def get_contact(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """One contact by record id, or by e-mail with ``idProperty=email``."""
    table = ctx.world.tables["hubspot.contacts"]
    if request.arg("idProperty") == "email":
        row = records.email_index(ctx.world).get(params["contact_id"].lower())
    else:
        row = records.contact_row(params["contact_id"])
    if row is None or not table.is_live(row):
        return error(404, "OBJECT_NOT_FOUND", "resource not found")
    return json_response(
        200, present(table.body(row), requested_properties(request.query.get("properties")))
    )


def _filter_value(name: str, raw: Any) -> int:
    text = str(raw)
    if name == "hs_object_id":
        return int(text) - 1001
    return int(text) if text.lstrip("-").isdigit() else parse_instant(text)


def _filter_mask(ctx: Context, flt: dict[str, Any]) -> np.ndarray:
    table = ctx.world.tables["hubspot.contacts"]
    name, op = flt.get("propertyName"), flt.get("operator", "EQ")
    if op not in _OPERATORS:
        raise SearchError(f"Unknown operator {op!r}; allowed: {', '.join(_OPERATORS)}")
    if name == "email" and op in ("EQ", "IN"):
        index = records.email_index(ctx.world)
        values = flt.get("values") if op == "IN" else [flt.get("value")]
        rows = [index[str(v).lower()] for v in values or [] if str(v).lower() in index]
        return np.isin(np.arange(len(table)), rows)
    if name not in _COLUMN_PROPERTIES:
        raise SearchError(
            f"The sandbox filters on {sorted(_COLUMN_PROPERTIES)} and email (EQ/IN), not {name!r}"
        )
    column = (
        np.arange(len(table))
        if _COLUMN_PROPERTIES[name] == "row"
        else table.col(_COLUMN_PROPERTIES[name])
    )
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return np.full(len(table), op == "HAS_PROPERTY")
    try:
        if op == "IN":
            return np.isin(column, [_filter_value(name, v) for v in flt.get("values") or []])
        value = _filter_value(name, flt.get("value"))
        if op == "BETWEEN":
            return (column >= value) & (column <= _filter_value(name, flt.get("highValue")))
    except ValueError as exc:
        raise SearchError(f"Invalid value for {name}: {exc}") from None
    compare = {
        "EQ": np.equal,
        "NEQ": np.not_equal,
        "LT": np.less,
        "LTE": np.less_equal,
        "GT": np.greater,
        "GTE": np.greater_equal,
    }
    return np.asarray(compare[op](column, value), dtype=bool)


@router.route("POST", "/crm/v3/objects/contacts/search")
def search_contacts(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Search: filter groups (OR of ANDs), one sort, offset ``after``; stops at 10 000."""
    wait = ctx.extra_limit("hubspot.search")
    if wait > 0:
        return _throttled(request, wait, policy="SECONDLY")
    body = request.json()
    if not isinstance(body, dict):
        return error(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    limits = ctx.config.page_limits
    limit = limit_arg(body.get("limit"), 10, limits.hubspot_search)
    if isinstance(limit, Response):
        return limit
    after = str(body.get("after") or "0")
    if not after.isdigit():
        return error(
            400,
            "VALIDATION_ERROR",
            f"after must be a paging token returned by a previous search, got {after!r}",
        )
    offset = int(after)
    if offset >= limits.hubspot_search_total:
        return error(
            400,
            "VALIDATION_ERROR",
            f"Search results are limited to {limits.hubspot_search_total}; "
            "narrow the query instead of paging further.",
        )
    if body.get("query"):
        return error(
            400,
            "VALIDATION_ERROR",
            "The sandbox does not emulate full-text 'query' search; use filterGroups.",
        )
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
        return error(
            400, "VALIDATION_ERROR", "At most 5 filterGroups with 6 filters each are allowed."
        )
    sorts = body.get("sorts") or []
    sort = sorts[0] if sorts else {"propertyName": "hs_object_id", "direction": "ASCENDING"}
    if isinstance(sort, str):
        sort = {
            "propertyName": sort.lstrip("-"),
            "direction": "DESCENDING" if sort.startswith("-") else "ASCENDING",
        }
    if sort.get("propertyName") not in _COLUMN_PROPERTIES:
        return error(
            400, "VALIDATION_ERROR", f"The sandbox sorts on {sorted(_COLUMN_PROPERTIES)} only."
        )
    table = ctx.world.tables["hubspot.contacts"]

    def mask() -> np.ndarray:
        live: np.ndarray = table.col("deleted") == 0
        if not groups:
            return live
        any_group = np.zeros(len(table), dtype=bool)
        for group in groups:
            selected = live.copy()
            for flt in group.get("filters") or []:
                selected &= _filter_mask(ctx, flt)
            any_group |= selected
        return any_group

    try:
        view = table.view(
            _COLUMN_PROPERTIES[sort["propertyName"]],
            desc=sort.get("direction") == "DESCENDING",
            filter_key=("search", query_hash([groups, sort])),
            mask=mask,
        )
    except SearchError as exc:
        return error(400, "VALIDATION_ERROR", str(exc))
    stop = offset if request.empty_page else min(len(view), offset + limit)
    properties = requested_properties(body.get("properties"))
    results = [present(table.body(r), properties) for r in view.rows[offset:stop].tolist()]
    out: dict[str, Any] = {"total": len(view), "results": results}
    next_offset = offset + limit if not request.empty_page else offset
    if next_offset < len(view):
        out["paging"] = {"next": {"after": str(next_offset)}}
    return json_response(200, out)


def _authenticate(ctx: Context, request: Request) -> TokenState:
    return ctx.tokens["hubspot"].check(bearer_token(request.header("authorization")))


def _unauthorized(request: Request, state: TokenState) -> Response:
    if state == "expired":
        return error(
            401,
            "EXPIRED_AUTHENTICATION",
            "The OAuth token used to make this call expired 0 second(s) ago.",
        )
    message = (
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more "
        "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
    )
    return error(401, "INVALID_AUTHENTICATION", message)


def _throttled(
    request: Request, wait: float | None, policy: str = "TEN_SECONDLY_ROLLING"
) -> Response:
    return json_response(
        429,
        {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": "publicapi:private-app-api-calls:sandbox",
        },
    )


SPEC = VendorSpec(
    name="hubspot",
    router=router,
    authenticate=_authenticate,
    is_public=lambda request: request.path == "/oauth/v1/token",
    unauthorized=_unauthorized,
    throttled=_throttled,
    server_error=lambda request, status: error(
        status, "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE", "internal error"
    ),
    not_found=lambda request, known: error(
        405 if known else 404,
        "OBJECT_NOT_FOUND" if not known else "VALIDATION_ERROR",
        "Unable to route request" if not known else "Method not allowed",
    ),
    bad_request=lambda request, message: error(
        400, "VALIDATION_ERROR", f"Invalid input JSON: {message}"
    ),
)
