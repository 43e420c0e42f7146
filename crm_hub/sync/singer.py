"""``type: singer``: run any Singer tap as a program and land what it reads.

One sync is two runs of the tap, each in its own private temporary folder:

1. ``--config config.json --discover``: the catalog; every stream (or the ``streams:`` subset)
   is marked ``selected: true`` in its top-level metadata (and in the legacy ``selected`` key),
   the others ``selected: false``; primary keys come from ``table-key-properties`` /
   ``key_properties`` or from hub.yaml's ``primary_key``;
2. ``--config config.json --catalog catalog.json [--state state.json]`` (``--properties`` with
   ``catalog_option: properties``): SCHEMA, RECORD and STATE messages are read from stdout.

State. A Singer tap keeps one global bookmark blob for all its streams, and wants the whole blob
back. The hub saves it as it is under the reserved stream name ``_singer``
(``{"value": <blob>}``), committed with the records of every stream read before it, and passes
it back with ``--state`` on the next sync. Saving a copy under every stream instead would
store the same blob many times and let the copies drift apart when ``streams:`` changes.

Singer taps log on stderr: each line is logged at the level it names (``INFO``, ``WARNING``, ...)
and the last lines are quoted in the error when the tap fails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from crm_hub.config.models import SourceConfig
from crm_hub.errors import ConfigError, CrmHubError, FatalSourceError
from crm_hub.logging import get_logger, redact
from crm_hub.sync.connector_config import SingerSourceConfig
from crm_hub.sync.messages import Message, RecordMessage, RejectMessage, SourceReader, StateMessage
from crm_hub.sync.subprocess_runner import (
    ConnectorProcess,
    private_dir,
    resolve_command,
    write_private_json,
)

__all__ = ["SINGER_STATE_STREAM", "SingerReader", "select_streams", "singer_reader"]

SINGER_STATE_STREAM = "_singer"
_LEVEL = re.compile(r"\b(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG)\b")
_LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "DEBUG": 10}

log = get_logger(__name__)


def _stream_name(entry: dict[str, Any]) -> str:
    return str(entry.get("tap_stream_id") or entry.get("stream"))


def _top_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """The stream's breadcrumb-``[]`` metadata (created when missing)."""
    items = entry.setdefault("metadata", [])
    for item in items:
        if isinstance(item, dict) and item.get("breadcrumb") == []:
            found: dict[str, Any] = item.setdefault("metadata", {})
            return found
    created: dict[str, Any] = {}
    items.append({"breadcrumb": [], "metadata": created})
    return created


def select_streams(
    label: str,
    catalog: dict[str, Any],
    wanted: list[str] | None,
    primary_keys: dict[str, list[str]],
) -> dict[str, list[str]]:
    """Mark the streams to read as selected in ``catalog`` (in place); stream → primary key.

    Raises:
        ConfigError: an unknown stream is named, or a stream has no primary key; lists every
            problem at once.
    """
    entries = [e for e in catalog.get("streams") or [] if isinstance(e, dict)]
    names = [_stream_name(e) for e in entries]
    problems = [
        f"{label}: stream {name!r} is not in the tap's catalog (streams: "
        f"{', '.join(sorted(names)) or 'none'}); fix `streams:` in hub.yaml"
        for name in wanted or []
        if name not in names
    ]
    chosen = set(wanted) if wanted else set(names)
    problems += [
        f"{label}: `primary_key` names stream {name!r} which is not read; remove it or add "
        "the stream to `streams:`"
        for name in primary_keys
        if name not in chosen
    ]
    keys: dict[str, list[str]] = {}
    for entry, name in zip(entries, names, strict=True):
        top = _top_metadata(entry)
        top["selected"] = entry["selected"] = name in chosen
        if name not in chosen:
            continue
        key = (
            primary_keys.get(name) or top.get("table-key-properties") or entry.get("key_properties")
        )
        if not key:
            problems.append(
                f"{label}: stream {name!r} has no key properties in the tap's catalog; set "
                f"`primary_key: {{{name}: [<field>, ...]}}` under the source in hub.yaml, or "
                "leave the stream out of `streams:`"
            )
            continue
        keys[name] = [str(k) for k in key]
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    return keys


class SingerReader:
    """Reads one ``type: singer`` source (see the module docstring)."""

    def __init__(self, name: str, config: SingerSourceConfig, base_dir: Path) -> None:
        self.name, self.config, self.base_dir = name, config, base_dir
        self.label = f"source {name}"
        self._catalog: dict[str, Any] | None = None
        self._keys: dict[str, list[str]] = {}
        self._problem: CrmHubError | None = None
        self._records = 0
        self._warned: set[str] = set()

    def streams(self) -> dict[str, list[str]]:
        """Stream → primary key, from ``--discover`` (empty when it failed: see read)."""
        if self._catalog is None and self._problem is None:
            try:
                self._discover()
            except CrmHubError as exc:
                self._problem = exc
        return dict(self._keys)

    def position(self) -> tuple[int, int | None]:
        """Records read so far (a tap announces no total)."""
        return self._records, None

    def _process(self, argv: list[str]) -> ConnectorProcess:
        return ConnectorProcess(
            self.label,
            [*resolve_command(self.label, self.config.command, self.base_dir), *argv],
            idle_seconds=self.config.timeout_seconds,
            max_seconds=self.config.max_seconds,
            on_stderr=_log_stderr,
            cwd=self.base_dir,
        )

    def _discover(self) -> None:
        with private_dir("crm-hub-singer-") as folder:
            config_path = write_private_json(folder, "config.json", self.config.config)
            with self._process(["--config", str(config_path), "--discover"]) as process:
                output = b"\n".join(process.lines())
                if process.wait() != 0:
                    raise process.exit_error(" during --discover")
        try:
            catalog = orjson.loads(output)
        except orjson.JSONDecodeError as exc:
            raise FatalSourceError(
                f"{self.label}: --discover did not print a JSON catalog ({exc}); is "
                f"{self.config.command[0]} a Singer tap?",
                detail=redact(output[:2000].decode("utf-8", errors="replace")),
            ) from None
        if not isinstance(catalog, dict):
            raise FatalSourceError(f"{self.label}: --discover printed no catalog object")
        self._keys = select_streams(
            self.label, catalog, self.config.streams, self.config.primary_key
        )
        self._catalog = catalog

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        """Run the tap and yield its records and states.

        Raises:
            ConfigError: the command or the stream selection is wrong.
            FatalSourceError: the tap sent a stream the hub did not select, or BATCH messages.
            RetryableSourceError: the tap exited non-zero or timed out.
        """
        self.streams()
        if self._problem is not None:
            raise self._problem
        assert self._catalog is not None
        saved = (state.get(SINGER_STATE_STREAM) or {}).get("value")
        with private_dir("crm-hub-singer-") as folder:
            argv = [
                "--config",
                str(write_private_json(folder, "config.json", self.config.config)),
                f"--{self.config.catalog_option}",
                str(write_private_json(folder, "catalog.json", self._catalog)),
            ]
            if saved is not None:
                argv += ["--state", str(write_private_json(folder, "state.json", saved))]
            with self._process(argv) as process:
                loads = orjson.loads
                for raw in process.lines():
                    try:
                        message = loads(raw)
                    except orjson.JSONDecodeError:
                        self._not_json(raw)
                        continue
                    if type(message) is not dict:
                        self._not_json(raw)
                        continue
                    converted = self._convert(message)
                    if converted is not None:
                        yield converted
                if process.wait() != 0:
                    raise process.exit_error()

    def _convert(self, message: dict[str, Any]) -> Message | None:
        kind = message.get("type")
        if kind == "RECORD":
            stream, data = message.get("stream"), message.get("record")
            if stream not in self._keys:
                self._unknown_stream(stream)
            assert isinstance(stream, str)
            self._records += 1
            if not isinstance(data, dict):
                return RejectMessage(
                    stream=stream,
                    reason_code="not_an_object",
                    message=f"record is {type(data).__name__}, expected an object",
                    reject_key=f"record:{self._records}",
                    payload=redact(repr(data))[:10_000],
                )
            return RecordMessage(stream, data)
        if kind == "STATE":
            return StateMessage(SINGER_STATE_STREAM, {"value": message.get("value")})
        if kind == "SCHEMA":
            self._check_schema(message)
        elif kind == "BATCH":
            raise FatalSourceError(
                f"{self.label}: the tap sent BATCH messages, which the hub does not read; "
                "remove `batch_config` from the tap's config"
            )
        return None

    def _unknown_stream(self, stream: Any) -> None:
        raise FatalSourceError(
            f"{self.label}: the tap sent records of stream {stream!r}, which is not selected "
            f"(streams read: {', '.join(self._keys)}); check the tap's stream_maps"
        )

    def _check_schema(self, message: dict[str, Any]) -> None:
        stream = str(message.get("stream"))
        if stream not in self._keys:
            return
        announced = [str(k) for k in message.get("key_properties") or []]
        if announced and announced != self._keys[stream] and stream not in self._warned:
            self._warned.add(stream)
            log.warning(
                "tap's SCHEMA key_properties differ from the key in use",
                stream=stream,
                schema_keys=",".join(announced),
                keys=",".join(self._keys[stream]),
            )

    def _not_json(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            log.info("tap output", text=text[:2000])


def _log_stderr(line: str) -> None:
    """Log one stderr line of a tap at the level it names (default INFO)."""
    match = _LEVEL.search(line[:80])
    level = _LEVELS.get(match.group(1), logging.INFO) if match else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "tap log", text=line)


def singer_reader(name: str, config: SourceConfig, base_dir: Path) -> SourceReader:
    """Registry factory for ``type: singer``."""
    assert isinstance(config, SingerSourceConfig)
    return SingerReader(name, config, base_dir)
