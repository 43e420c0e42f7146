"""``type: airbyte``: run any installed Airbyte source as a program and land what it reads.

One sync is two runs of the connector, each in its own private temporary folder:

1. ``discover --config config.json``: the catalog, turned into a configured catalog (see
   :func:`~crm_hub.sync.airbyte_protocol.configure_catalog`);
2. ``read --config config.json --catalog catalog.json [--state state.json]``: stdout is parsed
   line by line (plain JSON, not the pydantic models: faster, and it tolerates omitted null keys
   and whatever the connector puts in records).

A discover failure is not raised by :meth:`AirbyteReader.streams` (the engine calls it before
it records the run as started) but by :meth:`AirbyteReader.read`, so ``crm-hub status`` shows
it as the run's error like any other failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from crm_hub.config.models import SourceConfig
from crm_hub.errors import CrmHubError, FatalSourceError
from crm_hub.logging import get_logger
from crm_hub.sync.airbyte_protocol import (
    AirbyteAdapter,
    SelectedStream,
    configure_catalog,
    connector_state,
)
from crm_hub.sync.connector_config import AirbyteSourceConfig
from crm_hub.sync.messages import Message, SourceReader
from crm_hub.sync.subprocess_runner import (
    ConnectorProcess,
    private_dir,
    resolve_command,
    write_private_json,
)

__all__ = ["AirbyteReader", "airbyte_reader"]

log = get_logger(__name__)


class AirbyteReader:
    """Reads one ``type: airbyte`` source (see the module docstring)."""

    def __init__(self, name: str, config: AirbyteSourceConfig, base_dir: Path) -> None:
        self.name, self.config, self.base_dir = name, config, base_dir
        self.label = f"source {name}"
        self._catalog: dict[str, Any] | None = None
        self._selected: dict[str, SelectedStream] = {}
        self._problem: CrmHubError | None = None
        self._adapter: AirbyteAdapter | None = None
        # Called with a CONNECTOR_CONFIG control message's config (rotated credentials) before
        # the next message is read; the sync stage sets it (see crm_hub.sync.rotated).
        self.config_listener: Callable[[dict[str, Any]], object] | None = None

    def _config_update(self, config: dict[str, Any]) -> None:
        if self.config_listener is None:
            log.warning("connector asked to change its config; hub.yaml is left as it is")
            return
        self.config_listener(config)

    def streams(self) -> dict[str, list[str]]:
        """Stream → primary key, from ``discover`` (empty when discover failed: see read)."""
        if self._catalog is None and self._problem is None:
            try:
                self._discover()
            except CrmHubError as exc:
                self._problem = exc
        return {name: s.primary_key for name, s in self._selected.items()}

    def position(self) -> tuple[int, int | None]:
        """Records read so far, and the connector's estimate of the total (if it sends one)."""
        adapter = self._adapter
        return (adapter.records, adapter.estimate) if adapter else (0, None)

    def _process(self, argv: list[str], timeout: float | None = None) -> ConnectorProcess:
        return ConnectorProcess(
            self.label,
            [*resolve_command(self.label, self.config.command, self.base_dir), *argv],
            idle_seconds=self.config.timeout_seconds if timeout is None else timeout,
            max_seconds=self.config.max_seconds,
            on_stderr=self._stderr_line,
            cwd=self.base_dir,
        )

    def _stderr_line(self, line: str) -> None:
        log.info("connector stderr", text=line)

    def _discover(self) -> None:
        catalog: dict[str, Any] | None = None
        adapter = AirbyteAdapter(f"{self.label} (discover)", {}, self._config_update)
        with private_dir("crm-hub-airbyte-") as folder:
            config_path = write_private_json(folder, "config.json", self.config.config)
            with self._process(["discover", "--config", str(config_path)]) as process:
                for message in _messages(process, adapter):
                    if message.get("type") == "CATALOG":
                        catalog = message.get("catalog") or {}
                    else:
                        adapter.convert(message)
                code = process.wait()
                failure = adapter.failure(code, process.stderr_tail())
        if failure is not None:
            raise failure
        if catalog is None:
            raise FatalSourceError(
                f"{self.label}: `discover` printed no CATALOG message; is {self.config.command[0]}"
                " an Airbyte source?"
            )
        configured, self._selected = configure_catalog(
            self.label, catalog, self.config.streams, self.config.primary_key
        )
        self._catalog = configured

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        """Run ``read`` and yield its records and states; raise its error at the end.

        Raises:
            ConfigError: the command or the catalog selection is wrong.
            FatalSourceError: the connector reported a config error.
            RetryableSourceError: any other connector error, a non-zero exit, a timeout.
        """
        self.streams()
        if self._problem is not None:
            raise self._problem
        assert self._catalog is not None
        adapter = self._adapter = AirbyteAdapter(self.label, self._selected, self._config_update)
        saved = connector_state(state, list(self._selected))
        with private_dir("crm-hub-airbyte-") as folder:
            argv = [
                "read",
                "--config",
                str(write_private_json(folder, "config.json", self.config.config)),
                "--catalog",
                str(write_private_json(folder, "catalog.json", self._catalog)),
            ]
            if saved is not None:
                argv += ["--state", str(write_private_json(folder, "state.json", saved))]
            with self._process(argv) as process:
                log.info("connector started", streams=",".join(self._selected))
                for message in _messages(process, adapter):
                    converted = adapter.convert(message)
                    if converted is not None:
                        yield converted
                code = process.wait()
                failure = adapter.failure(code, process.stderr_tail())
        if failure is not None:
            raise failure


def _messages(process: ConnectorProcess, adapter: AirbyteAdapter) -> Iterator[dict[str, Any]]:
    """The JSON objects the connector prints; other lines go to ``adapter.not_json``."""
    loads = orjson.loads
    for raw in process.lines():
        try:
            message = loads(raw)
        except orjson.JSONDecodeError:
            adapter.not_json(raw)
            continue
        if type(message) is dict:
            yield message
        else:
            adapter.not_json(raw)


def airbyte_reader(name: str, config: SourceConfig, base_dir: Path) -> SourceReader:
    """Registry factory for ``type: airbyte``."""
    assert isinstance(config, AirbyteSourceConfig)
    return AirbyteReader(name, config, base_dir)
