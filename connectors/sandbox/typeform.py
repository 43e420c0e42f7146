"""Typeform API emulation (``{base}/typeform/...``).

Endpoints: ``GET /forms``, ``GET /forms/{id}``, ``GET /forms/{id}/responses`` (``page_size`` ≤
1000, ``since``/``until`` inclusive, ``after``/``before`` response tokens, ``sort``,
``completed``), ``GET|PUT|DELETE /forms/{id}/webhooks/{tag}``, ``GET /forms/{id}/webhooks``,
``POST /oauth/token`` (refresh token rotates). Bearer auth; errors ``{code, description}``;
429 with ``Retry-After``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from connectors.sandbox import typeform_records as records
from connectors.sandbox.auth import RefreshError, TokenState, bearer_token
from connectors.sandbox.routing import Request, Response, Router, empty_response, json_response
from connectors.sandbox.times import iso_seconds_z, parse_instant
from connectors.sandbox.vendor import VendorSpec

if TYPE_CHECKING:
    from connectors.sandbox.app import Context

router = Router()


def error(
    status: int, code: str, description: str, details: list[dict[str, str]] | None = None
) -> Response:
    """Typeform's error body."""
    payload: dict[str, Any] = {"code": code, "description": description}
    if details:
        payload["details"] = details
    return json_response(status, payload)


def _validation(field: str, message: str) -> Response:
    return error(
        400,
        "VALIDATION_ERROR",
        message,
        [{"code": "INVALID_PARAMETER", "description": message, "field": field, "in": "query"}],
    )


def _form(ctx: Context, form_id: str) -> int | Response:
    index = records.form_index(ctx.world, form_id)
    if index is None:
        return error(404, "FORM_NOT_FOUND", f"Non existing form with uid {form_id}")
    return index


@router.route("GET", "/forms")
def list_forms(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """The account's forms."""
    base = ctx.vendor_url("typeform")
    items = [records.form_summary(ctx.world, i, base) for i in range(len(records.FORMS))]
    return json_response(200, {"total_items": len(items), "page_count": 1, "items": items})


@router.route("GET", "/forms/{form_id}")
def get_form(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """A form definition with its fields (ids and refs)."""
    index = _form(ctx, params["form_id"])
    if isinstance(index, Response):
        return index
    return json_response(200, records.form_definition(ctx.world, index))


def _instant(request: Request, name: str) -> int | None | Response:
    raw = request.arg(name)
    if not raw:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        return _validation(
            name, f"{name} must be an ISO 8601 date-time or unix seconds, got {raw!r}"
        )


@router.route("GET", "/forms/{form_id}/responses")
def list_responses(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Completed responses of a form, newest first unless ``sort=submitted_at,asc``."""
    index = _form(ctx, params["form_id"])
    if isinstance(index, Response):
        return index
    raw_size = request.arg("page_size", "25") or "25"
    if (
        not raw_size.isdigit()
        or not 1 <= int(raw_size) <= ctx.config.page_limits.typeform_page_size
    ):
        return _validation(
            "page_size",
            f"page_size must be between 1 and {ctx.config.page_limits.typeform_page_size}",
        )
    page_size = int(raw_size)
    since, until = _instant(request, "since"), _instant(request, "until")
    for bound in (since, until):
        if isinstance(bound, Response):
            return bound
    sort = request.arg("sort", "submitted_at,desc") or "submitted_at,desc"
    if sort not in ("submitted_at,asc", "submitted_at,desc"):
        return _validation("sort", "sort must be submitted_at,asc or submitted_at,desc")
    table = ctx.world.tables["typeform.responses"]
    after_token, before_token = request.arg("after"), request.arg("before")
    desc = sort.endswith("desc")
    anchor: tuple[int, int] | None = None
    if after_token or before_token:
        token = after_token or before_token or ""
        row = records.response_row(ctx.world, token)
        if row is None:
            return _validation(
                "after" if after_token else "before", f"unknown response token {token!r}"
            )
        anchor = (table.get("updated", row), row)
        desc = before_token is not None and after_token is None
    completed = (request.arg("completed", "true") or "true").lower() != "false"
    view = table.view(
        "updated",
        desc=desc,
        filter_key=("responses", index),
        mask=lambda: (table.col("form") == index) & (table.col("deleted") == 0),
    )
    start, end = view.bounds(
        since if isinstance(since, int) else None,
        low_inclusive=True,
        high=until if isinstance(until, int) else None,
        high_inclusive=True,
    )
    if anchor is not None:
        start = max(start, view.position_after(*anchor))
    if not completed:
        start = end  # partial responses are not emulated
    total = end - start
    rows = [] if request.empty_page else view.rows[start : min(end, start + page_size)].tolist()
    items = [table.body(r) for r in rows]
    return json_response(
        200,
        {
            "total_items": int(total),
            "page_count": int(math.ceil(total / page_size)),
            "items": items,
        },
    )


def _hooks(ctx: Context) -> dict[tuple[str, str], dict[str, Any]]:
    hooks: dict[tuple[str, str], dict[str, Any]] = ctx.state.setdefault("typeform", {}).setdefault(
        "webhooks", {}
    )
    return hooks


def webhook_json(hook: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the API shows it (the secret is never echoed)."""
    return {k: v for k, v in hook.items() if k != "secret"}


@router.route("PUT", "/forms/{form_id}/webhooks/{tag}")
def put_webhook(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Create or update a webhook: ``{url, enabled, secret, verify_ssl}``."""
    index = _form(ctx, params["form_id"])
    if isinstance(index, Response):
        return index
    payload = request.json()
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("url"), str)
        or not payload["url"].startswith(("http://", "https://"))
    ):
        return error(
            400,
            "VALIDATION_ERROR",
            "url is required and must be an http(s) URL",
            [{"code": "REQUIRED", "description": "url", "field": "url", "in": "body"}],
        )
    key = (params["form_id"], params["tag"])
    now = iso_seconds_z(ctx.world.clock.peek_ms())
    existing = _hooks(ctx).get(key)
    hook = {
        "id": records.short_id(ctx.world.seed, f"hook.{key}", 12),
        "form_id": params["form_id"],
        "tag": params["tag"],
        "url": payload["url"],
        "enabled": bool(payload.get("enabled", False)),
        "verify_ssl": bool(payload.get("verify_ssl", True)),
        "secret": payload.get("secret") or (existing or {}).get("secret"),
        "created_at": (existing or {}).get("created_at", now),
        "updated_at": now,
    }
    _hooks(ctx)[key] = hook
    return json_response(200, webhook_json(hook))


@router.route("GET", "/forms/{form_id}/webhooks")
def list_webhooks(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Webhooks of a form."""
    index = _form(ctx, params["form_id"])
    if isinstance(index, Response):
        return index
    items = [
        webhook_json(h) for (form, _), h in sorted(_hooks(ctx).items()) if form == params["form_id"]
    ]
    return json_response(200, {"items": items})


@router.route("GET", "/forms/{form_id}/webhooks/{tag}")
def get_webhook(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """One webhook."""
    hook = _hooks(ctx).get((params["form_id"], params["tag"]))
    if hook is None:
        return error(404, "WEBHOOK_NOT_FOUND", f"Webhook {params['tag']} not found")
    return json_response(200, webhook_json(hook))


@router.route("DELETE", "/forms/{form_id}/webhooks/{tag}")
def delete_webhook(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Remove a webhook."""
    if _hooks(ctx).pop((params["form_id"], params["tag"]), None) is None:
        return error(404, "WEBHOOK_NOT_FOUND", f"Webhook {params['tag']} not found")
    return empty_response(204)


@router.route("POST", "/oauth/token")
def oauth_token(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """Refresh an OAuth token (form body); the refresh token is single-use and replaced."""
    form = request.form()
    store = ctx.tokens["typeform"]
    if form.get("grant_type") != "refresh_token":
        return json_response(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be refresh_token",
            },
        )
    if not store.check_client(form.get("client_id"), form.get("client_secret")):
        return json_response(
            401, {"error": "invalid_client", "error_description": "client authentication failed"}
        )
    try:
        issued = store.refresh(form.get("refresh_token"))
    except RefreshError as exc:
        return json_response(
            400,
            {
                "error": exc.code,
                "error_description": "refresh token is invalid, expired or already used",
            },
        )
    return json_response(
        200,
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": "forms:read responses:read webhooks:read webhooks:write offline",
        },
    )


def matching_webhooks(ctx: Context, form_id: str, tag: str | None) -> list[dict[str, Any]]:
    """Enabled webhooks of a form (optionally only one tag), with their secrets."""
    return [
        h
        for (form, t), h in sorted(_hooks(ctx).items())
        if form == form_id and h["enabled"] and (tag is None or t == tag)
    ]


def _authenticate(ctx: Context, request: Request) -> TokenState:
    return ctx.tokens["typeform"].check(bearer_token(request.header("authorization")))


def _unauthorized(request: Request, state: TokenState) -> Response:
    description = {
        "missing": "Authentication credentials not found on the Request Headers",
        "expired": "The access token provided is expired",
    }.get(state, "Authentication credentials are not valid")
    return error(401, "AUTHENTICATION_FAILED", description)


def _throttled(request: Request, wait: float | None) -> Response:
    response = error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded, please slow down")
    response.headers.append(("Retry-After", str(max(1, math.ceil(wait or 1)))))
    return response


SPEC = VendorSpec(
    name="typeform",
    router=router,
    authenticate=_authenticate,
    is_public=lambda request: request.path == "/oauth/token",
    unauthorized=_unauthorized,
    throttled=_throttled,
    server_error=lambda request, status: error(
        status,
        "INTERNAL_SERVER_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
        "Something went wrong, please retry",
    ),
    not_found=lambda request, known: error(
        405 if known else 404, "METHOD_NOT_ALLOWED" if known else "NOT_FOUND", "Endpoint not found"
    ),
    bad_request=lambda request, message: error(400, "MALFORMED_REQUEST", message),
)
