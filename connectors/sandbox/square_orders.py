"""Square SearchOrders emulation: ``POST /v2/orders/search``.

``location_ids`` 1-10, ``query.filter.date_time_filter`` (created_at or updated_at, matching the
sort field), ``state_filter``, ``customer_filter``, ``query.sort``, ``limit`` (default 500, at most
1000), ``return_entries``; the cursor only works with the identical query resent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import square_http as sq
from connectors.sandbox import square_records as records
from connectors.sandbox.paging import encode_cursor, keyset_page, query_hash
from connectors.sandbox.routing import Request, Response, Router, json_response
from connectors.sandbox.world import ORDER_STATES

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()


def _order_mask(ctx: Context, locations: list[int], filters: dict[str, Any]) -> Any:
    table = ctx.world.tables["square.orders"]
    states = None
    if "state_filter" in filters:
        wanted = (filters["state_filter"] or {}).get("states") or []
        bad = [s for s in wanted if s not in ORDER_STATES]
        if bad or not wanted:
            raise sq.invalid(
                "INVALID_ENUM_VALUE",
                f"Invalid order states {bad or wanted}.",
                "query.filter.state_filter.states",
            )
        states = [ORDER_STATES.index(s) for s in wanted]
    customers = None
    if "customer_filter" in filters:
        wanted_ids = (filters["customer_filter"] or {}).get("customer_ids") or []
        customers = [
            r
            for r in (records.customer_row(ctx.world, str(c)) for c in wanted_ids)
            if r is not None
        ]

    def mask() -> np.ndarray:
        selected: np.ndarray = (table.col("deleted") == 0) & np.isin(
            table.col("location"), locations
        )
        if states is not None:
            selected &= np.isin(table.col("state"), states)
        if customers is not None:
            selected &= np.isin(table.col("customer"), customers)
        return selected

    return mask


@router.route("POST", "/v2/orders/search")
@sq.handle_errors
def search_orders(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """SearchOrders: ``location_ids`` (1-10), date_time_filter, ``query.sort``, ``cursor``."""
    body = sq.json_body(request)
    table = ctx.world.tables["square.orders"]
    location_ids = body.get("location_ids")
    if not isinstance(location_ids, list) or not location_ids:
        raise sq.invalid(
            "MISSING_REQUIRED_PARAMETER",
            "Field must be set: at least one location id.",
            "location_ids",
        )
    if len(location_ids) > 10:
        raise sq.invalid(
            "VALUE_TOO_HIGH",
            f"At most 10 location ids may be searched, got {len(location_ids)}.",
            "location_ids",
        )
    locations = []
    for text in location_ids:
        index = records.location_index(ctx.world, str(text))
        if index is None:
            raise sq.invalid("INVALID_VALUE", f"Location ID `{text}` is not valid.", "location_ids")
        locations.append(index)
    limit = sq.limit_arg(body.get("limit"), 500, ctx.config.page_limits.square_orders)
    query = body.get("query") or {}
    filters = query.get("filter") or {}
    sort = query.get("sort") or {}
    sort_field = sort.get("sort_field", "CREATED_AT")
    if sort_field not in ("CREATED_AT", "UPDATED_AT"):
        raise sq.invalid(
            "INVALID_ENUM_VALUE",
            f"The sandbox sorts by CREATED_AT or UPDATED_AT, not {sort_field!r}.",
            "query.sort.sort_field",
        )
    desc = sort.get("sort_order", "DESC") == "DESC"
    low = high = None
    time_filter = filters.get("date_time_filter") or {}
    if time_filter:
        if len(time_filter) != 1 or next(iter(time_filter)) not in ("created_at", "updated_at"):
            raise sq.invalid(
                "INVALID_VALUE",
                "date_time_filter takes exactly one of created_at or updated_at.",
                "query.filter.date_time_filter",
            )
        name = next(iter(time_filter))
        if name.upper() != sort_field:
            raise sq.invalid(
                "INVALID_VALUE",
                f"The sort_field {sort_field} must match the date_time_filter field {name}.",
                "query.sort.sort_field",
            )
        low, high = sq.time_range(time_filter[name], f"query.filter.date_time_filter.{name}")
    qhash = query_hash(
        {
            "location_ids": location_ids,
            "query": query,
            "return_entries": bool(body.get("return_entries")),
        }
    )
    after = sq.cursor_arg(body.get("cursor"), qhash)
    mask = _order_mask(ctx, locations, filters)
    column = "updated" if sort_field == "UPDATED_AT" else "created"
    view = table.view(column, desc=desc, filter_key=("orders", qhash), mask=mask)
    bounds = view.bounds(low, low_inclusive=True, high=high, high_inclusive=False)
    page = keyset_page(view, bounds, after, limit, empty=request.empty_page)
    out: dict[str, Any] = {}
    if page.rows and body.get("return_entries"):
        out["order_entries"] = [
            {
                "order_id": records.order_id(ctx.world, r),
                "location_id": records.location_id(ctx.world, table.get("location", r)),
                "version": table.get("version", r),
            }
            for r in page.rows
        ]
    elif page.rows:
        out["orders"] = [table.body(r) for r in page.rows]
    if page.more:
        out["cursor"] = encode_cursor(page.next_position, qhash)
    return json_response(200, out)
