"""Mailchimp writes: member upsert (single and batch), tags, static segments, compliance rules.

Rules emulated: a new member needs ``status`` or ``status_if_new``; an unsubscribed or cleaned
member can only be moved to ``pending`` (re-opt-in), never straight back to ``subscribed``
("Member In Compliance State"); a permanently deleted address cannot be re-added ("Forgotten
Email Not Subscribed"); in a batch without ``update_existing`` an existing member is an error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from connectors.sandbox import ids
from connectors.sandbox import mailchimp_records as records
from connectors.sandbox.times import iso_seconds_offset
from connectors.sandbox.world import MAILCHIMP_STATUSES

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


class MemberError(Exception):
    """A write refused by Mailchimp's rules.

    Attributes:
        status: HTTP status of the single-member endpoint.
        title: RFC 7807 title (``Member In Compliance State``...).
        detail: human message.
        code: batch ``error_code``.
        field: offending field, if any.
    """

    def __init__(
        self, status: int, title: str, detail: str, code: str = "ERROR_GENERIC", field: str = ""
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.field = field


def _state(ctx: Context) -> dict[str, Any]:
    return ctx.state.setdefault("mailchimp", {"forgotten": {}, "segments": {}, "next_segment": 1})


def resolve_row(ctx: Context, list_index: int, key: str) -> int | None:
    """Row of a member addressed by subscriber hash or e-mail, or ``None``."""
    subscriber = records.subscriber_hash(key) if "@" in key else key.lower()
    return records.email_index(ctx.world, list_index).get(subscriber)


def _tag_entry(name: str) -> dict[str, Any]:
    return {"id": int(ids.hex_id(0, "mailchimp.tag", name, 6), 16) % 100_000, "name": name}


def upsert_member(
    ctx: Context, list_index: int, key: str, payload: dict[str, Any], *, allow_update: bool = True
) -> tuple[dict[str, Any], bool]:
    """Create or update a member the way ``PUT /lists/{id}/members/{hash}`` does.

    Args:
        ctx: the sandbox context.
        list_index: which audience.
        key: subscriber hash or e-mail from the path (batch: the e-mail).
        payload: the request body for this member.
        allow_update: ``False`` makes an existing member an error (batch without update_existing).

    Returns:
        ``(member body, created)``.

    Raises:
        MemberError: when Mailchimp would refuse the write.
    """
    world = ctx.world
    table = world.tables["mailchimp.members"]
    email = str(payload.get("email_address") or (key if "@" in key else "")).strip()
    subscriber = records.subscriber_hash(email) if email else key.lower()
    if "@" not in key and email and subscriber != key.lower():
        raise MemberError(
            400,
            "Invalid Resource",
            "The subscriber hash in the URL does not match email_address.",
            field="email_address",
        )
    forgotten = _state(ctx)["forgotten"].setdefault(list_index, set())
    if subscriber in forgotten:
        raise MemberError(
            400,
            "Forgotten Email Not Subscribed",
            f"{email or key} was permanently deleted and cannot be re-imported. "
            "The contact must re-subscribe to get back on the list.",
        )
    status = payload.get("status")
    if status is not None and status not in _WRITABLE_STATUSES:
        raise MemberError(400, "Invalid Resource", f"Invalid status {status!r}.", field="status")
    row = records.email_index(world, list_index).get(subscriber)
    now = world.clock.now_ms()
    if row is not None:
        if not allow_update:
            raise MemberError(
                400,
                "Member Exists",
                f"{email} is already a list member.",
                code="ERROR_CONTACT_EXISTS",
            )
        current = (
            "archived"
            if table.get("deleted", row)
            else MAILCHIMP_STATUSES[table.get("status", row)]
        )
        if current in ("unsubscribed", "cleaned") and status == "subscribed":
            raise MemberError(
                400,
                "Member In Compliance State",
                f"{email} is already a list member in compliance state due to unsubscribe, "
                "bounce, or compliance review and cannot be subscribed.",
            )
        body = table.body(row)
        _apply(body, payload)
        if status is not None:
            table.columns["status"][row] = MAILCHIMP_STATUSES.index(status)
            table.columns["deleted"][row] = 0
        elif current == "archived":
            new_status = payload.get("status_if_new") or "subscribed"
            table.columns["status"][row] = MAILCHIMP_STATUSES.index(new_status)
            table.columns["deleted"][row] = 0
        table.store(row, body, updated=now)
        return table.body(row), False
    new_status = status or payload.get("status_if_new")
    if not email:
        raise MemberError(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated.",
            field="email_address",
        )
    if new_status is None:
        raise MemberError(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. "
            "For field-specific details, see the 'errors' array.",
            field="status_if_new",
        )
    if new_status not in _WRITABLE_STATUSES:
        raise MemberError(
            400, "Invalid Resource", f"Invalid status {new_status!r}.", field="status_if_new"
        )
    if not _EMAIL.match(email):
        raise MemberError(
            400,
            "Invalid Resource",
            f"{email} looks fake or invalid, please enter a real email address.",
            field="email_address",
        )
    new_row = len(table)
    fresh: dict[str, Any] = {
        "id": subscriber,
        "email_address": email,
        "unique_email_id": ids.hex_id(world.seed, "mailchimp.ueid", new_row, 10),
        "contact_id": ids.hex_id(world.seed, "mailchimp.contact", new_row, 32),
        "full_name": "",
        "web_id": 100_000 + new_row,
        "email_type": "html",
        "merge_fields": {"FNAME": "", "LNAME": "", "ADDRESS": "", "PHONE": "", "BIRTHDAY": ""},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
        "ip_signup": "",
        "timestamp_signup": "",
        "ip_opt": "",
        "timestamp_opt": iso_seconds_offset(now),
        "member_rating": 2,
        "language": "",
        "vip": False,
        "email_client": "",
        "source": "API - Generic",
        "tags_count": 0,
        "tags": [],
        "list_id": records.list_id(world, list_index),
    }
    _apply(fresh, payload)
    row = table.append(
        {
            "person": -1,
            "list": list_index,
            "status": MAILCHIMP_STATUSES.index(new_status),
            "created": now,
            "updated": now,
        },
        fresh,
    )
    records.email_index(world, list_index)[subscriber] = row
    return table.body(row), True


def _apply(body: dict[str, Any], payload: dict[str, Any]) -> None:
    merge = payload.get("merge_fields")
    if isinstance(merge, dict):
        body["merge_fields"].update(merge)
        fields = body["merge_fields"]
        body["full_name"] = f"{fields.get('FNAME', '')} {fields.get('LNAME', '')}".strip()
    for key in ("email_type", "language", "vip"):
        if key in payload:
            body[key] = payload[key]
    tags = payload.get("tags")
    if isinstance(tags, list) and tags:
        names = {t["name"] for t in body["tags"]}
        body["tags"] += [_tag_entry(str(t)) for t in tags if str(t) not in names]
        body["tags_count"] = len(body["tags"])


def set_tags(ctx: Context, list_index: int, row: int, tags: list[dict[str, Any]]) -> None:
    """Add (``status: active``) or remove (``inactive``) tags; unknown tags are created."""
    table = ctx.world.tables["mailchimp.members"]
    body = table.body(row)
    current = {t["name"]: t for t in body["tags"]}
    for tag in tags:
        name = str(tag.get("name", "")).strip()
        if not name:
            continue
        if tag.get("status", "active") == "inactive":
            current.pop(name, None)
        else:
            current.setdefault(name, _tag_entry(name))
    body["tags"] = list(current.values())
    body["tags_count"] = len(body["tags"])
    table.store(row, body, updated=ctx.world.clock.now_ms())


def archive(ctx: Context, row: int) -> None:
    """``DELETE`` a member: it stays, with status archived."""
    table = ctx.world.tables["mailchimp.members"]
    table.columns["deleted"][row] = 1
    table.touch(row, ctx.world.clock.now_ms())


def delete_permanent(ctx: Context, list_index: int, row: int) -> None:
    """Erase a member for good: its address can never be re-added."""
    subscriber = records.subscriber_hash(records.member_email(ctx.world, row))
    _state(ctx)["forgotten"].setdefault(list_index, set()).add(subscriber)
    archive(ctx, row)
    records.email_index(ctx.world, list_index).pop(subscriber, None)


def segments(ctx: Context, list_index: int) -> dict[int, dict[str, Any]]:
    """Static segments of an audience by id."""
    found: dict[int, dict[str, Any]] = _state(ctx)["segments"].setdefault(list_index, {})
    return found


def create_segment(ctx: Context, list_index: int, name: str, emails: list[str]) -> dict[str, Any]:
    """Create a static segment with the given members (addresses not on the list are ignored)."""
    state = _state(ctx)
    segment_id = state["next_segment"]
    state["next_segment"] += 1
    now = iso_seconds_offset(ctx.world.clock.now_ms())
    segment = {
        "id": segment_id,
        "name": name,
        "type": "static",
        "created_at": now,
        "updated_at": now,
        "members": set(),
    }
    segments(ctx, list_index)[segment_id] = segment
    change_segment(ctx, list_index, segment, emails, [])
    return segment


def change_segment(
    ctx: Context, list_index: int, segment: dict[str, Any], add: list[str], remove: list[str]
) -> tuple[list[int], list[int]]:
    """Add and remove members by e-mail; returns the rows added and removed."""
    added, removed = [], []
    for email in add:
        row = resolve_row(ctx, list_index, str(email))
        if row is not None and row not in segment["members"]:
            segment["members"].add(row)
            added.append(row)
    for email in remove:
        row = resolve_row(ctx, list_index, str(email))
        if row is not None and row in segment["members"]:
            segment["members"].discard(row)
            removed.append(row)
    segment["updated_at"] = iso_seconds_offset(ctx.world.clock.now_ms())
    return added, removed


def segment_json(ctx: Context, list_index: int, segment: dict[str, Any]) -> dict[str, Any]:
    """A segment as the API shows it."""
    return {
        "id": segment["id"],
        "name": segment["name"],
        "member_count": len(segment["members"]),
        "type": "static",
        "created_at": segment["created_at"],
        "updated_at": segment["updated_at"],
        "list_id": records.list_id(ctx.world, list_index),
    }
