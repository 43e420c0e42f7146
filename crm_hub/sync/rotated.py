"""Config values a connector rotates itself (single-use OAuth refresh tokens): kept in the store
the moment the connector announces them, laid over hub.yaml's config on the next sync.

An Airbyte connector that refreshes a rotating token announces its whole new config in a
``CONTROL`` (``CONNECTOR_CONFIG``) message; from that moment the old refresh token is dead. The
reader hands that config to :meth:`RotatedConfig.save` (before it reads another message, or, in
process, before the connector's refresh returns), which stores every value that differs from the
config the connector was started with, in its own committed transaction: not batched with the
records, because the token changed whether or not the sync finishes.

On the next sync :func:`open_rotated` overlays the stored values on hub.yaml's ``config:``:
the stored (newer) value wins, only for the keys the connector rotated. When hub.yaml's value of
such a key changed since it was rotated (IT re-authorised the connection and pasted a new
token), hub.yaml wins and the stored value is forgotten.

The values are secrets: registered with the log redaction before they are written, never in a
message (messages name the keys only).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from crm_hub.config.models import SourceConfig
from crm_hub.errors import StoreError
from crm_hub.logging import get_logger, redact
from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.secrets import (
    StoredSecret,
    forget_connector_secrets,
    load_connector_secrets,
    register_values,
    save_connector_secrets,
    value_hash,
)

__all__ = ["RotatedConfig", "flatten", "open_rotated", "plain"]

log = get_logger(__name__)
Path_ = tuple[str, ...]
_MISSING = object()


def flatten(config: Mapping[str, Any], prefix: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every leaf of a nested mapping with its key path (lists are leaves)."""
    for key, value in config.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path)
        else:
            yield path, value


def plain(value: Any) -> Any:
    """A copy of a config value in plain JSON types: hub.yaml's loader leaves ruamel's scalar
    subclasses (``ScalarFloat``...) in place, which the CDK cannot serialise when it emits a
    rotated config."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _set(config: dict[str, Any], path: Path_, value: Any) -> None:
    node = config
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


class RotatedConfig:
    """The rotated values of one source: what the connector starts with, and the saver.

    Args:
        store: the open store.
        source: the source's name in hub.yaml.
        yaml_config: hub.yaml's ``config:`` of the source.
        effective: the config the connector starts with (hub.yaml plus stored values).
    """

    def __init__(
        self, store: Store, source: str, yaml_config: Mapping[str, Any], effective: dict[str, Any]
    ) -> None:
        self.store, self.source = store, source
        self.effective = effective
        self._yaml = dict(flatten(yaml_config))
        self._current = dict(flatten(effective))
        self._lock = threading.Lock()
        self.saved_keys: list[str] = []

    def save(self, new_config: Mapping[str, Any]) -> list[str]:
        """Store every value of ``new_config`` that differs from what the connector has had so
        far, in one committed transaction; returns the dotted keys stored.

        Raises:
            StoreError: the store refused the write (the sync must stop: the new token would be
                lost).
        """
        with self._lock:
            changed = {
                path: value
                for path, value in flatten(new_config)
                if self._current.get(path, _MISSING) != value
            }
            if not changed:
                return []
            register_values(list(changed.values()))  # before any I/O that could echo them
            rows: dict[str, StoredSecret] = {}
            for path, value in changed.items():
                if any("." in part for part in path):
                    log.warning(
                        "rotated config key not stored: its name holds a dot",
                        key=".".join(path),
                    )
                    continue
                base = self._yaml.get(path, _MISSING)
                base_hash = None if base is _MISSING else value_hash(base)
                rows[".".join(path)] = StoredSecret(value, base_hash)
            keys = sorted(rows)
            try:
                with self.store.begin() as conn:
                    save_connector_secrets(conn, self.source, rows, now=utcnow())
            except (SQLAlchemyError, StoreError) as exc:
                cause = getattr(exc, "orig", None) or exc
                first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
                raise StoreError(
                    f"source {self.source}: could not store the connector's rotated "
                    f"{', '.join(keys)}: {redact(first)}; the connector may need re-authorising"
                ) from None
            self._current.update(changed)
            self.saved_keys.extend(k for k in keys if k not in self.saved_keys)
            log.info("stored rotated connector config", keys=",".join(keys))
            return keys


def open_rotated(
    store: Store, name: str, source: SourceConfig
) -> tuple[SourceConfig, RotatedConfig]:
    """``source`` with its stored rotated values laid over ``config:``, and the saver for this
    sync. Sources without a ``config:`` mapping come back unchanged.
    """
    yaml_config: Any = getattr(source, "config", None)
    if not isinstance(yaml_config, dict):
        return source, RotatedConfig(store, name, {}, {})
    with store.read() as conn:
        stored = load_connector_secrets(conn, name)
    effective: dict[str, Any] = plain(yaml_config)
    yaml_flat = dict(flatten(yaml_config))
    stale: list[str] = []
    for key, secret in stored.items():
        path = tuple(key.split("."))
        base = yaml_flat.get(path, _MISSING)
        if (None if base is _MISSING else value_hash(base)) != secret.base_hash:
            stale.append(key)
            continue
        _set(effective, path, secret.value)
    if stale:
        log.warning(
            "hub.yaml changed keys the connector had rotated: using hub.yaml's values",
            keys=",".join(sorted(stale)),
        )
        with store.begin() as conn:
            forget_connector_secrets(conn, name, stale)
    used = sorted(stored.keys() - set(stale))
    if used:
        log.info("using rotated connector config", keys=",".join(used))
    updated = source.model_copy(update={"config": effective})
    return updated, RotatedConfig(store, name, yaml_config, effective)
