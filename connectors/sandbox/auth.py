"""Access and refresh tokens of one vendor: checking, issuing, rotating, expiring.

The static token of a vendor (the documented test token) is always known. A vendor with a token
endpoint also issues access tokens that expire after the configured lifetime; when refresh
tokens rotate, each refresh returns a new one and the old one is dead (``invalid_grant``).
The ``expire_token`` fault expires every issued access token at once and makes the static
token answer "expired" for the next few requests, as a token that runs out mid-sync does.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from connectors.sandbox.config import Credentials

TokenState = Literal["ok", "missing", "invalid", "expired"]


@dataclass(frozen=True)
class IssuedTokens:
    """What a successful refresh hands back."""

    access_token: str
    refresh_token: str
    expires_in: int


class RefreshError(Exception):
    """A refresh was refused; ``code`` is the OAuth error, e.g. ``invalid_grant``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenStore:
    """Tokens of one vendor.

    Args:
        vendor: vendor name (used in issued token prefixes).
        credentials: the static token, client credentials and first refresh token.
        ttl: lifetime of issued access tokens in seconds.
        rotate: whether refresh tokens are single-use.
        static_expires: whether the static token also dies after ``ttl`` (QuickBooks: yes).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        vendor: str,
        credentials: Credentials,
        *,
        ttl: float,
        rotate: bool,
        static_expires: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vendor = vendor
        self.credentials = credentials
        self.ttl = ttl
        self.rotate = rotate
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # access token -> expiry (monotonic seconds)
        self._static_expiry = clock() + ttl if static_expires else None
        self._static_failures = 0
        self._refresh_tokens = {credentials.refresh_token} if credentials.refresh_token else set()
        self._used_refresh_tokens: set[str] = set()

    def check(self, token: str | None) -> TokenState:
        """Classify a presented access token."""
        if not token:
            return "missing"
        with self._lock:
            now = self._clock()
            if secrets.compare_digest(token, self.credentials.token):
                if self._static_failures > 0:
                    self._static_failures -= 1
                    return "expired"
                if self._static_expiry is not None and now >= self._static_expiry:
                    return "expired"
                return "ok"
            expiry = self._issued.get(token)
            if expiry is None:
                return "invalid"
            return "ok" if now < expiry else "expired"

    def check_client(self, client_id: str | None, client_secret: str | None) -> bool:
        """Whether the OAuth client credentials are the configured ones."""
        return bool(client_id and client_secret) and secrets.compare_digest(
            f"{client_id}:{client_secret}",
            f"{self.credentials.client_id}:{self.credentials.client_secret}",
        )

    def refresh(self, refresh_token: str | None) -> IssuedTokens:
        """Exchange a refresh token for a new access token (and a new refresh token if rotating).

        Raises:
            RefreshError: ``invalid_grant`` for an unknown or already used refresh token.
        """
        with self._lock:
            if not refresh_token or refresh_token not in self._refresh_tokens:
                raise RefreshError("invalid_grant")
            access = f"{self.vendor}-access-{secrets.token_urlsafe(18)}"
            self._issued[access] = self._clock() + self.ttl
            if self.rotate:
                self._refresh_tokens.discard(refresh_token)
                self._used_refresh_tokens.add(refresh_token)
                refresh_token = f"{self.vendor}-refresh-{secrets.token_urlsafe(18)}"
                self._refresh_tokens.add(refresh_token)
            return IssuedTokens(access, refresh_token, int(self.ttl))

    def expire_now(self, static_failures: int = 1) -> None:
        """Expire all issued access tokens; the static one fails ``static_failures`` times."""
        with self._lock:
            now = self._clock()
            for token in self._issued:
                self._issued[token] = min(self._issued[token], now)
            self._static_failures += static_failures


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic ...`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
