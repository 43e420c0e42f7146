"""API tokens: random secrets shown once, stored only as their sha256.

A token is ``chub_`` + 43 URL-safe characters (256 bits). The store keeps its sha256 hex digest,
its role and branch; a request presents it as ``Authorization: Bearer <token>``. Revoking sets
``revoked_at``; a revoked token is refused like an unknown one.

Each server process remembers a live token it checked for :data:`REMEMBER_SECONDS`, so a busy
till costs one store lookup per token every few seconds rather than one per request; a revoke
therefore reaches every process within that time (at once in the process that revoked).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from crm_hub.api.policy import ROLES, Principal
from crm_hub.errors import ConfigError
from crm_hub.store import Store
from crm_hub.store.runs import new_run_id, utcnow
from crm_hub.store.schema import api_tokens

__all__ = [
    "CreatedToken",
    "TokenInfo",
    "authenticate",
    "create_token",
    "hash_token",
    "list_tokens",
    "recall",
    "revoke_token",
]

TOKEN_PREFIX = "chub_"
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is refreshed at most this often
REMEMBER_SECONDS = 2.0
"""How long a process trusts a token it found live, before asking the store again."""


class _Remembered:
    """Live tokens recently found, per store: (store id, sha256) → (principal, expiry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], tuple[Principal, float]] = {}

    def get(self, store: Store, digest: str) -> Principal | None:
        entry = self._entries.get((id(store), digest))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, store: Store, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) > 10_000:  # only live tokens land here; a bound all the same
                self._entries.clear()
            self._entries[id(store), digest] = (principal, time.monotonic() + REMEMBER_SECONDS)

    def forget(self, token_id: str) -> None:
        with self._lock:
            for key, (principal, _) in list(self._entries.items()):
                if principal.token_id == token_id:
                    del self._entries[key]


_remembered = _Remembered()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: str
    name: str
    role: str
    branch: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token: ``secret`` exists only here, once; the store keeps its hash."""

    info: TokenInfo
    secret: str


def hash_token(secret: str) -> str:
    """The sha256 hex digest a token is stored and looked up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Store, *, name: str, role: str, branch: str | None = None) -> CreatedToken:
    """Mint a token for ``role`` (and ``branch``); store its hash; return the secret once.

    Raises:
        ConfigError: unknown role, empty or too long name, or a malformed branch.
    """
    if role not in ROLES:
        raise ConfigError(f"token role {role!r} is unknown; use one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 128:
        raise ConfigError("token name must be 1 to 128 characters, e.g. till-north")
    if branch is not None and not _BRANCH.fullmatch(branch):
        raise ConfigError(
            f"branch {branch!r} is not a branch name (letters, digits, _ . -; up to 64)"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(new_run_id(), name.strip(), role, branch, utcnow(), None, None)
    with store.begin() as conn:
        conn.execute(
            api_tokens.insert().values(
                id=info.id,
                name=info.name,
                token_hash=hash_token(secret),
                role=role,
                branch=branch,
                created_at=info.created_at,
            )
        )
    return CreatedToken(info, secret)


def _info(row: object) -> TokenInfo:
    m = row._mapping  # type: ignore[attr-defined]
    return TokenInfo(
        m["id"], m["name"], m["role"], m["branch"], m["created_at"], m["revoked_at"],
        m["last_used_at"],
    )  # fmt: skip


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token, oldest first (secrets are not stored, so not shown)."""
    columns = [c for c in api_tokens.c if c.name != "token_hash"]
    with store.read() as conn:
        rows = conn.execute(select(*columns).order_by(api_tokens.c.created_at, api_tokens.c.id))
        return [_info(row) for row in rows]


def revoke_token(store: Store, token_id: str) -> bool:
    """Revoke a token by id; False when there is no such live token."""
    with store.begin() as conn:
        result = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    _remembered.forget(token_id)
    return result.rowcount == 1


def recall(store: Store, secret: str) -> Principal | None:
    """The principal of a token this process found live in the last seconds; no store I/O."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return _remembered.get(store, hash_token(secret))


def authenticate(store: Store, secret: str) -> Principal | None:
    """The principal of a live token, or None for an unknown or revoked one.

    A token found live is trusted for :data:`REMEMBER_SECONDS` without asking the store.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_token(secret)
    remembered = _remembered.get(store, digest)
    if remembered is not None:
        return remembered
    with store.read() as conn:
        row = _live(conn, digest)
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        with store.begin() as conn:
            conn.execute(
                update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
            )
    principal = Principal(token_id=row.id, name=row.name, role=row.role, branch=row.branch)
    _remembered.put(store, digest, principal)
    return principal


def _live(conn: Connection, digest: str) -> TokenInfo | None:
    columns = [c for c in api_tokens.c if c.name != "token_hash"]
    row = conn.execute(
        select(*columns).where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))
    ).first()
    return None if row is None else _info(row)
