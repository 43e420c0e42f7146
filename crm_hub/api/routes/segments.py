"""``/segments/{name}/members``: who is in a segment, since when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from crm_hub.api.audit import record_reads
from crm_hub.api.deps import Auth, Ctx
from crm_hub.api.history import segment_exists, segment_members
from crm_hub.api.models import MemberPage
from crm_hub.api.paging import clamp_limit, decode_cursor
from crm_hub.api.problems import Problem, reject_control_characters
from crm_hub.api.respond import page_response
from crm_hub.api.routes.customers import _ERRORS, Cursor, Limit

__all__ = ["router"]

router = APIRouter(prefix="/segments", tags=["segments"], responses=_ERRORS)


@router.get(
    "/{name}/members",
    summary="A segment's members with the time each entered",
    response_model=MemberPage,
)
def get_members(
    context: Ctx,
    principal: Auth,
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=128, description="Segment name.")],
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    """Members this token may read (its branch's customers), ordered by master id."""
    size = clamp_limit(limit, context.default_page_size, context.max_page_size)
    reject_control_characters("path.name", name)
    scope = f"members\x1f{name}"
    after = decode_cursor(cursor, scope, 1)
    with context.store.read() as conn:
        if not segment_exists(conn, name):
            raise Problem(404, "not-found", f"no segment {name!r}; see segments.yaml")
        items, next_key = segment_members(conn, principal, name, after, size)
    record_reads(
        context.store, principal, action="segment_members", path=request.url.path, status=200,
        master_ids=[item["master_id"] for item in items] or [None],
    )  # fmt: skip
    return page_response(scope, items, next_key, size)
