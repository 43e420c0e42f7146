"""Mailchimp's way of speaking HTTP: RFC 7807 problems and argument checks shared by endpoints."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from connectors.sandbox import mailchimp_records as records
from connectors.sandbox import mailchimp_writes as writes
from connectors.sandbox.routing import Request, Response, json_response

if TYPE_CHECKING:
    from connectors.sandbox.app import Context


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> Response:
    """Mailchimp's RFC 7807 error body."""
    payload: dict[str, Any] = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        payload["errors"] = errors
    return json_response(status, payload, content_type="application/problem+json")


def from_error(exc: writes.MemberError) -> Response:
    """The problem document of a refused member write."""
    errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
    return problem(exc.status, exc.title, exc.detail, errors)


def not_found() -> Response:
    """Mailchimp's 404 problem."""
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def int_arg(
    request: Request, name: str, default: int, maximum: int | None = None
) -> int | Response:
    """A non-negative integer query argument (at most ``maximum``), or a 400 problem."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return problem(
            400, "Invalid Resource", f"The {name} parameter must be an integer, got {raw!r}."
        )
    if value < 0 or (maximum is not None and value > maximum):
        return problem(
            400,
            "Invalid Resource",
            f"The {name} parameter must be between 0 and {maximum}, got {value}.",
        )
    return value


def list_index(ctx: Context, list_id: str) -> int | None:
    """Audience index of a list id, or ``None``."""
    return records.list_index(ctx.world, list_id)


def member_row(ctx: Context, params: dict[str, str]) -> tuple[int, int] | Response:
    """``(audience index, row)`` of the member a path names, or a 404 problem."""
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    row = writes.resolve_row(ctx, index, params["subscriber_hash"])
    if row is None:
        return not_found()
    return index, row
