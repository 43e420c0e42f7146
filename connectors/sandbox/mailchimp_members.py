"""Mailchimp member and segment endpoints: read one, upsert, archive, erase, tags, activity,
batch subscribe, static segments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox import mailchimp_records as records
from connectors.sandbox import mailchimp_writes as writes
from connectors.sandbox.mailchimp_http import (
    from_error,
    int_arg,
    list_index,
    member_row,
    not_found,
    problem,
)
from connectors.sandbox.paging import offset_window
from connectors.sandbox.routing import Request, Response, Router, empty_response, json_response

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()


@router.route("GET", "/3.0/lists/{list_id}/members/{subscriber_hash}")
def get_member(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """One member by hash or e-mail."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    return json_response(200, ctx.world.tables["mailchimp.members"].body(found[1]))


def _upsert(
    ctx: Context, request: Request, params: dict[str, str], *, must_exist: bool
) -> Response:
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    payload = request.json()
    if not isinstance(payload, dict):
        return problem(400, "Invalid Resource", "The request body must be a JSON object.")
    if must_exist and writes.resolve_row(ctx, index, params["subscriber_hash"]) is None:
        return not_found()
    try:
        body, _created = writes.upsert_member(ctx, index, params["subscriber_hash"], payload)
    except writes.MemberError as exc:
        return from_error(exc)
    return json_response(200, body)


@router.route("PUT", "/3.0/lists/{list_id}/members/{subscriber_hash}")
def put_member(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Add or update a member (``status_if_new`` required for a new one)."""
    return _upsert(ctx, request, params, must_exist=False)


@router.route("PATCH", "/3.0/lists/{list_id}/members/{subscriber_hash}")
def patch_member(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Update an existing member."""
    return _upsert(ctx, request, params, must_exist=True)


@router.route("DELETE", "/3.0/lists/{list_id}/members/{subscriber_hash}")
def delete_member(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Archive a member."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    writes.archive(ctx, found[1])
    return empty_response(204)


@router.route("POST", "/3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent")
def delete_permanent(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Erase a member for good (GDPR): the address can never be re-imported."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    writes.delete_permanent(ctx, found[0], found[1])
    return empty_response(204)


@router.route("GET", "/3.0/lists/{list_id}/members/{subscriber_hash}/tags")
def get_tags(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Tags of a member."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    tags = ctx.world.tables["mailchimp.members"].body(found[1])["tags"]
    return json_response(200, {"tags": tags, "total_items": len(tags)})


@router.route("POST", "/3.0/lists/{list_id}/members/{subscriber_hash}/tags")
def post_tags(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Add or remove tags (``{"tags": [{"name", "status": "active"|"inactive"}]}``) → 204."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    payload = request.json()
    tags = payload.get("tags") if isinstance(payload, dict) else None
    if not isinstance(tags, list):
        return problem(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            [{"field": "tags", "message": "Required field."}],
        )
    writes.set_tags(ctx, found[0], found[1], [t for t in tags if isinstance(t, dict)])
    return empty_response(204)


@router.route("GET", "/3.0/lists/{list_id}/members/{subscriber_hash}/activity-feed")
def activity_feed(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Recent activity of a member, newest first."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    events = records.render_activity(ctx.world, found[1])
    subscriber = records.subscriber_hash(records.member_email(ctx.world, found[1]))
    return json_response(
        200,
        {
            "activity": events,
            "email_id": subscriber,
            "list_id": params["list_id"],
            "total_items": len(events),
        },
    )


@router.route("GET", "/3.0/lists/{list_id}/members/{subscriber_hash}/activity")
def activity(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Legacy activity endpoint (``action``, ``timestamp``)."""
    found = member_row(ctx, params)
    if isinstance(found, Response):
        return found
    events = [
        {
            "action": e["activity_type"],
            "timestamp": e["created_at_timestamp"],
            "campaign_id": e["campaign_id"],
            "title": e["campaign_title"],
        }
        for e in records.render_activity(ctx.world, found[1])
    ]
    subscriber = records.subscriber_hash(records.member_email(ctx.world, found[1]))
    return json_response(
        200,
        {
            "activity": events,
            "email_id": subscriber,
            "list_id": params["list_id"],
            "total_items": len(events),
        },
    )


@router.route("POST", "/3.0/lists/{list_id}")
def batch_members(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Batch subscribe/update up to 500 members; 200 with per-member errors."""
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    payload = request.json()
    members = payload.get("members") if isinstance(payload, dict) else None
    if not isinstance(members, list):
        return problem(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            [{"field": "members", "message": "Required field."}],
        )
    limit = ctx.config.page_limits.mailchimp_batch
    if len(members) > limit:
        return problem(
            400,
            "Invalid Resource",
            f"You may only send {limit} members per batch, got {len(members)}.",
            [{"field": "members", "message": f"At most {limit} items."}],
        )
    update_existing = bool(payload.get("update_existing"))
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for member in members:
        email = str(member.get("email_address", "")) if isinstance(member, dict) else ""
        try:
            body, is_new = writes.upsert_member(
                ctx, index, email or "-", member, allow_update=update_existing
            )
        except writes.MemberError as exc:
            errors.append(
                {
                    "email_address": email,
                    "error": exc.detail,
                    "error_code": exc.code,
                    "field": exc.field,
                    "field_message": exc.detail if exc.field else "",
                }
            )
            continue
        (created if is_new else updated).append(body)
    return json_response(
        200,
        {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
            "_links": [],
        },
    )


@router.route("GET", "/3.0/lists/{list_id}/segments")
def get_segments(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Static segments of an audience."""
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    found = [writes.segment_json(ctx, index, s) for s in writes.segments(ctx, index).values()]
    return json_response(
        200, {"segments": found, "list_id": params["list_id"], "total_items": len(found)}
    )


@router.route("POST", "/3.0/lists/{list_id}/segments")
def create_segment(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Create a static segment: ``{"name", "static_segment": [emails]}``."""
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    payload = request.json()
    if not isinstance(payload, dict) or not payload.get("name"):
        return problem(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            [{"field": "name", "message": "Required field."}],
        )
    emails = [str(e) for e in payload.get("static_segment") or []]
    segment = writes.create_segment(ctx, index, str(payload["name"]), emails)
    return json_response(200, writes.segment_json(ctx, index, segment))


@router.route("POST", "/3.0/lists/{list_id}/segments/{segment_id}")
def change_segment(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Add/remove members by e-mail (≤ 500 each); addresses not on the list are ignored."""
    index = list_index(ctx, params["list_id"])
    segment = (
        writes.segments(ctx, index).get(int(params["segment_id"]))
        if index is not None and params["segment_id"].isdigit()
        else None
    )
    if index is None or segment is None:
        return not_found()
    payload = request.json()
    add = payload.get("members_to_add") or [] if isinstance(payload, dict) else []
    remove = payload.get("members_to_remove") or [] if isinstance(payload, dict) else []
    limit = ctx.config.page_limits.mailchimp_batch
    if len(add) > limit or len(remove) > limit:
        return problem(
            400, "Invalid Resource", f"At most {limit} e-mails may be added or removed per call."
        )
    added, removed = writes.change_segment(
        ctx, index, segment, [str(e) for e in add], [str(e) for e in remove]
    )
    table = ctx.world.tables["mailchimp.members"]
    return json_response(
        200,
        {
            "members_added": [table.body(r) for r in added],
            "members_removed": [table.body(r) for r in removed],
            "errors": [],
            "total_added": len(added),
            "total_removed": len(removed),
            "error_count": 0,
        },
    )


@router.route("GET", "/3.0/lists/{list_id}/segments/{segment_id}/members")
def segment_members(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Members of a static segment (offset paging)."""
    index = list_index(ctx, params["list_id"])
    segment = (
        writes.segments(ctx, index).get(int(params["segment_id"]))
        if index is not None and params["segment_id"].isdigit()
        else None
    )
    if index is None or segment is None:
        return not_found()
    count = int_arg(request, "count", 10, ctx.config.page_limits.mailchimp_count)
    offset = int_arg(request, "offset", 0)
    if isinstance(count, Response) or isinstance(offset, Response):
        return count if isinstance(count, Response) else offset  # type: ignore[return-value]
    rows = sorted(segment["members"])
    start, stop = offset_window(len(rows), offset, count, empty=request.empty_page)
    table = ctx.world.tables["mailchimp.members"]
    return json_response(
        200, {"members": [table.body(r) for r in rows[start:stop]], "total_items": len(rows)}
    )
