"""HubSpot lists (v3): create a manual list, add and remove contacts, read memberships.

Endpoints: ``POST /crm/v3/lists``, ``GET /crm/v3/lists/{listId}``,
``PUT /crm/v3/lists/{listId}/memberships/add`` (array of record ids),
``PUT .../memberships/remove``, ``PUT .../memberships/add-and-remove``,
``GET .../memberships`` (``limit`` ≤ 250, ``after``). Only MANUAL and SNAPSHOT lists take
manual membership changes; ids that are not contacts come back as ``recordIdsMissing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox import hubspot_records as records
from connectors.sandbox.hubspot_http import error
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import rfc3339_ms

if TYPE_CHECKING:
    from connectors.sandbox.app import Context


def _lists(ctx: Context) -> dict[str, dict[str, Any]]:
    lists: dict[str, dict[str, Any]] = ctx.state.setdefault("hubspot", {}).setdefault("lists", {})
    return lists


def _list_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "members"} | {"size": len(entry["members"])}


router = Router()


def _found(ctx: Context, list_id: str) -> dict[str, Any] | Response:
    entry = _lists(ctx).get(list_id)
    return (
        entry
        if entry is not None
        else error(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist.")
    )


def _change(
    ctx: Context, entry: dict[str, Any], add: list[Any], remove: list[Any]
) -> dict[str, list[str]]:
    table = ctx.world.tables["hubspot.contacts"]
    now = ctx.world.clock.now_ms()
    added, removed, missing = [], [], []
    for raw in add:
        row = records.contact_row(str(raw))
        if row is None or not table.is_live(row):
            missing.append(str(raw))
        elif row not in entry["members"]:
            entry["members"][row] = now
            added.append(str(raw))
    for raw in remove:
        row = records.contact_row(str(raw))
        if row is None or row not in entry["members"]:
            missing.append(str(raw))
        else:
            del entry["members"][row]
            removed.append(str(raw))
    entry["updatedAt"] = rfc3339_ms(now)
    entry["listVersion"] += 1
    return {"recordIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}


def _manual(entry: dict[str, Any]) -> Response | None:
    if entry["processingType"] == "DYNAMIC":
        return error(
            400, "VALIDATION_ERROR", "Memberships of a DYNAMIC list cannot be changed manually."
        )
    return None


@router.route("POST", "/crm/v3/lists")
def create_list(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Create a list: ``{name, objectTypeId: "0-1", processingType: MANUAL|SNAPSHOT|DYNAMIC}``."""
    body = request.json()
    if not isinstance(body, dict) or not body.get("name"):
        return error(400, "VALIDATION_ERROR", "name is required")
    if body.get("objectTypeId") != "0-1":
        return error(
            400,
            "VALIDATION_ERROR",
            "The sandbox emulates contact lists only (objectTypeId 0-1).",
        )
    kind = body.get("processingType", "MANUAL")
    if kind not in ("MANUAL", "SNAPSHOT", "DYNAMIC"):
        return error(400, "VALIDATION_ERROR", f"Unknown processingType {kind!r}")
    if kind == "DYNAMIC" and not body.get("filterBranch"):
        return error(400, "VALIDATION_ERROR", "A DYNAMIC list needs a filterBranch.")
    if any(e["name"] == body["name"] for e in _lists(ctx).values()):
        return error(409, "CONFLICT", f"A list named {body['name']!r} already exists.")
    now = rfc3339_ms(ctx.world.clock.now_ms())
    list_id = str(len(_lists(ctx)) + 1)
    entry = {
        "listId": list_id,
        "name": body["name"],
        "objectTypeId": "0-1",
        "processingType": kind,
        "processingStatus": "COMPLETE",
        "listVersion": 1,
        "createdAt": now,
        "updatedAt": now,
        "members": {},
    }
    _lists(ctx)[list_id] = entry
    return json_response(200, {"list": _list_json(entry)})


@router.route("GET", "/crm/v3/lists/{list_id}")
def get_list(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """One list with its size."""
    entry = _found(ctx, params["list_id"])
    return entry if isinstance(entry, Response) else json_response(200, {"list": _list_json(entry)})


def _add_or_remove(ctx: Context, request: Request, list_id: str, adding: bool) -> Response:
    """Shared body of memberships/add and memberships/remove (a JSON array of record ids)."""
    entry = _found(ctx, list_id)
    if isinstance(entry, Response):
        return entry
    ids = request.json()
    if not isinstance(ids, list):
        return error(400, "VALIDATION_ERROR", "Body must be an array of record ids")
    refused = _manual(entry)
    if refused is not None:
        return refused
    result = _change(ctx, entry, ids if adding else [], [] if adding else ids)
    done = "recordIdsAdded" if adding else "recordIdsRemoved"
    return json_response(200, {done: result[done], "recordIdsMissing": result["recordIdsMissing"]})


@router.route("PUT", "/crm/v3/lists/{list_id}/memberships/add")
def add(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Add record ids (JSON array)."""
    return _add_or_remove(ctx, request, params["list_id"], adding=True)


@router.route("PUT", "/crm/v3/lists/{list_id}/memberships/remove")
def remove(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Remove record ids (JSON array)."""
    return _add_or_remove(ctx, request, params["list_id"], adding=False)


@router.route("PUT", "/crm/v3/lists/{list_id}/memberships/add-and-remove")
def add_and_remove(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``{recordIdsToAdd, recordIdsToRemove}``."""
    entry = _found(ctx, params["list_id"])
    if isinstance(entry, Response):
        return entry
    body = request.json()
    if not isinstance(body, dict):
        return error(400, "VALIDATION_ERROR", "Body must be an object")
    refused = _manual(entry)
    if refused is not None:
        return refused
    return json_response(
        200,
        _change(ctx, entry, body.get("recordIdsToAdd") or [], body.get("recordIdsToRemove") or []),
    )


@router.route("GET", "/crm/v3/lists/{list_id}/memberships")
def memberships(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Members in record-id order, ``limit`` ≤ 250, ``after`` = last record id seen."""
    entry = _found(ctx, params["list_id"])
    if isinstance(entry, Response):
        return entry
    raw_limit = request.arg("limit", "100") or "100"
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 250:
        return error(400, "VALIDATION_ERROR", "limit must be between 1 and 250")
    after = request.arg("after")
    rows = sorted(entry["members"])
    if after:
        start_row = records.contact_row(after)
        rows = [r for r in rows if start_row is None or r > start_row]
    page = [] if request.empty_page else rows[: int(raw_limit)]
    out: dict[str, Any] = {
        "results": [
            {
                "recordId": records.contact_id(r),
                "membershipTimestamp": rfc3339_ms(entry["members"][r]),
            }
            for r in page
        ]
    }
    if request.empty_page and rows:
        out["paging"] = {"next": {"after": after or "0"}}  # resume where this empty page was
    elif len(rows) > len(page) and page:
        out["paging"] = {"next": {"after": records.contact_id(page[-1])}}
    return json_response(200, out)
