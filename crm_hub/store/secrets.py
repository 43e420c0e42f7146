"""Connector config values the connector itself rotated (e.g. QuickBooks' single-use refresh
token), kept per (source, dotted config path).

Values are secrets: they are registered with the log redaction as soon as they are read or
written, and nothing here puts one in a message. Each value is stored as JSON text (a token is a
string, but a connector may rotate any JSON value); ``base_hash`` is the sha256 of the hub.yaml
value it replaced, so a value IT later changes in hub.yaml (a re-authorised connection) wins over
the stored one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select

from crm_hub.logging import register_secret
from crm_hub.store.schema import connector_secrets
from crm_hub.store.upsert import upsert

__all__ = [
    "StoredSecret",
    "forget_connector_secrets",
    "load_connector_secrets",
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


def load_connector_secrets(conn: Connection, source: str) -> dict[str, StoredSecret]:
    """The stored rotated values of ``source``, by dotted config path."""
    rows = conn.execute(
        select(
            connector_secrets.c.key, connector_secrets.c.value, connector_secrets.c.base_hash
        ).where(connector_secrets.c.source == source)
    )
    found: dict[str, StoredSecret] = {}
    for key, text, base_hash in rows:
        value = orjson.loads(text)
        register_values(value)
        found[key] = StoredSecret(value, base_hash)
    return found


def save_connector_secrets(
    conn: Connection, source: str, values: Mapping[str, StoredSecret], *, now: datetime
) -> None:
    """Upsert rotated values (by dotted path) in the caller's transaction."""
    rows = []
    for key, stored in values.items():
        register_values(stored.value)
        rows.append(
            {
                "source": source,
                "key": key,
                "value": orjson.dumps(stored.value).decode(),
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
