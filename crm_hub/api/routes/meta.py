"""``/traits`` (the trait schema), ``/health``, ``/explain`` and ``POST /match``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from crm_hub.api.audit import record_reads
from crm_hub.api.deps import ApiContext, Auth, Ctx
from crm_hub.api.models import ProblemOut, TraitOut
from crm_hub.api.policy import Principal, field_access
from crm_hub.api.problems import Problem
from crm_hub.api.respond import json_response
from crm_hub.api.routes.customers import _REDIRECT, MasterIdPath, _locate
from crm_hub.api.trait_schema import trait_definitions
from crm_hub.identity.manage import explain as explain_person
from crm_hub.identity.online import OnlineMatcher

__all__ = ["MATCH_ROLES", "MatchIn", "online_matcher", "router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 422)
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


MATCH_ROLES = ("admin", "service")
"""Roles that may call ``POST /match``."""


def _matcher_role(principal: Auth) -> Principal:
    """Only admin and service tokens match (checked before the body is read)."""
    if principal.role not in MATCH_ROLES:
        raise Problem(403, "forbidden", "online matching needs an admin or service token")
    return principal


Matcher = Annotated[Principal, Depends(_matcher_role)]


class MatchIn(BaseModel):
    """One record to look up: any of the fields, as a form or till would send them."""

    model_config = ConfigDict(extra="forbid")

    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    full_name: str | None = Field(None, max_length=400)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=64)
    birth_date: str | None = Field(None, max_length=32, description="YYYY-MM-DD or --MM-DD")
    address_line1: str | None = Field(None, max_length=400)
    address_line2: str | None = Field(None, max_length=400)
    city: str | None = Field(None, max_length=200)
    region: str | None = Field(None, max_length=200)
    postcode: str | None = Field(None, max_length=32)
    country: str | None = Field(None, max_length=2)


def online_matcher(context: ApiContext) -> OnlineMatcher:
    """The process's matcher (it keeps the model it loaded), made on first use."""
    matcher = context.extra.get("matcher")
    if not isinstance(matcher, OnlineMatcher):
        matcher = context.extra["matcher"] = OnlineMatcher(context.store)
    return matcher


@router.get(
    "/explain/{master_id}",
    tags=["engine"],
    summary="Why these records are one person: links, evidence, golden values, history",
    responses={**_ERRORS, **_REDIRECT},
)
def explain(context: Ctx, principal: Auth, request: Request, master_id: MasterIdPath) -> Response:
    """The one-person trace of `crm-hub explain` (managers, admins and services)."""
    if principal.role == "staff":
        raise Problem(403, "forbidden", "explanations need a manager, admin or service token")
    redirect = _locate(context, principal, request, master_id, "explain")
    if redirect is not None:
        return redirect
    with context.store.read() as conn:
        trace = explain_person(conn, master_id)
    record_reads(context.store, principal, action="explain", path=request.url.path, status=200,
                 master_ids=[master_id])  # fmt: skip
    return json_response(trace)


@router.post(
    "/match",
    tags=["engine"],
    summary="Is this record someone we know? Online match against every person",
    responses={  # 400: a body that is not UTF-8 cannot even be read as JSON
        **_ERRORS,
        400: {"model": ProblemOut, "content": {"application/problem+json": {}}},
    },
)
def match(context: Ctx, principal: Matcher, request: Request, record: MatchIn) -> Response:
    """Score one record against the store's people with the last resolve's model.

    Answers the best master (or null), its probability and the decision (``rule:<name>``,
    ``score`` or ``no``), with every candidate looked at. Writes nothing.
    """
    answer = online_matcher(context).match(record.model_dump(exclude_none=True))
    record_reads(context.store, principal, action="match", path=request.url.path, status=200,
                 master_ids=[answer.master_id])  # fmt: skip
    return json_response(asdict(answer))
