"""``POST /events/typeform``: Typeform's webhook, landed as a raw record (see
:mod:`crm_hub.api.webhooks`). Authenticated by the body's signature, not by an API token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from crm_hub.api.deps import Ctx
from crm_hub.api.models import ProblemOut
from crm_hub.api.problems import Problem
from crm_hub.api.respond import json_response
from crm_hub.api.webhooks import MAX_BODY_BYTES, SIGNATURE_HEADER, TypeformWebhooks

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (400, 401, 404, 413, 422)
}


@router.post(
    "/events/typeform",
    tags=["events"],
    summary="Typeform webhook receiver: a signed form response lands as a raw record",
    responses=_ERRORS,
)
async def typeform_event(
    context: Ctx,
    request: Request,
    typeform_signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description="sha256= + base64 HMAC-SHA256 of the raw body with the webhook secret.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The hub.yaml source that receives it (default: the one whose "
            "webhook_secret signs the body).",
        ),
    ] = None,
) -> Response:
    """Verify the signature over the raw body, refuse stale events, ignore repeated event ids.

    200 ``{"status": "landed" | "duplicate" | "already-landed" | "ignored", ...}``; 401 bad
    signature, 400 malformed, 422 stale (older than the source's ``webhook_max_age_seconds``).
    The record is mapped and resolved by the next ``crm-hub run``.
    """
    receiver = context.extra.get("typeform_webhooks")
    if not isinstance(receiver, TypeformWebhooks):
        raise Problem(
            404, "not-found", "webhooks are not set up: crm-hub serve reads them from hub.yaml"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Problem(413, "payload-too-large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    body = await request.body()
    outcome = await run_in_threadpool(receiver.receive, body, typeform_signature, source)
    return json_response(
        {
            "status": outcome.status,
            "source": outcome.source,
            "event_id": outcome.event_id,
            "response_id": outcome.response_id,
        }
    )
