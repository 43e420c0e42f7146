"""The Airbyte protocol, cut to what the hub needs, on plain dicts (parsed JSON).

Shared by the subprocess reader (``type: airbyte``) and the in-process native connectors, so
both land records, keep state and report errors the same way:

- :func:`configure_catalog` turns a discovered catalog into the configured catalog for
  ``read``: every stream (or the ``streams:`` subset) incremental with its default cursor where
  the stream supports it, else full refresh; primary keys from the catalog or from hub.yaml;
- :class:`AirbyteAdapter` turns Airbyte messages into the hub's messages: RECORD →
  :class:`RecordMessage`, STATE → :class:`StateMessage`, LOG → our log, TRACE error → kept for
  :meth:`AirbyteAdapter.failure`;
- CONTROL (``CONNECTOR_CONFIG``, a connector's rotated credentials) → the adapter's
  ``on_config`` callback, synchronously (see :mod:`crm_hub.sync.rotated`);
- :func:`connector_state` rebuilds the ``--state`` input from what the engine saved.

State, as saved per stream in ``sync_state``::

    {"airbyte": <the AirbyteStateMessage, minus stats>, "cursor": <cursor value, for status>}

A per-stream (``STREAM``) state is saved under its stream; a ``GLOBAL`` state under the reserved
stream ``_airbyte_global``; a legacy ``data`` state under ``_airbyte_legacy``. Next run passes
back the global state if there is one, else the per-stream states of the selected streams as a
list, else the legacy blob. Null keys may be omitted anywhere: everything is read with ``get``.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_hub.errors import ConfigError, CrmHubError, FatalSourceError, RetryableSourceError
from crm_hub.logging import get_logger, redact
from crm_hub.sync.messages import Message, RecordMessage, RejectMessage, StateMessage

__all__ = [
    "GLOBAL_STREAM",
    "LEGACY_STREAM",
    "AirbyteAdapter",
    "SelectedStream",
    "configure_catalog",
    "connector_state",
]

GLOBAL_STREAM = "_airbyte_global"
LEGACY_STREAM = "_airbyte_legacy"
_STATS = ("sourceStats", "destinationStats")
_LEVELS = {
    "FATAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TRACE": logging.DEBUG,
}

log = get_logger(__name__)


@dataclass(slots=True)
class SelectedStream:
    """A stream the hub reads, as configured for ``read``."""

    name: str
    primary_key: list[str]
    cursor_field: list[str] = field(default_factory=list)
    incremental: bool = False


def configure_catalog(
    label: str,
    catalog: dict[str, Any],
    wanted: list[str] | None,
    primary_keys: dict[str, list[str]],
) -> tuple[dict[str, Any], dict[str, SelectedStream]]:
    """The configured catalog for ``read`` and the streams it selects.

    Args:
        label: names the source in messages, e.g. ``source faker``.
        catalog: the ``catalog`` of the connector's CATALOG message.
        wanted: stream names to read (None: every stream).
        primary_keys: hub.yaml's ``primary_key`` per stream, winning over the catalog's.

    Raises:
        ConfigError: an unknown stream is named, or a stream has no usable primary key; lists
            every problem at once.
    """
    by_name: dict[str, dict[str, Any]] = {
        str(s.get("name")): s for s in catalog.get("streams") or [] if isinstance(s, dict)
    }
    available = ", ".join(sorted(by_name)) or "none"
    problems = [
        f"{label}: stream {name!r} is not in the connector's catalog (streams: {available}); "
        "fix `streams:` in hub.yaml"
        for name in wanted or []
        if name not in by_name
    ]
    names = [n for n in (wanted or by_name) if n in by_name]
    problems += [
        f"{label}: `primary_key` names stream {name!r} which is not read "
        f"(streams read: {', '.join(names) or 'none'}); remove it or add the stream to `streams:`"
        for name in primary_keys
        if name not in names
    ]
    configured: list[dict[str, Any]] = []
    selected: dict[str, SelectedStream] = {}
    for name in names:
        stream = by_name[name]
        key = _primary_key(label, name, stream, primary_keys.get(name), problems)
        if key is None:
            continue
        modes = stream.get("supported_sync_modes") or ["full_refresh"]
        cursor = list(stream.get("default_cursor_field") or [])
        incremental = "incremental" in modes and bool(stream.get("source_defined_cursor") or cursor)
        selected[name] = SelectedStream(name, key, cursor if incremental else [], incremental)
        configured.append(
            {
                "stream": stream,
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append_dedup" if incremental else "overwrite",
                "cursor_field": cursor if incremental else [],
                "primary_key": [[part] for part in key],
            }
        )
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    return {"streams": configured}, selected


def _primary_key(
    label: str,
    name: str,
    stream: dict[str, Any],
    configured: list[str] | None,
    problems: list[str],
) -> list[str] | None:
    if configured:
        return list(configured)
    paths = stream.get("source_defined_primary_key") or []
    fix = (
        f"set `primary_key: {{{name}: [<field>, ...]}}` under the source in hub.yaml, "
        "or leave the stream out of `streams:`"
    )
    if not paths:
        problems.append(f"{label}: stream {name!r} has no primary key in the catalog; {fix}")
        return None
    if any(len(path) != 1 for path in paths):
        nested = ", ".join(".".join(map(str, path)) for path in paths)
        problems.append(
            f"{label}: stream {name!r} has a nested primary key ({nested}), which the hub "
            f"cannot key records on; {fix}"
        )
        return None
    return [str(path[0]) for path in paths]


def connector_state(saved: dict[str, Any], streams: list[str]) -> list[Any] | dict[str, Any] | None:
    """What to pass as ``--state``: see the module docstring; None when nothing was saved."""

    def blob(stream: str) -> Any:
        entry = saved.get(stream)
        return entry.get("airbyte") if isinstance(entry, dict) else None

    if (shared := blob(GLOBAL_STREAM)) is not None:
        return [shared]
    per_stream = [b for b in map(blob, streams) if b is not None]
    if per_stream:
        return per_stream
    legacy = blob(LEGACY_STREAM)
    if isinstance(legacy, dict) and isinstance(legacy.get("data"), dict):
        data: dict[str, Any] = legacy["data"]
        return data
    return None


@dataclass(slots=True)
class TraceError:
    """A TRACE error the connector reported."""

    message: str
    internal: str
    failure_type: str | None
    stream: str | None


class AirbyteAdapter:
    """Turns Airbyte messages (dicts) of one run into the hub's messages.

    Args:
        label: names the source in messages, e.g. ``source faker``.
        selected: the streams the configured catalog reads.
        on_config: called with the new config of a ``CONNECTOR_CONFIG`` control message (a
            rotated refresh token) before the next message is read; None: the update is
            dropped with a warning. The config is never logged: it holds every secret.
    """

    def __init__(
        self,
        label: str,
        selected: dict[str, SelectedStream],
        on_config: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.label, self.selected, self.on_config = label, selected, on_config
        self.errors: list[TraceError] = []
        self.records = 0
        self.estimate: int | None = None
        self.recent: collections.deque[str] = collections.deque(maxlen=8)
        self._estimates: dict[str, int] = {}

    def convert(self, message: dict[str, Any]) -> Message | None:
        """The hub message for ``message``, or None (logs, traces, other types)."""
        kind = message.get("type")
        if kind == "RECORD":
            return self._record(message.get("record") or {})
        if kind == "STATE":
            return self._state(message.get("state") or {})
        if kind == "LOG":
            entry = message.get("log") or {}
            self._log(str(entry.get("level") or "INFO"), str(entry.get("message") or ""))
        elif kind == "TRACE":
            self._trace(message.get("trace") or {})
        elif kind == "CONTROL":
            self._control(message.get("control") or {})
        return None

    def _control(self, control: dict[str, Any]) -> None:
        config = (control.get("connectorConfig") or {}).get("config")
        wanted = control.get("type") == "CONNECTOR_CONFIG"
        if wanted and isinstance(config, dict) and self.on_config is not None:
            self.on_config(config)
            return
        log.warning("connector asked to change its config; hub.yaml is left as it is")

    def not_json(self, raw: bytes) -> None:
        """A stdout line that is not an Airbyte message: log it, keep it for error messages."""
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            self.recent.append(text)
            log.info("connector output", text=text[:2000])

    def _record(self, record: dict[str, Any]) -> Message:
        stream, data = record.get("stream"), record.get("data")
        if stream not in self.selected:
            raise FatalSourceError(
                f"{self.label}: connector sent records of stream {stream!r}, which the hub did "
                f"not ask for (streams read: {', '.join(self.selected)}); this is a connector bug"
            )
        assert isinstance(stream, str)
        self.records += 1
        if not isinstance(data, dict):
            return RejectMessage(
                stream=stream,
                reason_code="not_an_object",
                message=f"record data is {type(data).__name__}, expected an object",
                reject_key=f"record:{self.records}",
                payload=redact(repr(data))[:10_000],
            )
        return RecordMessage(stream, data, deleted=bool(data.get("_ab_cdc_deleted_at")))

    def _state(self, state: dict[str, Any]) -> StateMessage | None:
        kind = state.get("type") or ("LEGACY" if "data" in state else None)
        clean = {k: v for k, v in state.items() if k not in _STATS}
        if kind == "STREAM":
            descriptor = (clean.get("stream") or {}).get("stream_descriptor") or {}
            name = descriptor.get("name")
            stream = self.selected.get(name) if isinstance(name, str) else None
            if stream is None:
                log.warning("state of a stream not read, ignored", stream=name)
                return None
            saved: dict[str, Any] = {"airbyte": clean}
            cursor = _cursor_value(clean, stream)
            if cursor is not None:
                saved["cursor"] = cursor
            return StateMessage(stream.name, saved)
        if kind == "GLOBAL":
            return StateMessage(GLOBAL_STREAM, {"airbyte": clean})
        if kind == "LEGACY":
            return StateMessage(LEGACY_STREAM, {"airbyte": {"data": clean.get("data") or {}}})
        log.warning("state message of unknown type ignored", state_type=kind)
        return None

    def _log(self, level: str, text: str) -> None:
        number = _LEVELS.get(level.upper(), logging.INFO)
        if number >= logging.ERROR:
            self.recent.append(text.splitlines()[0] if text else text)
        if log.isEnabledFor(number):
            log.log(number, "connector log", text=text)

    def _trace(self, trace: dict[str, Any]) -> None:
        kind = trace.get("type")
        if kind == "ERROR":
            error = trace.get("error") or {}
            descriptor = error.get("stream_descriptor") or {}
            internal = "\n".join(
                str(part)
                for part in (error.get("internal_message"), error.get("stack_trace"))
                if part
            )
            found = TraceError(
                message=str(error.get("message") or "the connector reported an error"),
                internal=internal,
                failure_type=error.get("failure_type"),
                stream=descriptor.get("name"),
            )
            self.errors.append(found)
            log.error(
                "connector error",
                text=found.message,
                failure_type=found.failure_type,
                stream=found.stream,
            )
        elif kind == "ESTIMATE":
            estimate = trace.get("estimate") or {}
            rows = estimate.get("row_estimate")
            if isinstance(rows, int):
                self._estimates[str(estimate.get("name"))] = rows
                self.estimate = sum(self._estimates.values())

    def failure(self, exit_code: int | None, stderr_tail: str = "") -> CrmHubError | None:
        """The error this run ended with: the first TRACE error (config_error: fatal, else
        retryable), or a non-zero exit; None when the run succeeded.
        """
        ran = "" if exit_code in (0, None) else f"; connector exited with code {exit_code}"
        stderr_text = f"; last stderr lines: {stderr_tail}" if stderr_tail else ""
        if self.errors:
            first = self.errors[0]
            kind: type[CrmHubError] = (
                FatalSourceError if first.failure_type == "config_error" else RetryableSourceError
            )
            where = f" (stream {first.stream})" if first.stream else ""
            more = f" (and {len(self.errors) - 1} more error(s))" if len(self.errors) > 1 else ""
            message = f"{self.label}: {redact(first.message)}{where}{more}{ran}{stderr_text}"
            detail = redact("\n\n".join(e.internal for e in self.errors if e.internal)) or None
            return kind(message, detail=detail)
        if exit_code is not None and exit_code != 0:
            what = (
                f"connector was killed by signal {-exit_code}"
                if exit_code < 0
                else f"connector exited with code {exit_code}"
            )
            if not stderr_text and self.recent:
                stderr_text = f"; last connector log lines: {redact(' | '.join(self.recent))}"
            return RetryableSourceError(f"{self.label}: {what}{stderr_text}")
        return None


def _cursor_value(state: dict[str, Any], stream: SelectedStream) -> Any:
    if len(stream.cursor_field) != 1:
        return None
    stream_state = (state.get("stream") or {}).get("stream_state")
    if not isinstance(stream_state, dict):
        return None
    value = stream_state.get(stream.cursor_field[0])
    return value if isinstance(value, (str, int, float)) else None
