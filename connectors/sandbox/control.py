"""Control endpoints under ``/_sandbox`` (no auth: the sandbox only listens on loopback).

==========================  ==================================================================
``GET /health``             ``{"status": "ok"}``
``GET /info``               base URLs, credentials, ids (lists, forms, realm), table sizes
``GET /truth``              ground truth CSV, streamed; ``?system=square,hubspot`` to filter
``GET|POST|DELETE /faults`` list, plan (``{"vendor", "kind", "count", ...}``), clear (``?vendor=``)
``POST /mutate``            ``{"vendor", "changes", "adds", "deletes", "table"?}``
``GET /changes``            ``?since=<epoch ms>``: records stamped since, per table (changes.py)
``POST /reset``             rebuild the world from the seed, forget faults, tokens and writes
``POST /typeform/deliver``  ``{"form_id"?, "tag"?, "response_id"?}``: send a signed webhook
``GET /requests``           recent requests (``?limit=&vendor=``), without secrets
``GET /webhook/deliveries`` deliveries the webhook receiver accepted (``?endpoint=``)
==========================  ==================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from connectors.sandbox import (
    mailchimp_records,
    typeform,
    typeform_records,
    webhook_receiver,
    webhooks,
)
from connectors.sandbox.changes import changes_since
from connectors.sandbox.faults import Fault, FaultError
from connectors.sandbox.mutate import MutationError, add_response, mutate
from connectors.sandbox.routing import BadRequestBody, Request, Response, json_response
from connectors.sandbox.truth import truth_csv_chunks

if TYPE_CHECKING:
    from connectors.sandbox.app import Sandbox


def describe(sandbox: Sandbox) -> dict[str, Any]:
    """Everything a client needs to connect: URLs, test credentials, ids, sizes."""
    config = sandbox.config
    world = sandbox.world
    url = sandbox.base_url
    creds = config.credentials

    def oauth(vendor: str, token_path: str) -> dict[str, str]:
        c = creds[vendor]
        return {
            "token_url": f"{url}/{vendor}{token_path}",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "refresh_token": c.refresh_token,
        }

    return {
        "base_url": url,
        "seed": config.seed,
        "customers": config.customers,
        "vendors": {
            "square": {
                "base_url": f"{url}/square",
                "api_base": f"{url}/square/v2",
                "access_token": creds["square"].token,
                "oauth": oauth("square", "/oauth2/token"),
            },
            "mailchimp": {
                "base_url": f"{url}/mailchimp",
                "api_base": f"{url}/mailchimp/3.0",
                "api_key": creds["mailchimp"].token,
                "auth": "Basic auth: any user name, the API key as password",
                "list_ids": [
                    mailchimp_records.list_id(world, i) for i in range(len(mailchimp_records.LISTS))
                ],
            },
            "typeform": {
                "base_url": f"{url}/typeform",
                "access_token": creds["typeform"].token,
                "form_ids": [
                    typeform_records.form_id(world, i) for i in range(len(typeform_records.FORMS))
                ],
                "oauth": oauth("typeform", "/oauth/token"),
            },
            "quickbooks": {
                "base_url": f"{url}/quickbooks",
                "api_base": f"{url}/quickbooks/v3/company/{config.quickbooks_realm}",
                "realm_id": config.quickbooks_realm,
                "access_token": creds["quickbooks"].token,
                "access_token_ttl_seconds": config.token_ttl.get("quickbooks"),
                "oauth": oauth("quickbooks", "/oauth2/v1/tokens/bearer"),
            },
            "hubspot": {
                "base_url": f"{url}/hubspot",
                "api_base": f"{url}/hubspot/crm/v3",
                "access_token": creds["hubspot"].token,
                "oauth": oauth("hubspot", "/oauth/v1/token"),
            },
            "webhook": {
                "base_url": f"{url}/webhook",
                "secret": config.webhook_secret,
                "signature": "Standard Webhooks v1 (webhook-id, webhook-timestamp, "
                "webhook-signature)",
            },
        },
        "tables": {name: len(table) for name, table in world.tables.items()},
        "control": f"{url}/_sandbox",
    }


def _body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise BadRequestBody("expected a JSON object")
    return body


def _faults(sandbox: Sandbox, request: Request) -> Response:
    if request.method == "GET":
        return json_response(200, {"faults": [f.to_json() for f in sandbox.faults.active()]})
    if request.method == "DELETE":
        return json_response(200, {"cleared": sandbox.faults.clear(request.arg("vendor"))})
    body = _body(request)
    try:
        fault = sandbox.plan(Fault.from_json(body))
    except FaultError as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(201, fault.to_json())


def _mutate(sandbox: Sandbox, request: Request) -> Response:
    body = _body(request)
    allowed = {"vendor", "changes", "adds", "deletes", "table"}
    if set(body) - allowed or "vendor" not in body:
        return json_response(400, {"error": f"body takes {sorted(allowed)} and needs 'vendor'"})
    try:
        with sandbox.world.lock:
            report = mutate(
                sandbox.world,
                str(body["vendor"]),
                changes=int(body.get("changes", 0)),
                adds=int(body.get("adds", 0)),
                deletes=int(body.get("deletes", 0)),
                table=body.get("table"),
            )
    except (MutationError, TypeError, ValueError) as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(200, report.to_json())


def _changes(sandbox: Sandbox, request: Request) -> Response:
    raw = request.arg("since") or ""
    if not raw.isdigit():
        return json_response(400, {"error": f"since must be epoch milliseconds, got {raw!r}"})
    with sandbox.world.lock:
        counts = changes_since(sandbox.world, int(raw))
    return json_response(200, {"since": int(raw), "tables": counts})


def _deliver(sandbox: Sandbox, request: Request) -> Response:
    body = _body(request)
    ctx = sandbox.context
    world = ctx.world
    with world.lock:
        form_id = str(body.get("form_id") or typeform_records.form_id(world, 0))
        form = typeform_records.form_index(world, form_id)
        if form is None:
            return json_response(404, {"error": f"unknown form {form_id}"})
        if body.get("response_id"):
            row = typeform_records.response_row(world, str(body["response_id"]))
            if row is None:
                return json_response(404, {"error": f"unknown response {body['response_id']}"})
        else:
            row = add_response(world, form)
        event = webhooks.form_response_event(world, row)
        hooks = [dict(h) for h in typeform.matching_webhooks(ctx, form_id, body.get("tag"))]
    deliveries = []
    for hook in hooks:
        signed = webhooks.build_signed_webhook(hook.get("secret"), event, hook["url"])
        outcome: dict[str, Any] = {
            "tag": hook["tag"],
            "url": hook["url"],
            "signed": bool(hook.get("secret")),
        }
        try:
            outcome["status"] = webhooks.deliver(
                signed, allow_remote=sandbox.config.allow_remote_webhooks
            )
        except (webhooks.WebhookDeliveryError, httpx.HTTPError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        deliveries.append(outcome)
    return json_response(
        200,
        {
            "event_id": event["event_id"],
            "response_id": event["form_response"]["token"],
            "deliveries": deliveries,
        },
    )


def _requests(sandbox: Sandbox, request: Request) -> Response:
    entries = list(sandbox.requests)
    vendor = request.arg("vendor")
    if vendor:
        entries = [e for e in entries if e["vendor"] == vendor]
    raw = request.arg("limit", "100") or "100"
    if not raw.isdigit():
        return json_response(400, {"error": f"limit must be a positive integer, got {raw!r}"})
    return json_response(200, {"requests": entries[-int(raw) :]})


def handle(sandbox: Sandbox, request: Request) -> Response:
    """Serve one control request (path relative to ``/_sandbox``)."""
    path, method = request.path.rstrip("/") or "/", request.method
    try:
        if path == "/health" and method == "GET":
            return json_response(200, {"status": "ok"})
        if path == "/info" and method == "GET":
            return json_response(200, describe(sandbox))
        if path in ("/truth", "/truth.csv") and method == "GET":
            systems = {s for s in (request.arg("system") or "").split(",") if s} or None
            stream = truth_csv_chunks(sandbox.world, systems)
            return Response(
                200, headers=[("Content-Type", "text/csv; charset=utf-8")], stream=stream
            )
        if path == "/faults" and method in ("GET", "POST", "DELETE"):
            return _faults(sandbox, request)
        if path == "/mutate" and method == "POST":
            return _mutate(sandbox, request)
        if path == "/changes" and method == "GET":
            return _changes(sandbox, request)
        if path == "/reset" and method == "POST":
            sandbox.reset()
            return json_response(200, {"status": "reset", "seed": sandbox.config.seed})
        if path == "/typeform/deliver" and method == "POST":
            return _deliver(sandbox, request)
        if path == "/requests" and method == "GET":
            return _requests(sandbox, request)
        if path == "/webhook/deliveries" and method == "GET":
            with sandbox.world.lock:
                found = webhook_receiver.deliveries(sandbox.context, request.arg("endpoint"))
            return json_response(200, {"deliveries": found})
    except BadRequestBody as exc:
        return json_response(400, {"error": str(exc)})
    return json_response(404, {"error": f"no control endpoint {method} /_sandbox{path}"})
