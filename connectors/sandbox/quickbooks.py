"""QuickBooks Online API emulation (``{base}/quickbooks/...``).

Endpoints: ``GET|POST /v3/company/{realm}/query`` (see ``qbquery`` for the grammar; MAXRESULTS ≤
1000, STARTPOSITION 1-based), ``GET /v3/company/{realm}/cdc?entities=&changedSince=`` (≤ 30 days
back, ≤ 1000 objects over all entities, deletions as ``status: Deleted``),
``GET /v3/company/{realm}/{customer|invoice|payment}/{id}``,
``GET /v3/company/{realm}/companyinfo/{realm}``, ``POST /oauth2/v1/tokens/bearer`` (refresh token
rotates; used or unknown ones get ``invalid_grant``). Bearer auth; ``Fault`` error bodies;
throttling is 429 Fault 003001. Times carry the US Pacific offset and compare at whole seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import qbquery
from connectors.sandbox import quickbooks_records as records
from connectors.sandbox.auth import RefreshError, TokenState, basic_credentials, bearer_token
from connectors.sandbox.paging import query_hash
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.table import Table
from connectors.sandbox.times import DAY_MS, pacific_zone_for, parse_instant
from connectors.sandbox.vendor import VendorSpec

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()
TABLES = {
    "Customer": "quickbooks.customers",
    "Invoice": "quickbooks.invoices",
    "Payment": "quickbooks.payments",
}
_OPS = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "=": np.equal,
}


def fault(
    status: int, kind: str, message: str, detail: str, code: str, *, time: str = ""
) -> Response:
    """QuickBooks' ``Fault`` envelope."""
    payload: dict[str, Any] = {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind}
    }
    if time:
        payload["time"] = time
    return json_response(status, payload)


def _validation(
    ctx: Context, detail: str, code: str = "4000", message: str = "Error parsing query"
) -> Response:
    return fault(400, "ValidationFault", message, detail, code, time=records.now_text(ctx.world))


def _realm(ctx: Context, params: dict[str, str]) -> Response | None:
    if params["realm"] != ctx.config.quickbooks_realm:
        return fault(
            403,
            "AUTHENTICATION",
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            f"The token is not authorised for company {params['realm']}.",
            "003100",
        )
    return None


def _instant(text: str) -> int:
    first = parse_instant(text)
    return parse_instant(text, naive_tz=pacific_zone_for(first))


def _row_of(entity: str, value: str | float | bool) -> int:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return -1
    if entity == "Customer":
        return number - 1
    base = 100 if entity == "Invoice" else 101
    return (number - base) // 2 if number >= base and (number - base) % 2 == 0 else -1


def _condition_mask(table: Table, entity: str, condition: qbquery.Condition) -> np.ndarray:
    if condition.field in ("updated", "created"):
        seconds = table.col(condition.field) // 1000 * 1000
        if condition.op == "IN":
            return np.isin(seconds, [_instant(str(v)) for v in condition.values])
        return _OPS[condition.op](seconds, _instant(str(condition.values[0])) // 1000 * 1000)  # type: ignore[no-any-return]
    if condition.field == "active":
        wanted = {
            bool(v) if isinstance(v, bool) else str(v).lower() == "true" for v in condition.values
        }
        active = table.col("deleted") == 0
        return np.isin(active, list(wanted))
    column = table.col("customer") if condition.field == "customer" else np.arange(len(table))
    row_entity = "Customer" if condition.field == "customer" else entity
    rows = [_row_of(row_entity, v) for v in condition.values]
    if condition.op in ("=", "IN"):
        return np.isin(column, rows)
    ids = column + 1 if row_entity == "Customer" else 100 + 2 * column + (entity == "Payment")
    return _OPS[condition.op](ids, int(float(condition.values[0])))


def run_query(ctx: Context, text: str, *, empty: bool = False) -> Response:
    """Execute a query and answer it as QuickBooks does (``empty``: the empty_page fault)."""
    try:
        query = qbquery.parse(text, max_results_limit=ctx.config.page_limits.quickbooks_max_results)
        table = ctx.world.tables[TABLES[query.entity]]
        filters_active = any(c.field == "active" for c in query.conditions)

        def mask() -> np.ndarray:
            if query.entity == "Customer":
                selected = (
                    np.ones(len(table), dtype=bool) if filters_active else table.col("deleted") == 0
                )
            else:
                selected = table.col("deleted") == 0
            for condition in query.conditions:
                selected &= _condition_mask(table, query.entity, condition)
            return selected

        key = query_hash(
            [query.entity, [[c.field, c.op, list(c.values)] for c in query.conditions]]
        )
        column = {"updated": "updated", "created": "created"}.get(query.order_field or "", "row")
        view = table.view(column, desc=query.descending, filter_key=("qb", key), mask=mask)
    except qbquery.QueryError as exc:
        return _validation(ctx, str(exc))
    except ValueError as exc:
        return _validation(ctx, f"QueryValidationError: {exc}")
    now = records.now_text(ctx.world)
    if query.count:
        return json_response(200, {"QueryResponse": {"totalCount": len(view)}, "time": now})
    start = query.start_position - 1
    rows = [] if empty else view.rows[start : start + query.max_results].tolist()
    if not rows:
        return json_response(200, {"QueryResponse": {}, "time": now})
    body = {
        query.entity: [table.body(r) for r in rows],
        "startPosition": query.start_position,
        "maxResults": len(rows),
    }
    return json_response(200, {"QueryResponse": body, "time": now})


@router.route("GET", "/v3/company/{realm}/query")
def query_get(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``?query=SELECT ...``."""
    denied = _realm(ctx, params)
    if denied is not None:
        return denied
    return run_query(ctx, request.arg("query") or "", empty=request.empty_page)


@router.route("POST", "/v3/company/{realm}/query")
def query_post(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """The query as the body (``Content-Type: application/text``)."""
    denied = _realm(ctx, params)
    if denied is not None:
        return denied
    return run_query(ctx, request.body.decode("utf-8", "replace"), empty=request.empty_page)


def _deleted_stub(table: Table, entity: str, row: int) -> dict[str, Any]:
    body = table.body(row)
    return {
        "domain": "QBO",
        "status": "Deleted",
        "Id": body["Id"],
        "MetaData": {"LastUpdatedTime": body["MetaData"]["LastUpdatedTime"]},
    }


@router.route("GET", "/v3/company/{realm}/cdc")
def change_data_capture(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Changes since ``changedSince`` for ``entities``, capped at 1000 objects in total."""
    denied = _realm(ctx, params)
    if denied is not None:
        return denied
    names = [n.strip() for n in (request.arg("entities") or "").split(",") if n.strip()]
    entities = [qbquery.ENTITIES.get(n.lower()) for n in names]
    if not names or None in entities:
        return _validation(
            ctx,
            f"entities must list Customer, Invoice or Payment, got {names}",
            "2010",
            "Invalid query",
        )
    raw = request.arg("changedSince")
    try:
        since = _instant(raw or "")
    except ValueError:
        return _validation(
            ctx,
            f"changedSince must be a date-time, got {raw!r}",
            "2010",
            "Request has invalid or unsupported property",
        )
    now = ctx.world.clock.peek_ms()
    if since < now - ctx.config.page_limits.quickbooks_cdc_days * DAY_MS:
        return _validation(
            ctx,
            f"changedSince must be within the last "
            f"{ctx.config.page_limits.quickbooks_cdc_days} days",
            "2010",
            "Request has invalid or unsupported property",
        )
    changes: list[tuple[int, int, int]] = []
    for order, entity in enumerate(e for e in entities if e):
        table = ctx.world.tables[TABLES[entity]]
        rows = np.flatnonzero(table.col("updated") // 1000 * 1000 >= since // 1000 * 1000)
        changes += [(int(table.col("updated")[r]), order, int(r)) for r in rows]
    changes.sort()
    changes = changes[: ctx.config.page_limits.quickbooks_cdc_objects]
    responses = []
    for order, entity in enumerate(e for e in entities if e):
        table = ctx.world.tables[TABLES[entity]]
        objects = []
        for _, o, row in changes:
            if o != order:
                continue
            deleted = table.get("deleted", row) and entity != "Customer"
            objects.append(_deleted_stub(table, entity, row) if deleted else table.body(row))
        block: dict[str, Any] = {
            "startPosition": 1,
            "maxResults": len(objects),
            "totalCount": len(objects),
        }
        if objects:
            block[entity] = objects
        responses.append(block)
    return json_response(
        200, {"CDCResponse": [{"QueryResponse": responses}], "time": records.now_text(ctx.world)}
    )


@router.route("GET", "/v3/company/{realm}/{entity}/{entity_id}")
def read_entity(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Read one Customer, Invoice or Payment by Id (``companyinfo`` answers the company)."""
    denied = _realm(ctx, params)
    if denied is not None:
        return denied
    now = records.now_text(ctx.world)
    if params["entity"].lower() == "companyinfo":
        info = {
            "Id": "1",
            "CompanyName": "Copper Kettle Kitchens Ltd",
            "LegalName": "Copper Kettle Kitchens Ltd",
            "Country": "GB",
            "SupportedLanguages": "en",
            "domain": "QBO",
        }
        return json_response(200, {"CompanyInfo": info, "time": now})
    entity = qbquery.ENTITIES.get(params["entity"].lower())
    if entity is None:
        return fault(
            400,
            "ValidationFault",
            "Unsupported Operation",
            f"Operation {params['entity']} is not supported.",
            "500",
            time=now,
        )
    table = ctx.world.tables[TABLES[entity]]
    row = _row_of(entity, params["entity_id"])
    if not 0 <= row < len(table) or (table.get("deleted", row) and entity != "Customer"):
        return fault(
            400,
            "ValidationFault",
            "Object Not Found",
            f"Object Not Found : {entity} {params['entity_id']}",
            "610",
            time=now,
        )
    return json_response(200, {entity: table.body(row), "time": now})


@router.route("POST", "/oauth2/v1/tokens/bearer")
def token_endpoint(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """OAuth 2 refresh: client credentials as Basic auth (or form); the refresh token rotates."""
    form = request.form()
    store = ctx.tokens["quickbooks"]
    client = basic_credentials(request.header("authorization")) or (
        form.get("client_id", ""),
        form.get("client_secret", ""),
    )
    if not store.check_client(*client):
        return json_response(401, {"error": "invalid_client"})
    if form.get("grant_type") != "refresh_token":
        return json_response(400, {"error": "unsupported_grant_type"})
    try:
        issued = store.refresh(form.get("refresh_token"))
    except RefreshError as exc:
        return json_response(400, {"error": exc.code})
    return json_response(
        200,
        {
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "x_refresh_token_expires_in": 8_726_400,
            "access_token": issued.access_token,
        },
    )


def _authenticate(ctx: Context, request: Request) -> TokenState:
    return ctx.tokens["quickbooks"].check(bearer_token(request.header("authorization")))


def _unauthorized(request: Request, state: TokenState) -> Response:
    detail = {"expired": "Token expired", "missing": "Authorization header missing"}.get(
        state, "Token invalid"
    )
    response = fault(
        401,
        "AUTHENTICATION",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        "3200",
    )
    response.headers.append(("WWW-Authenticate", 'Bearer realm="Intuit", error="invalid_token"'))
    return response


SPEC = VendorSpec(
    name="quickbooks",
    router=router,
    authenticate=_authenticate,
    is_public=lambda request: request.path == "/oauth2/v1/tokens/bearer",
    unauthorized=_unauthorized,
    throttled=lambda request, wait: fault(
        429,
        "SERVICE",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        "003001",
    ),
    server_error=lambda request, status: fault(
        status,
        "SystemFault",
        "An application error has occurred while processing your request",
        f"System Failure Error: HTTP {status}",
        "10000",
    ),
    not_found=lambda request, known: fault(
        405 if known else 404,
        "ValidationFault",
        "Unsupported Operation",
        f"{request.method} {request.path} is not supported.",
        "500",
    ),
    bad_request=lambda request, message: fault(
        400, "ValidationFault", "Request has invalid or unsupported property", message, "2010"
    ),
)
