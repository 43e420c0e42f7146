"""The ``/ui/`` routes: sign in, search, customer card, segments with CSV export, reports.

Every page reads through the same functions and policy as the JSON routes (``lookup.search``,
``lookup.load_customer`` + ``policy.shape_customer``, ``history.list_timeline``,
``history.segment_members``) and writes the same audit rows. A customer another branch owns
answers 404, as in the API.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from crm_hub.api.audit import record_reads
from crm_hub.api.deps import ApiContext, context_of
from crm_hub.api.history import list_timeline, segment_exists, segment_members
from crm_hub.api.lookup import MASTER_ID_PATTERN, classify, follow_merges, load_customer, search
from crm_hub.api.policy import Principal, sees, sees_reports, shape_customer
from crm_hub.api.problems import Problem, reject_control_characters
from crm_hub.api.tokens import authenticate
from crm_hub.api.web.chart import monthly_chart
from crm_hub.api.web.data import customer_segments, monthly_points, segment_names
from crm_hub.api.web.reports import PERIODS, reports_view
from crm_hub.api.web.session import (
    LoginRequired,
    clear_session,
    current_principal,
    read_form,
    safe_next,
    start_session,
)

__all__ = ["install_pages", "router"]

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(prefix="/ui", include_in_schema=False)

_SEARCH_LIMIT = 20
_TIMELINE_LIMIT = 25
_MEMBERS_PAGE = 100
_HEADERS = {
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ID = re.compile(MASTER_ID_PATTERN)


class PageNotFound(Exception):
    """Render the 404 page (an unknown customer, another branch's, or an unknown segment)."""


class PageForbidden(Exception):
    """Render the 403 page (a page this role may not open, e.g. reports for staff)."""


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    principal = context.get("principal")
    menu = {"reports": isinstance(principal, Principal) and sees_reports(principal)}
    return templates.TemplateResponse(
        request, name, {"menu": menu, **context}, status_code=status, headers=_HEADERS
    )


def _who(request: Request) -> tuple[ApiContext, Principal]:
    context = context_of(request)
    return context, current_principal(context, request)


@router.get("/login")
def login_form(request: Request, next: str = "/ui/") -> Response:
    """The sign-in form: paste a token once."""
    return _page(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the pasted token; on success set the session cookie and go on."""
    form = await read_form(request)
    secret = form.get("token", "").strip()
    target = safe_next(form.get("next"))
    principal = authenticate(context_of(request).store, secret) if secret else None
    if principal is None:
        error = "That token is unknown or revoked. Ask your manager for a new one."
        return _page(request, "login.html", {"next": target, "error": error}, status=401)
    response = RedirectResponse(target, status_code=303, headers=_HEADERS)
    start_session(response, request, secret)
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/ui/login", status_code=303, headers=_HEADERS)
    clear_session(response)
    return response


def _search(
    context: ApiContext, principal: Principal, request: Request, q: str
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """(shaped results, how the term matched, an error for the person) for ``q``."""
    text = q.strip()
    if not text:
        return [], None, None
    if len(text) > 200:
        return [], None, "Search for at most 200 characters."
    try:
        term = classify(reject_control_characters("q", text), context.phone_regions)
    except Problem:
        return [], None, "The search has characters that cannot be searched for."
    with context.store.read() as conn:
        rows, _, match = search(conn, principal, term, None, _SEARCH_LIMIT)
    record_reads(
        context.store, principal, action="search", path=request.url.path, status=200,
        master_ids=[row["master_id"] for row in rows] or [None],
    )  # fmt: skip
    return [shape_customer(principal, row, None)["profile"] | {"master_id": row["master_id"]}
            for row in rows], match, None  # fmt: skip


@router.get("/")
def search_page(request: Request, q: str = "") -> Response:
    """The search box; with ``?q=`` the results too (works without JavaScript)."""
    context, principal = _who(request)
    results, match, error = _search(context, principal, request, q)
    return _page(
        request,
        "search.html",
        {"principal": principal, "q": q, "results": results, "match": match, "error": error},
    )


@router.get("/search")
def search_results(request: Request, q: str = "") -> Response:
    """The results list alone, for the search box's instant results."""
    context, principal = _who(request)
    results, match, error = _search(context, principal, request, q)
    return _page(
        request,
        "_results.html",
        {"q": q, "results": results, "match": match, "error": error},
    )


@router.get("/customers/{master_id}")
def customer_card(request: Request, master_id: str) -> Response:
    """The customer card: profile, preferences, visits, money (if the role sees it), timeline."""
    context, principal = _who(request)
    if not _ID.fullmatch(master_id):
        raise PageNotFound()
    with context.store.read() as conn:
        active, moved = follow_merges(conn, master_id)
        found = load_customer(conn, principal, active) if active else None
        if found is not None and moved:
            return RedirectResponse(f"/ui/customers/{active}", status_code=303, headers=_HEADERS)
        if found is None or active is None:
            record_reads(
                context.store, principal, action="read", path=request.url.path, status=404,
                master_ids=[master_id],
            )  # fmt: skip
            raise PageNotFound()
        card = shape_customer(principal, *found)
        traits = card["traits"] or {}
        money = sees(principal, "money")
        currency = traits.get("currency") if money else None
        timeline, more = list_timeline(conn, principal, active, None, _TIMELINE_LIMIT)
        points = monthly_points(conn, principal, active, currency)
        member_of = customer_segments(conn, active)
    record_reads(
        context.store, principal, action="read", path=request.url.path, status=200,
        master_ids=[active],
    )  # fmt: skip
    return _page(
        request,
        "customer.html",
        {
            "principal": principal,
            "card": card,
            "profile": card["profile"],
            "traits": traits,
            "money": money,
            "timeline": timeline,
            "timeline_more": more is not None,
            "points": points,
            "chart": monthly_chart(points, currency=currency, show_spend=money),
            "segments": member_of,
        },
    )


@router.get("/segments")
def segments_page(request: Request) -> Response:
    """The defined segments, each linking to its members."""
    context, principal = _who(request)
    with context.store.read() as conn:
        names = segment_names(conn)
    return _page(request, "segments.html", {"principal": principal, "segments": names})


def _segment_or_404(context: ApiContext, name: str) -> None:
    if len(name) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PageNotFound()
    with context.store.read() as conn:
        if not segment_exists(conn, name):
            raise PageNotFound()


@router.get("/segments/{name}")
def segment_page(request: Request, name: str, after: str = "") -> Response:
    """A page of a segment's members (this token's branch only), with a CSV export link."""
    context, principal = _who(request)
    _segment_or_404(context, name)
    with context.store.read() as conn:
        members, next_key = segment_members(
            conn, principal, name, [after] if after else None, _MEMBERS_PAGE
        )
    record_reads(
        context.store, principal, action="segment_members", path=request.url.path, status=200,
        master_ids=[m["master_id"] for m in members] or [None],
    )  # fmt: skip
    return _page(
        request,
        "segment.html",
        {
            "principal": principal,
            "name": name,
            "members": members,
            "next_after": None if next_key is None else next_key[0],
        },
    )


@router.get("/reports")
def reports_page(request: Request, period: str = "month") -> Response:
    """The manager page: the sales funnel and the campaigns, as charts and tables."""
    context, principal = _who(request)
    if not sees_reports(principal):
        raise PageForbidden()
    period = period if period in PERIODS else "month"
    with context.store.read() as conn:
        view = reports_view(conn, principal, period)
    return _page(
        request,
        "reports.html",
        {"principal": principal, "period": period, "periods": PERIODS, **view},
    )


def _csv_cell(value: Any) -> str:
    """A cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/segments/{name}/members.csv")
def segment_csv(request: Request, name: str) -> Response:
    """Every member this token may read as CSV: master_id, full_name, entered_at."""
    context, principal = _who(request)
    _segment_or_404(context, name)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["master_id", "full_name", "entered_at"])
        after: list[Any] | None = None
        while True:
            with context.store.read() as conn:
                members, after = segment_members(conn, principal, name, after, 1000)
            record_reads(
                context.store, principal, action="segment_export", path=request.url.path,
                status=200, master_ids=[m["master_id"] for m in members] or [None],
            )  # fmt: skip
            for m in members:
                writer.writerow(
                    [m["master_id"], _csv_cell(m["full_name"]), m["entered_at"].isoformat()]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if after is None:
                return

    filename = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "segment"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def install_pages(app: FastAPI) -> None:
    """Add the ``/ui/`` pages, their static files and their sign-in and 404 handling."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(_HERE / "static")), name="ui-static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        target = (
            "/ui/login" if exc.next_path == "/ui/" else f"/ui/login?next={quote(exc.next_path)}"
        )
        return RedirectResponse(target, status_code=303, headers=_HEADERS)

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> Response:
        principal = None
        with contextlib.suppress(LoginRequired):  # signed-in people keep their menu
            principal = current_principal(context_of(request), request)
        return _page(request, "not_found.html", {"principal": principal}, status=404)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        principal = None
        with contextlib.suppress(LoginRequired):
            principal = current_principal(context_of(request), request)
        return _page(request, "forbidden.html", {"principal": principal}, status=403)
