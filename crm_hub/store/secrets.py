"""Connector config values the connector itself rotated (e.g. QuickBooks' single-use refresh
token), kept per (source, dotted config path).

Values are secrets: they are registered with the log redaction as soon as they are read or
written, and nothing here puts one in a message. Each value is stored as JSON text (a token is a
string, but a connector may rotate any JSON value); ``base_hash`` is the sha256 of the hub.yaml
value it replaced, so a value IT later changes in hub.yaml (a re-authorised connection) wins over
the stored one.

With ``CRM_HUB_SECRETS_KEY`` set, the JSON text is stored Fernet-encrypted (``fernet:<token>``):
a copy of the store, a backup or a SQL user sees no live credential. Values stored before the key
was set stay readable and are encrypted when next written (or by ``crm-hub secrets reencrypt``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, delete, select, update

from crm_hub.errors import ConfigError
from crm_hub.logging import register_secret
from crm_hub.settings import get_settings
from crm_hub.store.schema import connector_secrets
from crm_hub.store.upsert import upsert

__all__ = [
    "StoredSecret",
    "forget_connector_secrets",
    "load_connector_secrets",
    "reencrypt_connector_secrets",
    "register_values",
    "save_connector_secrets",
    "value_hash",
]


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One rotated value and the hash of the hub.yaml value it replaced (None: there was none)."""

    value: Any
    base_hash: str | None

    def __repr__(self) -> str:
        return f"StoredSecret(value=***, base_hash={self.base_hash!r})"


def value_hash(value: Any) -> str:
    """sha256 (hex) of a config value's canonical JSON."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def register_values(value: Any) -> None:
    """Register every string inside ``value`` with the log redaction."""
    if isinstance(value, str):
        register_secret(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            register_values(item)
    elif isinstance(value, list):
        for item in value:
            register_values(item)


_ENCRYPTED = "fernet:"


def _cipher() -> MultiFernet | None:
    """The configured keys (the first encrypts), or None without ``CRM_HUB_SECRETS_KEY``."""
    key = get_settings().secrets_key
    if key is None:
        return None
    return MultiFernet([Fernet(part.strip()) for part in key.get_secret_value().split(",")])


def _seal(value: Any, cipher: MultiFernet | None) -> str:
    text = orjson.dumps(value)
    if cipher is None:
        return text.decode()
    return _ENCRYPTED + cipher.encrypt(text).decode("ascii")


def _open(text: str, cipher: MultiFernet | None, where: str) -> Any:
    if not text.startswith(_ENCRYPTED):
        return orjson.loads(text)
    if cipher is None:
        raise ConfigError(
            f"the stored credential {where} is encrypted: set CRM_HUB_SECRETS_KEY to the key "
            "that encrypted it"
        )
    try:
        return orjson.loads(cipher.decrypt(text[len(_ENCRYPTED) :].encode("ascii")))
    except InvalidToken:
        raise ConfigError(
            f"the stored credential {where} was encrypted with a key that is not in "
            "CRM_HUB_SECRETS_KEY (give NEW,OLD while changing keys)"
        ) from None


def load_connector_secrets(conn: Connection, source: str) -> dict[str, StoredSecret]:
    """The stored rotated values of ``source``, by dotted config path.

    Raises:
        ConfigError: a value is encrypted and no configured key opens it.
    """
    rows = conn.execute(
        select(
            connector_secrets.c.key, connector_secrets.c.value, connector_secrets.c.base_hash
        ).where(connector_secrets.c.source == source)
    )
    cipher = _cipher()
    found: dict[str, StoredSecret] = {}
    for key, text, base_hash in rows:
        value = _open(text, cipher, f"{source}.{key}")
        register_values(value)
        found[key] = StoredSecret(value, base_hash)
    return found


def save_connector_secrets(
    conn: Connection, source: str, values: Mapping[str, StoredSecret], *, now: datetime
) -> None:
    """Upsert rotated values (by dotted path) in the caller's transaction."""
    cipher = _cipher()
    rows = []
    for key, stored in values.items():
        register_values(stored.value)
        rows.append(
            {
                "source": source,
                "key": key,
                "value": _seal(stored.value, cipher),
                "base_hash": stored.base_hash,
                "updated_at": now,
            }
        )
    upsert(
        conn,
        connector_secrets,
        rows,
        keys=["source", "key"],
        update=["value", "base_hash", "updated_at"],
    )


def forget_connector_secrets(conn: Connection, source: str, keys: list[str] | None = None) -> int:
    """Delete the stored values of ``source`` (only ``keys`` when given); returns how many."""
    statement = delete(connector_secrets).where(connector_secrets.c.source == source)
    if keys is not None:
        statement = statement.where(connector_secrets.c.key.in_(keys))
    return int(conn.execute(statement).rowcount)


def reencrypt_connector_secrets(conn: Connection) -> int:
    """Write every stored value again with the first configured key; returns how many.

    Run after adding a new key in front (``NEW,OLD``), then drop OLD; or after setting the
    first key, to encrypt values stored in plain JSON.

    Raises:
        ConfigError: no key is configured, or a value opens with none of the keys.
    """
    cipher = _cipher()
    if cipher is None:
        raise ConfigError("set CRM_HUB_SECRETS_KEY first: there is no key to encrypt with")
    rows = conn.execute(
        select(connector_secrets.c.source, connector_secrets.c.key, connector_secrets.c.value)
    ).all()
    for source, key, text in rows:
        sealed = _seal(_open(text, cipher, f"{source}.{key}"), cipher)
        conn.execute(
            update(connector_secrets)
            .where(connector_secrets.c.source == source, connector_secrets.c.key == key)
            .values(value=sealed)
        )
    return len(rows)
