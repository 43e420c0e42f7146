"""Run crm-hub's source manifests in-process against the loopback vendor sandbox.

Helpers for ``tests/connectors``: build a sandbox config per vendor, read or check a manifest
through airbyte-cdk's entrypoint (real sockets, real retries), and watch the sandbox's request
log with the time each request arrived.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from airbyte_cdk.models import (
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.test import entrypoint_wrapper
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from connectors.sandbox import SandboxServer

CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors"
VENDORS = ("square", "mailchimp", "typeform", "quickbooks")
QUICKBOOKS_REALM = "9341453908051276"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens there
FAST_RETRIES = {"backoff_factor": 0.05, "max_retries": 3}


def connector_dir(vendor: str) -> Path:
    """Folder of a source connector (``connectors/source_<vendor>``)."""
    return CONNECTORS_DIR / f"source_{vendor}"


def load_manifest(vendor: str) -> dict[str, Any]:
    """The parsed ``manifest.yaml`` of a source."""
    manifest: dict[str, Any] = yaml.safe_load(
        (connector_dir(vendor) / "manifest.yaml").read_text(encoding="utf-8")
    )
    return manifest


def sandbox_config(vendor: str, sandbox_url: str, **overrides: Any) -> dict[str, Any]:
    """A connector config that points at a sandbox served at ``sandbox_url`` (no vendor prefix).

    Retries are fast (tiny backoff factor) unless ``overrides`` say otherwise.
    """
    vendor_url = f"{sandbox_url}/{vendor}"
    configs: dict[str, dict[str, Any]] = {
        "square": {"access_token": "sandbox-square-token", "base_url": vendor_url},
        "mailchimp": {"api_key": "sandbox-mailchimp-key-us21", "base_url": vendor_url},
        "typeform": {"access_token": "sandbox-typeform-token", "base_url": vendor_url},
        "quickbooks": {
            "credentials": {
                "client_id": "sandbox-quickbooks-app",
                "client_secret": "sandbox-quickbooks-secret",
                "refresh_token": "sandbox-quickbooks-refresh",
            },
            "realm_id": QUICKBOOKS_REALM,
            "base_url": vendor_url,
            "token_url": f"{vendor_url}/oauth2/v1/tokens/bearer",
        },
    }
    return {**configs[vendor], **FAST_RETRIES, **overrides}


def with_unexpired_quickbooks_token(config: dict[str, Any]) -> dict[str, Any]:
    """QuickBooks config that uses the sandbox's static access token (valid for its first hour).

    The connector then refreshes nothing, so the refresh token in the config stays valid: what a
    config persisted after a recent refresh looks like.
    """
    expiry = datetime.now(UTC) + timedelta(minutes=50)
    credentials = {
        **config["credentials"],
        "access_token": "sandbox-quickbooks-token",
        "token_expiry_date": expiry.isoformat(),
    }
    return {**config, "credentials": credentials}


def register_components(vendor: str) -> None:
    """Make the connector's ``components.py`` importable as the manifest names it.

    Manifests say ``source_declarative_manifest.components.<Class>``, the module name Airbyte's
    manifest runner gives a connector's ``components.py``; the hub's native reader registers it
    the same way.
    """
    path = connector_dir(vendor) / "components.py"
    name = f"crm_hub_test_components_{vendor}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    sys.modules["source_declarative_manifest.components"] = module


def _source(
    vendor: str,
    config: dict[str, Any],
    catalog: ConfiguredAirbyteCatalog | None = None,
    state: list[AirbyteStateMessage] | None = None,
) -> ConcurrentDeclarativeSource:
    register_components(vendor)
    return ConcurrentDeclarativeSource(
        source_config=load_manifest(vendor), config=config, catalog=catalog, state=state
    )


def catalog(
    vendor: str, config: dict[str, Any], streams: list[str] | None = None
) -> ConfiguredAirbyteCatalog:
    """Every stream (or ``streams``), incremental where the stream supports it."""
    discovered = _source(vendor, config).discover(logging.getLogger("test"), config).streams
    chosen = [s for s in discovered if streams is None or s.name in streams]
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=s,
                sync_mode=SyncMode.incremental
                if SyncMode.incremental in s.supported_sync_modes
                else SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.append_dedup,
            )
            for s in chosen
        ]
    )


def read(
    vendor: str,
    config: dict[str, Any],
    *,
    state: list[AirbyteStateMessage] | None = None,
    streams: list[str] | None = None,
    expect_failure: bool = False,
) -> entrypoint_wrapper.EntrypointOutput:
    """Read the manifest in-process, as ``source read`` would."""
    configured = catalog(vendor, config, streams)
    source = _source(vendor, config, configured, state)
    outcome = ExpectedOutcome.EXPECT_EXCEPTION if expect_failure else ExpectedOutcome.EXPECT_SUCCESS
    return entrypoint_wrapper.read(source, config, configured, state, expected_outcome=outcome)


def check(vendor: str, config: dict[str, Any]) -> tuple[Status, str]:
    """Run ``check``; returns its status and message."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        output = entrypoint_wrapper._run_command(
            _source(vendor, config),
            ["check", "--config", str(path)],
            expected_outcome=ExpectedOutcome.ALLOW_ANY,
        )
    statuses = output.connection_status_messages
    assert len(statuses) == 1, output.get_formatted_error_message()
    status = statuses[0].connectionStatus
    assert status is not None
    return status.status, status.message or ""


def records(output: entrypoint_wrapper.EntrypointOutput, stream: str) -> list[dict[str, Any]]:
    """Data of the records of one stream."""
    return [m.record.data for m in output.records if m.record and m.record.stream == stream]


def final_state(output: entrypoint_wrapper.EntrypointOutput) -> list[AirbyteStateMessage]:
    """The last state message of each stream: what a caller persists after a sync."""
    last: dict[str, AirbyteStateMessage] = {}
    for message in output.state_messages:
        assert message.state is not None and message.state.stream is not None
        last[message.state.stream.stream_descriptor.name] = message.state
    return list(last.values())


def error_messages(output: entrypoint_wrapper.EntrypointOutput) -> list[str]:
    """User-facing messages of the TRACE errors (internal detail left out)."""
    return [m.trace.error.message for m in output.errors if m.trace and m.trace.error]


def control_configs(stdout: str) -> list[dict[str, Any]]:
    """Configs of the CONNECTOR_CONFIG control messages a connector printed."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("{") or '"CONTROL"' not in line:
            continue
        message = json.loads(line)
        if message.get("type") == Type.CONTROL.value:
            found.append(message["control"]["connectorConfig"]["config"])
    return found


def mutate(server: SandboxServer, vendor: str, **changes: Any) -> dict[str, Any]:
    """``POST /_sandbox/mutate``; returns the ids touched once every change is in the past.

    The sandbox stamps a mutation in a fresh second, ahead of the wall clock when mutations
    follow each other within one second, and Mailchimp and QuickBooks compare times in whole
    seconds: each sync's window closes at the start of its own second. So this waits until the
    second after the stamp.
    """
    response = httpx.post(f"{server.url}/_sandbox/mutate", json={"vendor": vendor, **changes})
    response.raise_for_status()
    report: dict[str, Any] = response.json()
    newest = max(time.time(), report["stamped_at"] / 1000)
    time.sleep(max(0.0, int(newest) + 1.02 - time.time()))
    return report


def inject(server: SandboxServer, vendor: str, kind: str, **options: Any) -> None:
    """``POST /_sandbox/faults``."""
    response = httpx.post(
        f"{server.url}/_sandbox/faults", json={"vendor": vendor, "kind": kind, **options}
    )
    response.raise_for_status()


def truth_ids(server: SandboxServer, system: str, *, deleted: bool = False) -> set[str]:
    """Record ids of one system from ``GET /_sandbox/truth`` (live ones, or deleted ones)."""
    response = httpx.get(f"{server.url}/_sandbox/truth", params={"system": system})
    response.raise_for_status()
    rows = [line.split(",") for line in response.text.splitlines()[1:] if line]
    return {row[1] for row in rows if (row[4] in ("1", "True", "true")) == deleted}


@dataclass(frozen=True)
class Request:
    """One request the sandbox served, with when it arrived and when it was answered."""

    started: float
    answered: float
    method: str
    path: str
    query: str
    status: int
    fault: str | None


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: list[Request] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        entry = getattr(record, "sandbox", None)
        if not isinstance(entry, dict):
            return
        with self._guard:
            self.requests.append(
                Request(
                    started=record.created - entry["ms"] / 1000,
                    answered=record.created,
                    method=entry["method"],
                    path=entry["path"],
                    query=entry["query"],
                    status=entry["status"],
                    fault=entry["fault"],
                )
            )


@contextmanager
def request_log() -> Iterator[list[Request]]:
    """Collect the requests the sandbox serves meanwhile, with their times.

    The sandbox logs each request on ``connectors.sandbox`` once answered, with how long it
    took; the control endpoint's log has no times, so the log records are read instead.
    """
    logger = logging.getLogger("connectors.sandbox")
    collector = _Collector()
    saved = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # keep the lines out of the connector's captured output
    logger.addHandler(collector)
    try:
        yield collector.requests
    finally:
        logger.removeHandler(collector)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def waits_after(requests: list[Request], status: int) -> list[float]:
    """Seconds between each answer of ``status`` and the next identical request's arrival."""
    waits = []
    for i, failed in enumerate(requests):
        if failed.status != status:
            continue
        retry = next(
            (r for r in requests[i + 1 :] if (r.path, r.query) == (failed.path, failed.query)),
            None,
        )
        assert retry is not None, f"{failed.path}?{failed.query} was never retried"
        waits.append(retry.started - failed.answered)
    return waits


# Standard suites: acceptance-test-config.yml names `secrets/<file>.json`; the suite reads them
# from a folder of this process instead, written once the session's sandbox has a port.
STANDARD_CONFIG_DIR = Path(tempfile.gettempdir()) / f"crm-hub-source-configs-{os.getpid()}"


def standard_config_path(vendor: str, relative: Path) -> Path:
    """Where this process keeps the standard-suite config ``relative`` of a vendor."""
    return STANDARD_CONFIG_DIR / vendor / relative


def standard_scenarios(
    vendor: str, scenarios: list[ConnectorTestScenario]
) -> list[ConnectorTestScenario]:
    """The suite's scenarios with their ``secrets/`` configs moved to this process's folder."""
    moved = []
    for scenario in scenarios:
        path = scenario.config_path
        if path is not None and not path.is_absolute() and path.parts[0] == "secrets":
            moved_path = standard_config_path(vendor, path)
            scenario = scenario.model_copy(update={"config_path": moved_path})
        moved.append(scenario)
    return moved


def write_standard_configs(vendor: str, base_url: str) -> None:
    """Write the configs acceptance-test-config.yml names, pointing at a sandbox.

    ``config.json`` is good, ``invalid_config.json`` has a refused credential and
    ``unreachable_config.json`` a base URL where nothing listens (and no retries).
    """
    good = sandbox_config(vendor, base_url)
    if vendor == "quickbooks":
        good = with_unexpired_quickbooks_token(good)
        bad = sandbox_config(vendor, base_url)
        bad["credentials"] = {**bad["credentials"], "refresh_token": "revoked-refresh-token"}
    else:
        secret = "api_key" if vendor == "mailchimp" else "access_token"
        bad = {**good, secret: "not-a-valid-token-us21"}
    unreachable = {**good, "base_url": CLOSED_PORT_URL, "max_retries": 0}
    folder = STANDARD_CONFIG_DIR / vendor / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    for name, config in (
        ("config.json", good),
        ("invalid_config.json", bad),
        ("unreachable_config.json", unreachable),
    ):
        (folder / name).write_text(json.dumps(config), encoding="utf-8")
