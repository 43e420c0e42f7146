"""Square API emulation (``{base}/square/v2/...``).

Endpoints: ``GET /v2/locations``, ``GET /v2/customers``, ``GET /v2/customers/{id}``,
``POST /v2/customers/search``, ``POST /v2/orders/search``, ``POST /oauth2/token``.
Bearer auth; errors ``{"errors": [{category, code, detail, field}]}``; 429 ``RATE_LIMITED``
without ``Retry-After``; cursor pagination where a search cursor only works with the identical
query; empty collections are omitted from answers, as Square does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import square_http as sq
from connectors.sandbox import square_orders
from connectors.sandbox import square_records as records
from connectors.sandbox.auth import RefreshError, TokenState, bearer_token
from connectors.sandbox.paging import encode_cursor, keyset_page, query_hash
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.times import rfc3339_ms
from connectors.sandbox.vendor import VendorSpec

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()
router.include(square_orders.router)


@router.route("GET", "/v2/locations")
@sq.handle_errors
def list_locations(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """All branches."""
    return json_response(200, {"locations": records.locations(ctx.world)})


@router.route("GET", "/v2/customers")
@sq.handle_errors
def list_customers(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """ListCustomers: ``limit`` 1-100, ``cursor``, ``sort_field``, ``sort_order``."""
    table = ctx.world.tables["square.customers"]
    limit = sq.limit_arg(request.arg("limit"), 100, ctx.config.page_limits.square_customers)
    sort_field = request.arg("sort_field", "DEFAULT")
    if sort_field not in ("DEFAULT", "CREATED_AT"):
        raise sq.invalid("INVALID_ENUM_VALUE", f"Invalid sort_field {sort_field!r}.", "sort_field")
    desc = sq.order_desc(request.arg("sort_order"))
    qhash = query_hash(["list", sort_field, desc])
    after = sq.cursor_arg(request.arg("cursor"), qhash)
    view = table.view("row" if sort_field == "DEFAULT" else "created", desc=desc)
    page = keyset_page(view, (0, len(view)), after, limit, empty=request.empty_page)
    out: dict[str, Any] = {}
    if page.rows:
        out["customers"] = [table.body(r) for r in page.rows]
    if page.more:
        out["cursor"] = encode_cursor(page.next_position, qhash)
    return json_response(200, out)


@router.route("GET", "/v2/customers/{customer_id}")
@sq.handle_errors
def retrieve_customer(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """RetrieveCustomer."""
    row = records.customer_row(ctx.world, params["customer_id"])
    table = ctx.world.tables["square.customers"]
    if row is None or not table.is_live(row):
        return sq.error(
            404,
            "INVALID_REQUEST_ERROR",
            "NOT_FOUND",
            f"Customer with ID `{params['customer_id']}` not found.",
        )
    return json_response(200, {"customer": table.body(row)})


@router.route("POST", "/v2/customers/search")
@sq.handle_errors
def search_customers(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """SearchCustomers: updated_at / created_at ranges, ``query.sort``, ``limit``, ``cursor``."""
    body = sq.json_body(request)
    table = ctx.world.tables["square.customers"]
    limit = sq.limit_arg(body.get("limit"), 100, ctx.config.page_limits.square_customers)
    query = body.get("query") or {}
    filters = query.get("filter") or {}
    unknown = set(filters) - {"updated_at", "created_at"}
    if unknown:
        raise sq.invalid(
            "BAD_REQUEST",
            f"The sandbox emulates only created_at and updated_at filters, not {sorted(unknown)}.",
            "query.filter",
        )
    sort = query.get("sort") or {}
    field = sort.get("field", "DEFAULT")
    if field not in ("DEFAULT", "CREATED_AT"):
        raise sq.invalid(
            "INVALID_ENUM_VALUE",
            f"Invalid sort field {field!r}; expected DEFAULT or CREATED_AT.",
            "query.sort.field",
        )
    desc = sq.order_desc(sort.get("order"))
    ranges = {name: sq.time_range(filters[name], f"query.filter.{name}") for name in filters}
    qhash = query_hash({"query": query})
    after = sq.cursor_arg(body.get("cursor"), qhash)

    def mask() -> np.ndarray:
        selected: np.ndarray = table.col("deleted") == 0
        for column, (low, high) in ranges.items():
            values = table.col("updated" if column == "updated_at" else "created")
            if low is not None:
                selected &= values >= low
            if high is not None:
                selected &= values < high
        return selected

    view = table.view(
        "row" if field == "DEFAULT" else "created",
        desc=desc,
        filter_key=("search", qhash),
        mask=mask,
    )
    page = keyset_page(view, (0, len(view)), after, limit, empty=request.empty_page)
    out: dict[str, Any] = {}
    if page.rows:
        out["customers"] = [table.body(r) for r in page.rows]
    if page.more:
        out["cursor"] = encode_cursor(page.next_position, qhash)
    return json_response(200, out)


@router.route("POST", "/oauth2/token")
@sq.handle_errors
def obtain_token(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """ObtainToken, ``grant_type=refresh_token``; client id and secret in the JSON body."""
    body = sq.json_body(request)
    store = ctx.tokens["square"]
    if body.get("grant_type") != "refresh_token":
        raise sq.invalid(
            "INVALID_VALUE", "The sandbox supports grant_type refresh_token only.", "grant_type"
        )
    if not store.check_client(body.get("client_id"), body.get("client_secret")):
        return sq.error(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "Invalid client credentials.")
    try:
        issued = store.refresh(body.get("refresh_token"))
    except RefreshError:
        return sq.error(
            401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "Invalid or revoked refresh token."
        )
    expires_at = rfc3339_ms(ctx.world.clock.peek_ms() + issued.expires_in * 1000)[:19] + "Z"
    return json_response(
        200,
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_at": expires_at,
            "merchant_id": records.locations(ctx.world)[0]["merchant_id"],
            "refresh_token": issued.refresh_token,
            "short_lived": False,
        },
    )


def _authenticate(ctx: Context, request: Request) -> TokenState:
    return ctx.tokens["square"].check(bearer_token(request.header("authorization")))


def _unauthorized(request: Request, state: TokenState) -> Response:
    if state == "expired":
        return sq.error(
            401, "AUTHENTICATION_ERROR", "ACCESS_TOKEN_EXPIRED", "The access token has expired."
        )
    if state == "missing":
        detail = "Your request did not include an `Authorization` http header with an access token."
        return sq.error(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", detail)
    return sq.error(
        401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized."
    )


_SERVER_CODES = {
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

SPEC = VendorSpec(
    name="square",
    router=router,
    authenticate=_authenticate,
    is_public=lambda request: request.path == "/oauth2/token",
    unauthorized=_unauthorized,
    throttled=lambda request, wait: sq.error(
        429, "RATE_LIMIT_ERROR", "RATE_LIMITED", "Rate limited."
    ),
    server_error=lambda request, status: sq.error(
        status,
        "API_ERROR",
        _SERVER_CODES.get(status, "INTERNAL_SERVER_ERROR"),
        "An internal error has occurred.",
    ),
    not_found=lambda request, known: sq.error(
        405 if known else 404,
        "INVALID_REQUEST_ERROR",
        "METHOD_NOT_ALLOWED" if known else "NOT_FOUND",
        f"{request.method} {request.path} is not supported." if known else "Resource not found.",
    ),
    bad_request=lambda request, message: sq.error(
        400, "INVALID_REQUEST_ERROR", "INVALID_CONTENT_TYPE", message
    ),
)
