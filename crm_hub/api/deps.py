"""Request dependencies: the app's context and the caller's token."""

from __future__ import annotations

import asyncio
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
    # token → its store lookup under way (see principal_of); event-loop state, never shared
    checking: dict[str, asyncio.Future[Principal | None]] = field(
        default_factory=dict, repr=False, compare=False
    )


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
    principal = await principal_of(context, credentials.credentials)
    if principal is None:
        raise Problem(401, "unauthorized", "the token is unknown or revoked", headers=challenge)
    return principal


async def principal_of(context: ApiContext, token: str) -> Principal | None:
    """The live token's principal, or None: a token this process checked a moment ago costs
    no trip to the thread pool; only a store lookup runs there.

    When a busy till's token is due for its check, the requests then in flight with it wait
    for one lookup rather than each making its own: dozens of lookups at once overflowed the
    connection pool, which opened (and then closed) a connection for each.
    """
    found = recall(context.store, token)
    if found is not None:
        return found
    checking = context.checking.get(token)
    if checking is None:
        checking = asyncio.ensure_future(run_in_threadpool(authenticate, context.store, token))
        context.checking[token] = checking
        checking.add_done_callback(lambda _: context.checking.pop(token, None))
    return await asyncio.shield(checking)


Auth = Annotated[Principal, Depends(get_principal)]
