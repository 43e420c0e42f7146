"""Signing in to the pages: a token pasted once, kept in an HttpOnly, SameSite=Strict cookie.

The cookie holds the token itself (the store keeps only its hash, so there is nothing else to
look it up by); it is checked on every request exactly as a bearer token is, so revoking the
token ends the session at once. The token is never rendered into a page.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response

from crm_hub.api.deps import ApiContext
from crm_hub.api.policy import Principal
from crm_hub.api.tokens import authenticate

__all__ = [
    "COOKIE",
    "LoginRequired",
    "clear_session",
    "current_principal",
    "read_form",
    "safe_next",
    "start_session",
]

COOKIE = "crm_hub_ui"
SESSION_SECONDS = 7 * 24 * 3600
_MAX_FORM_BYTES = 4096


class LoginRequired(Exception):
    """No valid session: the page handler answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


def current_principal(context: ApiContext, request: Request) -> Principal:
    """The signed-in principal; raises :class:`LoginRequired` when the cookie is missing or dead."""
    secret = request.cookies.get(COOKIE)
    principal = authenticate(context.store, secret) if secret else None
    if principal is None:
        raise LoginRequired(safe_next(request.url.path))
    return principal


def safe_next(path: str | None) -> str:
    """Where to go after sign-in: a path under ``/ui/`` only (never another site)."""
    if not path or not path.startswith("/ui/") or "//" in path or "\\" in path:
        return "/ui/"
    return path


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each key)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items() if values}


def start_session(response: Response, request: Request, secret: str) -> None:
    """Set the session cookie (``Secure`` when the page was served over HTTPS)."""
    response.set_cookie(
        COOKIE,
        secret,
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response) -> None:
    """Forget the session cookie."""
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
