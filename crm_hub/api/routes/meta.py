"""``/traits`` (the trait schema), ``/health``, and the engine endpoints not built yet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_hub.api.deps import Auth, Ctx
from crm_hub.api.models import ProblemOut, TraitOut
from crm_hub.api.policy import field_access
from crm_hub.api.problems import Problem
from crm_hub.api.respond import json_response
from crm_hub.api.routes.customers import _REDIRECT, MasterIdPath, _locate
from crm_hub.api.trait_schema import trait_definitions

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 422, 501)
}


@router.get("/health", tags=["meta"], summary="Liveness: answers 200 without a token")
def health() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves."""
    return {"status": "ok"}


@router.get(
    "/traits",
    tags=["meta"],
    summary="The trait schema, with what this token may see of each",
    response_model=list[TraitOut],
    responses=_ERRORS,
)
def get_traits(principal: Auth) -> Response:
    """Every trait's name, type, description, policy group and this token's access."""
    body = [
        {**trait, "access": field_access(principal, trait["name"])} for trait in trait_definitions()
    ]
    return json_response(body)


# The lead is building the engine parts these two call (online match, link explanations).
# Until then they answer 501 problems, after the same auth and visibility checks as the rest.


@router.get(
    "/explain/{master_id}",
    tags=["engine"],
    summary="Why these records were linked (NOT IMPLEMENTED YET: 501)",
    responses={**_ERRORS, **_REDIRECT},
)
def explain(context: Ctx, principal: Auth, request: Request, master_id: MasterIdPath) -> Response:
    """Not implemented yet: answers 501 for a customer this token may read (404 otherwise)."""
    if principal.role == "staff":
        raise Problem(403, "forbidden", "explanations need a manager, admin or service token")
    redirect = _locate(context, principal, request, master_id, "explain")
    if redirect is not None:
        return redirect
    raise Problem(501, "not-implemented", "/explain is not built yet (engine pending)")


@router.post(
    "/match",
    tags=["engine"],
    summary="Match one record online (NOT IMPLEMENTED YET: 501)",
    responses=_ERRORS,
)
def match(principal: Auth) -> Response:
    """Not implemented yet: answers 501 to admin and service tokens, 403 to others."""
    if principal.role not in ("admin", "service"):
        raise Problem(403, "forbidden", "online matching needs an admin or service token")
    raise Problem(501, "not-implemented", "POST /match is not built yet (engine pending)")
