"""Request dependencies: the app's context and the caller's token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from crm_hub.api.policy import Principal
from crm_hub.api.problems import Problem
from crm_hub.api.tokens import authenticate, recall
from crm_hub.store import Store

__all__ = [
    "ApiContext",
    "Auth",
    "Ctx",
    "context_of",
    "get_context",
    "get_principal",
    "principal_of",
]


@dataclass(frozen=True)
class ApiContext:
    """What every route needs: the store, the phone regions of the map stage, page sizes."""

    store: Store
    phone_regions: tuple[str, ...] = ("GB",)
    default_page_size: int = 50
    max_page_size: int = 200
    extra: dict[str, object] = field(default_factory=dict)


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `crm-hub tokens create`, sent as `Authorization: Bearer`.",
)


def context_of(request: Request) -> ApiContext:
    """The context create_app stored on the app."""
    context: ApiContext = request.app.state.crm_hub
    return context


async def get_context(request: Request) -> ApiContext:
    """:func:`context_of` as a dependency (async: no thread pool trip for an attribute read)."""
    return context_of(request)


Ctx = Annotated[ApiContext, Depends(get_context)]


async def get_principal(
    context: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its bearer token; 401 problem when missing, unknown or revoked."""
    challenge = {"WWW-Authenticate": 'Bearer realm="crm-hub"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(
            401, "unauthorized", "send an API token as Authorization: Bearer", headers=challenge
        )
    principal = await principal_of(context.store, credentials.credentials)
    if principal is None:
        raise Problem(401, "unauthorized", "the token is unknown or revoked", headers=challenge)
    return principal


async def principal_of(store: Store, token: str) -> Principal | None:
    """The live token's principal, or None: a token this process checked a moment ago costs
    no trip to the thread pool; only a store lookup runs there."""
    return recall(store, token) or await run_in_threadpool(authenticate, store, token)


Auth = Annotated[Principal, Depends(get_principal)]
