"""Mailchimp Marketing API v3 emulation (``{base}/mailchimp/3.0/...``).

Endpoints: ``GET /3.0/ping``, ``GET /3.0/lists``, ``GET /3.0/lists/{id}``,
``GET /3.0/lists/{id}/members`` (``count`` ≤ 1000, ``offset``, ``since_last_changed``,
``before_last_changed``, ``status``, ``sort_field``, ``sort_dir``), ``GET|PUT|PATCH|DELETE
/3.0/lists/{id}/members/{hash}``, ``POST .../members/{hash}/actions/delete-permanent``,
``GET|POST .../members/{hash}/tags``, ``GET .../members/{hash}/activity-feed`` and ``/activity``,
``POST /3.0/lists/{id}`` (batch ≤ 500), ``GET|POST /3.0/lists/{id}/segments``,
``POST /3.0/lists/{id}/segments/{sid}``, ``GET /3.0/lists/{id}/segments/{sid}/members``,
``GET /3.0/campaigns``, ``GET /3.0/reports/{campaign_id}/email-activity``, ``.../sent-to`` and
``.../unsubscribed`` (``mailchimp_reports``).
Basic auth with the API key as password (any user name) or Bearer; RFC 7807 errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import mailchimp_members, mailchimp_reports
from connectors.sandbox import mailchimp_records as records
from connectors.sandbox.auth import TokenState, basic_credentials, bearer_token
from connectors.sandbox.mailchimp_http import int_arg, list_index, not_found, problem
from connectors.sandbox.paging import offset_window
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import parse_instant
from connectors.sandbox.vendor import VendorSpec, never_public
from connectors.sandbox.world import MAILCHIMP_STATUSES

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()
router.include(mailchimp_members.router)
router.include(mailchimp_reports.router)
_SORT_COLUMNS = {
    "last_changed": "updated",
    "timestamp_opt": "created",
    "timestamp_signup": "created",
}


def _list_json(ctx: Context, index: int) -> dict[str, Any]:
    table = ctx.world.tables["mailchimp.members"]
    in_list = (table.col("list") == index) & (table.col("deleted") == 0)
    status = table.col("status")
    name, permission = records.LISTS[index]
    return {
        "id": records.list_id(ctx.world, index),
        "web_id": 500 + index,
        "name": name,
        "contact": {
            "company": "Copper Kettle Kitchens Ltd",
            "address1": "41 Old Compton Street",
            "city": "London",
            "zip": "W1D 6HF",
            "country": "GB",
        },
        "permission_reminder": permission,
        "campaign_defaults": {
            "from_name": "Copper Kettle",
            "from_email": "hello@copperkettle.example",
            "subject": "",
            "language": "en",
        },
        "date_created": "2023-01-10T09:00:00+00:00",
        "list_rating": 4,
        "double_optin": True,
        "stats": {
            "member_count": int(np.count_nonzero(in_list & (status == 0))),
            "unsubscribe_count": int(np.count_nonzero(in_list & (status == 1))),
            "cleaned_count": int(np.count_nonzero(in_list & (status == 2))),
        },
    }


@router.route("GET", "/3.0/ping")
def ping(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Health check."""
    return json_response(200, {"health_status": "Everything's Chimpy!"})


@router.route("GET", "/3.0/lists")
def get_lists(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """All audiences."""
    lists = [_list_json(ctx, i) for i in range(len(records.LISTS))]
    return json_response(
        200,
        {
            "lists": lists,
            "total_items": len(lists),
            "constraints": {"may_create": False, "max_instances": 2},
        },
    )


@router.route("GET", "/3.0/lists/{list_id}")
def getlist_index(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """One audience."""
    index = list_index(ctx, params["list_id"])
    return not_found() if index is None else json_response(200, _list_json(ctx, index))


@router.route("GET", "/3.0/lists/{list_id}/members")
def get_members(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Members of an audience, offset-paged; ``since_last_changed`` is strictly after (seconds)."""
    index = list_index(ctx, params["list_id"])
    if index is None:
        return not_found()
    count = int_arg(request, "count", 10, ctx.config.page_limits.mailchimp_count)
    offset = int_arg(request, "offset", 0)
    if isinstance(count, Response):
        return count
    if isinstance(offset, Response):
        return offset
    sort_field = request.arg("sort_field")
    if sort_field is not None and sort_field not in _SORT_COLUMNS:
        return problem(
            400, "Invalid Resource", f"sort_field must be one of {sorted(_SORT_COLUMNS)}."
        )
    sort_dir = (request.arg("sort_dir") or "ASC").upper()
    if sort_dir not in ("ASC", "DESC"):
        return problem(400, "Invalid Resource", "sort_dir must be ASC or DESC.")
    status = request.arg("status")
    if status is not None and status not in (*MAILCHIMP_STATUSES, "archived"):
        return problem(400, "Invalid Resource", f"Invalid status {status!r}.")
    bounds: dict[str, int] = {}
    for name in ("since_last_changed", "before_last_changed"):
        raw = request.arg(name)
        if raw:
            try:
                bounds[name] = parse_instant(raw) // 1000 * 1000
            except ValueError:
                return problem(
                    400, "Invalid Resource", f"{name} must be an ISO 8601 time, got {raw!r}."
                )
    table = ctx.world.tables["mailchimp.members"]

    def mask() -> np.ndarray:
        selected: np.ndarray = table.col("list") == index
        if status == "archived":
            selected &= table.col("deleted") == 1
            return selected
        if status is not None:
            selected &= (table.col("status") == MAILCHIMP_STATUSES.index(status)) & (
                table.col("deleted") == 0
            )
        return selected  # archived members are listed too, with status archived

    column = _SORT_COLUMNS.get(sort_field or "", "row")
    view = table.view(
        column if column != "row" else "row",
        desc=sort_dir == "DESC",
        filter_key=("members", index, status),
        mask=mask,
    )
    if bounds:
        # Filter on last_changed as Mailchimp stores it: whole seconds.
        updated = table.col("updated")[view.rows] // 1000 * 1000
        keep = np.ones(len(view.rows), dtype=bool)
        if "since_last_changed" in bounds:
            keep &= updated > bounds["since_last_changed"]
        if "before_last_changed" in bounds:
            keep &= updated < bounds["before_last_changed"]
        rows = view.rows[keep]
    else:
        rows = view.rows
    start, stop = offset_window(len(rows), offset, count, empty=request.empty_page)
    members = [table.body(int(r)) for r in rows[start:stop]]
    return json_response(
        200, {"members": members, "list_id": params["list_id"], "total_items": int(len(rows))}
    )


def _authenticate(ctx: Context, request: Request) -> TokenState:
    header = request.header("authorization")
    basic = basic_credentials(header)
    key = basic[1] if basic is not None else bearer_token(header)
    return ctx.tokens["mailchimp"].check(key)


def _unauthorized(request: Request, state: TokenState) -> Response:
    if state == "missing":
        return problem(401, "API Key Missing", "Your request did not include an API key.")
    return problem(
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    )


SPEC = VendorSpec(
    name="mailchimp",
    router=router,
    authenticate=_authenticate,
    is_public=never_public,
    unauthorized=_unauthorized,
    throttled=lambda request, wait: problem(
        429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."
    ),
    server_error=lambda request, status: problem(
        status,
        "Internal Server Error" if status == 500 else "Service Unavailable",
        "An unexpected internal error has occurred. Please contact Support for more information.",
    ),
    not_found=lambda request, known: (
        problem(405, "Method Not Allowed", f"{request.method} is not allowed on {request.path}.")
        if known
        else not_found()
    ),
    bad_request=lambda request, message: problem(
        400, "JSON Parse Exception", f"We encountered an unspecified JSON parsing error. {message}"
    ),
)
