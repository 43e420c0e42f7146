"""``/customers``: search, one customer, its orders and its timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from crm_hub.api.audit import record_reads
from crm_hub.api.deps import ApiContext, Auth, Ctx
from crm_hub.api.history import list_orders, list_timeline
from crm_hub.api.lookup import (
    MASTER_ID_PATTERN,
    classify,
    follow_merges,
    load_customer,
    search,
)
from crm_hub.api.models import CustomerOut, CustomerPage, OrderPage, ProblemOut, TimelinePage
from crm_hub.api.paging import clamp_limit, decode_cursor
from crm_hub.api.policy import Principal, customer_rows, shape_customer
from crm_hub.api.problems import Problem, reject_control_characters
from crm_hub.api.respond import page_response, redirect_to, with_etag
from crm_hub.store.schema import masters, profiles

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (400, 401, 404, 422)
}
router = APIRouter(prefix="/customers", tags=["customers"], responses=_ERRORS)

MasterIdPath = Annotated[
    str,
    Path(
        pattern=MASTER_ID_PATTERN,
        max_length=28,
        description="Master id (m_ + 26 characters); a merged id redirects to the survivor.",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="next_cursor of the previous page; omit for the first."),
]
Limit = Annotated[
    int | None,
    Query(ge=1, le=10_000, description="Page size; capped at the server's maximum (200)."),
]
_REDIRECT: dict[int | str, dict[str, Any]] = {
    307: {"description": "The id was merged; follow Location to the survivor."}
}


def _not_found(master_id: str) -> Problem:
    return Problem(404, "not-found", f"no customer {master_id} (or not visible to this token)")


def _locate(
    context: ApiContext, principal: Principal, request: Request, master_id: str, action: str
) -> Response | None:
    """None when ``master_id`` is active and visible; else a redirect, or raise 404."""
    with context.store.read() as conn:
        active, moved = follow_merges(conn, master_id)
        visible = active is not None and (
            conn.execute(
                select(profiles.c.master_id)
                .join(masters, masters.c.master_id == profiles.c.master_id)
                .where(profiles.c.master_id == active, customer_rows(principal, profiles.c.branch))
            ).first()
            is not None
        )
    if not visible or active is None:
        record_reads(
            context.store, principal, action=action, path=request.url.path, status=404,
            master_ids=[master_id],
        )  # fmt: skip
        raise _not_found(master_id)
    return redirect_to(request, master_id, active) if moved else None


@router.get(
    "",
    summary="Search customers by phone, e-mail, name or master id",
    response_model=CustomerPage,
)
def search_customers(
    context: Ctx,
    principal: Auth,
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="A phone in any format, an e-mail, a name (prefix or approximate) or a "
            "master id.",
        ),
    ],
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    """Customers matching ``q`` that this token may read; each shaped by the token's role."""
    size = clamp_limit(limit, context.default_page_size, context.max_page_size)
    term = classify(reject_control_characters("query.q", q), context.phone_regions)
    scope = f"search\x1f{term.kind}\x1f{'|'.join(term.values)}"
    after = decode_cursor(cursor, scope, 2 if term.kind == "name" else 1)
    with context.store.read() as conn:
        rows, next_key, match = search(conn, principal, term, after, size)
    items = [shape_customer(principal, row, None) for row in rows]
    for item in items:
        item["traits"] = None
    record_reads(
        context.store, principal, action="search", path=request.url.path, status=200,
        master_ids=[row["master_id"] for row in rows] or [None],
    )  # fmt: skip
    return page_response(scope, items, next_key, size, match=match)


@router.get(
    "/{master_id}",
    summary="One customer: golden record and traits",
    response_model=CustomerOut,
    responses={**_REDIRECT, 304: {"description": "Not modified (If-None-Match matched)."}},
)
def get_customer(
    context: Ctx, principal: Auth, request: Request, master_id: MasterIdPath
) -> Response:
    """The customer as this token's role may see it, with a strong ETag."""
    with context.store.read() as conn:  # one transaction, one statement when the id is live
        active: str | None = master_id
        moved = False
        found = load_customer(conn, principal, master_id)
        if found is None:  # merged, erased, unknown or another branch's
            active, moved = follow_merges(conn, master_id)
            found = load_customer(conn, principal, active) if moved and active else None
    if found is None or active is None:
        record_reads(
            context.store, principal, action="read", path=request.url.path, status=404,
            master_ids=[master_id],
        )  # fmt: skip
        raise _not_found(master_id)
    if moved:
        return redirect_to(request, master_id, active)
    response, status = with_etag(request, shape_customer(principal, *found))
    record_reads(
        context.store, principal, action="read", path=request.url.path, status=status,
        master_ids=[master_id],
    )  # fmt: skip
    return response


@router.get(
    "/{master_id}/orders",
    summary="A customer's orders with their lines, newest first",
    response_model=OrderPage,
    responses=_REDIRECT,
)
def get_orders(
    context: Ctx,
    principal: Auth,
    request: Request,
    master_id: MasterIdPath,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    """Orders of every source record linked to the customer (this token's branch only)."""
    return _history_page(context, principal, request, master_id, "orders", list_orders, 2,
                         cursor, limit)  # fmt: skip


@router.get(
    "/{master_id}/timeline",
    summary="Visits, orders, e-mail activity, forms, invoices and payments in one stream",
    response_model=TimelinePage,
    responses=_REDIRECT,
)
def get_timeline(
    context: Ctx,
    principal: Auth,
    request: Request,
    master_id: MasterIdPath,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    """Newest first; kinds and amounts this token's role may not see are left out."""
    return _history_page(context, principal, request, master_id, "timeline", list_timeline, 3,
                         cursor, limit)  # fmt: skip


def _history_page(
    context: ApiContext, principal: Principal, request: Request, master_id: str, kind: str,
    lister: Callable[..., tuple[list[Any], Any]], key_size: int, cursor: str | None,
    limit: int | None,
) -> Response:  # fmt: skip
    """One page of a customer's orders or timeline: visibility, paging, audit."""
    redirect = _locate(context, principal, request, master_id, kind)
    if redirect is not None:
        return redirect
    size = clamp_limit(limit, context.default_page_size, context.max_page_size)
    scope = f"{kind}\x1f{master_id}"
    after = decode_cursor(cursor, scope, key_size)
    with context.store.read() as conn:
        items, next_key = lister(conn, principal, master_id, after, size)
    record_reads(
        context.store, principal, action=kind, path=request.url.path, status=200,
        master_ids=[master_id],
    )  # fmt: skip
    return page_response(scope, items, next_key, size)
