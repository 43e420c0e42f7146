"""Native connectors (``type: square | mailchimp | typeform | quickbooks``): the airbyte-cdk
declarative manifest at ``connectors/source_<type>/manifest.yaml`` run in this process.

No subprocess, no second venv: ``ConcurrentDeclarativeSource`` reads, and its messages go through
the same :class:`~crm_hub.sync.airbyte_protocol.AirbyteAdapter` as ``type: airbyte``, so records,
state and errors behave the same. hub.yaml's ``config:`` is checked against the manifest's spec
before anything runs. A ``components.py`` beside the manifest is loaded and registered under the
module names manifests use (``components``, ``source_declarative_manifest.components``,
``source_<type>.components``); one native read at a time per process for such connectors.

**Deletion streams.** A stream ``deleted_<name>`` whose records carry ``_ab_cdc_deleted_at``
(QuickBooks' ``deleted_invoices`` and ``deleted_payments``, read from change data capture because
the vendor hard-deletes) lands as deletions of the same keys in ``<name>``: selecting ``<name>``
selects it too, and its records are stored under ``<name>``, so the map stage retires the rows.

airbyte-cdk is imported on first use, not at import: it is slow to import and warns.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import functools
import hashlib
import importlib.util
import logging
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from crm_hub.config.models import SourceConfig
from crm_hub.errors import ConfigError, CrmHubError, RetryableSourceError
from crm_hub.logging import get_logger, redact, register_secret
from crm_hub.sync.airbyte_protocol import (
    AirbyteAdapter,
    SelectedStream,
    configure_catalog,
    connector_state,
)
from crm_hub.sync.connector_config import NativeSourceConfig
from crm_hub.sync.messages import Message, RecordMessage, SourceReader

__all__ = ["CONNECTORS_DIR", "NativeReader", "native_reader"]

CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors"
DELETION_PREFIX = "deleted_"

log = get_logger(__name__)


class _ToHubLog(logging.Handler):
    """Sends the CDK's log records to crm-hub's log (redacted, with run id and source)."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(record.levelno):
            log.log(record.levelno, "connector log", text=record.getMessage())


@contextlib.contextmanager
def _cdk_warnings() -> Iterator[None]:
    """Run airbyte-cdk code with its ExperimentalClassWarning ignored: the declarative source
    instantiates its own experimental classes, and under ``-W error`` that warning would fail
    every stream. Other warnings keep their configured action.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="This class is experimental", category=DeprecationWarning
        )
        yield


class _StdoutGuard:
    """Stands in for ``sys.stdout`` while the CDK runs: it ``print``s some protocol messages
    (e.g. a RATE_LIMITED stream status) straight to stdout, which would corrupt the hub's own
    output (``--json``). Those go to the debug log; every other write passes through.

    A CONTROL message (the CDK prints one the moment it rotated a refresh token) is never
    logged: its config goes to ``on_config``, in the refreshing thread, before the CDK uses the
    new token.
    """

    def __init__(
        self, target: Any, on_config: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self._target = target
        self._on_config = on_config

    def write(self, text: str) -> int:
        if text.startswith('{"type":'):
            if '"CONTROL"' in text[:40]:  # a config update carries fresh tokens: never log it
                self._control(text)
            else:
                log.debug("connector printed", text=text.strip()[:2000])
            return len(text)
        written: int = self._target.write(text)
        return written

    def _control(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        control = message.get("control") if isinstance(message, dict) else None
        config = (control or {}).get("connectorConfig", {}).get("config")
        if self._on_config is None or not isinstance(config, dict):
            log.warning("connector emitted a config update (rotated credentials); withheld")
            return
        self._on_config(config)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextlib.contextmanager
def _guard_stdout(on_config: Callable[[dict[str, Any]], None] | None = None) -> Iterator[None]:
    original = sys.stdout
    guard = _StdoutGuard(original, on_config)
    sys.stdout = guard
    try:
        yield
    finally:
        if sys.stdout is guard:
            sys.stdout = original


def _cdk() -> Any:
    """airbyte-cdk's pieces the hub uses, imported on first use (slow, and it warns) with its
    logging tamed: importing its entrypoint puts a handler on the root logger that prints every
    log record of the process to stdout as Airbyte LOG messages (it would corrupt ``--json``).
    """
    with _cdk_warnings():
        import airbyte_cdk.entrypoint  # noqa: F401  (configures logging when first imported)
        from airbyte_cdk.logger import AirbyteLogFormatter
        from airbyte_cdk.models import airbyte_protocol_serializers as serializers
        from airbyte_cdk.sources.declarative import concurrent_declarative_source as declarative
    _serialize_ast_parse()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, AirbyteLogFormatter):
            root.removeHandler(handler)
    cdk_log = logging.getLogger("airbyte")
    cdk_log.propagate = False
    if not any(isinstance(handler, _ToHubLog) for handler in cdk_log.handlers):
        cdk_log.addHandler(_ToHubLog())
    return types.SimpleNamespace(
        Source=declarative.ConcurrentDeclarativeSource,
        dump_message=serializers.AirbyteMessageSerializer.dump,
        dump_catalog=serializers.AirbyteCatalogSerializer.dump,
        load_catalog=serializers.ConfiguredAirbyteCatalogSerializer.load,
        load_state=serializers.AirbyteStateMessageSerializer.load,
    )


def _ast_race_fixed(version: tuple[int, ...] = sys.version_info[:3]) -> bool:
    """Whether this CPython has the fix of gh-106905 (3.11.8, 3.12.2 and later)."""
    return version >= (3, 12, 2) or (3, 11, 8) <= version < (3, 12)


def _serialize_ast_parse() -> None:
    """On a CPython without the fix of gh-106905, parse one text at a time in this process.

    There two threads building AST objects at once share one depth counter, and either may fail
    with ``SystemError: AST constructor recursion depth mismatch``. airbyte-cdk's concurrent
    reads evaluate interpolated values with ``ast.literal_eval`` on several threads (a
    Mailchimp ``members`` read failed so in CI on 3.11.7); ``literal_eval`` calls the module's
    ``parse``, which is what is wrapped.
    """
    if _ast_race_fixed() or hasattr(ast.parse, "crm_hub_serialized"):
        return
    parse, lock = ast.parse, threading.Lock()

    @functools.wraps(parse)
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    serialized.crm_hub_serialized = True  # type: ignore[attr-defined]
    ast.parse = serialized


class NativeReader:
    """Reads one native source in-process (see the module docstring).

    Args:
        name: the source's name in hub.yaml.
        config: its configuration.
        base_dir: hub.yaml's folder (``manifest:`` is relative to it).
        connectors_dir: where ``source_<type>/manifest.yaml`` folders live.
    """

    def __init__(
        self,
        name: str,
        config: NativeSourceConfig,
        base_dir: Path,
        connectors_dir: Path = CONNECTORS_DIR,
    ) -> None:
        self.name, self.config, self.base_dir = name, config, base_dir
        self.label = f"source {name}"
        self.manifest_path = self._manifest_path(connectors_dir)
        self._catalog: dict[str, Any] | None = None
        self._selected: dict[str, SelectedStream] = {}
        self._lands_in: dict[str, str] = {}  # deletion stream → the stream it deletes from
        self._problem: CrmHubError | None = None
        if not self.manifest_path.is_file():
            # Raised by read(), inside the recorded run, so `crm-hub status` shows it.
            self._problem = ConfigError(
                f"{self.label}: connector manifest {self.manifest_path} not found; "
                + self._manifest_hint()
            )
        self._adapter: AirbyteAdapter | None = None
        self._logger = logging.getLogger(f"airbyte.crm_hub.{name}")
        # Called with the connector's new config when it rotates credentials (see
        # crm_hub.sync.rotated); the sync stage sets it. Keys the manifest derives from others
        # (config_normalization_rules, e.g. api_root) are left out.
        self.config_listener: Callable[[dict[str, Any]], object] | None = None
        self._derived: list[list[str]] = []
        self._config_error: BaseException | None = None

    def _config_update(self, config: dict[str, Any]) -> None:
        if self.config_listener is None:
            log.warning("connector emitted a config update (rotated credentials); withheld")
            return
        clean = copy.deepcopy(config)
        for path in self._derived:
            node: Any = clean
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        try:
            self.config_listener(clean)
        except BaseException as exc:  # raised again by read(), not as the CDK's own error
            self._config_error = exc
            raise

    def _manifest_path(self, connectors_dir: Path) -> Path:
        if self.config.manifest:
            path = Path(self.config.manifest).expanduser()
            return path if path.is_absolute() else self.base_dir / path
        return connectors_dir / f"source_{self.config.type}" / "manifest.yaml"

    def _manifest_hint(self) -> str:
        if self.config.manifest:
            return "fix `manifest:` in hub.yaml"
        return (
            f"the {self.config.type} connector is not installed with this crm-hub; set "
            "`manifest:` to a manifest file, or run the vendor's connector with `type: airbyte`"
        )

    def streams(self) -> dict[str, list[str]]:
        """Stream → primary key, from the manifest (empty when that failed: see read)."""
        if self._catalog is None and self._problem is None:
            try:
                self._discover()
            except CrmHubError as exc:
                self._problem = exc
        return {name: s.primary_key for name, s in self._selected.items()}

    def position(self) -> tuple[int, int | None]:
        """Records read so far (no total)."""
        return (self._adapter.records if self._adapter else 0), None

    def _manifest(self) -> dict[str, Any]:
        try:
            manifest = YAML(typ="safe").load(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, YAMLError) as exc:
            raise ConfigError(
                f"{self.label}: cannot read connector manifest {self.manifest_path}: {exc}"
            ) from None
        if not isinstance(manifest, dict):
            raise ConfigError(f"{self.label}: {self.manifest_path} is not a manifest mapping")
        self._load_components()
        self._derived = _derived_paths(manifest)
        return manifest

    def _load_components(self) -> None:
        path = self.manifest_path.parent / "components.py"
        if not path.is_file():
            return
        digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
        unique = f"crm_hub_native_components_{digest}"
        module = sys.modules.get(unique)
        if module is None:
            spec = importlib.util.spec_from_file_location(unique, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            _cdk()  # import (and tame) airbyte-cdk first
            with _cdk_warnings():
                spec.loader.exec_module(module)
            sys.modules[unique] = module
        for alias in (
            "components",
            "source_declarative_manifest.components",
            f"{self.manifest_path.parent.name}.components",
        ):
            sys.modules[alias] = module

    def _check_config(self, manifest: dict[str, Any]) -> None:
        import jsonschema

        spec = (manifest.get("spec") or {}).get("connection_specification") or {}
        for key, schema in (spec.get("properties") or {}).items():
            value = self.config.config.get(key)
            if isinstance(schema, dict) and schema.get("airbyte_secret") and value:
                register_secret(str(value))
        validator = jsonschema.Draft7Validator(spec)
        problems = [
            f"{self.label}: config.{'.'.join(map(str, error.absolute_path)) or '(root)'}: "
            f"{redact(error.message)} (see the spec in {self.manifest_path})"
            for error in sorted(validator.iter_errors(self.config.config), key=str)
        ]
        if problems:
            raise ConfigError("\n".join(problems), problems=problems)

    def _source(self, manifest: dict[str, Any], catalog: Any = None, state: Any = None) -> Any:
        return _cdk().Source(
            source_config=manifest, config=self.config.config, catalog=catalog, state=state
        )

    def _discover(self) -> None:
        manifest = self._manifest()
        self._check_config(manifest)
        try:
            with _cdk_warnings(), _guard_stdout(self._config_update):
                catalog = self._source(manifest).discover(self._logger, self.config.config)
        except Exception as exc:
            raise self._error(exc, "discover") from None
        dumped = _cdk().dump_catalog(catalog)
        configured, self._selected = configure_catalog(
            self.label,
            dumped,
            _with_deletion_streams(self.config.streams, dumped),
            self.config.primary_key,
        )
        self._catalog = configured
        self._lands_in = {
            name: name.removeprefix(DELETION_PREFIX)
            for name in self._selected
            if name.startswith(DELETION_PREFIX)
            and name.removeprefix(DELETION_PREFIX) in self._selected
        }

    def read(self, state: dict[str, Any]) -> Iterator[Message]:
        """Read the selected streams in-process and yield records and states.

        Raises:
            ConfigError: no manifest, a config that fails the spec, a bad stream selection.
            FatalSourceError: the connector reported a config error (e.g. bad credentials).
            RetryableSourceError: any other connector error.
        """
        self.streams()
        if self._problem is not None:
            raise self._problem
        adapter = self._adapter = AirbyteAdapter(self.label, self._selected, self._config_update)
        saved = connector_state(state, list(self._selected))
        cdk = _cdk()
        states = [cdk.load_state(s) for s in saved] if isinstance(saved, list) else []
        catalog = cdk.load_catalog(self._catalog)
        dump = cdk.dump_message
        self._config_error = None
        try:
            with _cdk_warnings(), _guard_stdout(self._config_update):
                source = self._source(self._manifest(), catalog, states)
                for message in source.read(self._logger, self.config.config, catalog, states):
                    converted = adapter.convert(dump(message))
                    if converted is not None:
                        yield self._landed(converted)
        except CrmHubError:
            raise
        except Exception as exc:
            if self._config_error is not None:
                raise self._config_error from None
            traced = getattr(exc, "as_airbyte_message", None)
            if traced is None:
                raise self._error(exc, "read") from None
            adapter.convert(dump(traced()))
        if self._config_error is not None:
            raise self._config_error
        # The CDK also writes rotated values into the config's nested mappings in place: a
        # second chance for an update whose CONTROL line did not reach the guard.
        if self.config_listener is not None:
            self._config_update(self.config.config)
        failure = adapter.failure(None)
        if failure is not None:
            raise failure

    def _landed(self, message: Message) -> Message:
        """A deletion-stream record as the deletion of its key in the stream it deletes from."""
        if type(message) is RecordMessage and message.stream in self._lands_in:
            return dataclasses.replace(message, stream=self._lands_in[message.stream], deleted=True)
        return message

    def _error(self, exc: Exception, step: str) -> CrmHubError:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        detail = getattr(exc, "internal_message", None)
        return RetryableSourceError(
            f"{self.label}: {step} failed: {redact(str(message))}",
            detail=redact(str(detail)) if detail else None,
        )


def _with_deletion_streams(wanted: list[str] | None, catalog: dict[str, Any]) -> list[str] | None:
    """``wanted`` plus the ``deleted_<name>`` stream of each wanted name the catalog has."""
    if wanted is None:
        return None
    names = {str(s.get("name")) for s in catalog.get("streams") or [] if isinstance(s, dict)}
    extra = [DELETION_PREFIX + w for w in wanted if DELETION_PREFIX + w in names]
    return list(wanted) + [e for e in extra if e not in wanted]


def _derived_paths(manifest: dict[str, Any]) -> list[list[str]]:
    """Config paths the manifest adds itself (``ConfigAddFields`` normalisation, e.g.
    ``api_root``): derived from other keys, so not worth storing when a config update
    carries them."""
    rules = ((manifest.get("spec") or {}).get("config_normalization_rules") or {}).get(
        "transformations"
    ) or []
    paths = []
    for rule in rules:
        if isinstance(rule, dict) and rule.get("type") == "ConfigAddFields":
            for field in rule.get("fields") or []:
                path = field.get("path") if isinstance(field, dict) else None
                if isinstance(path, list) and path:
                    paths.append([str(part) for part in path])
    return paths


def native_reader(name: str, config: SourceConfig, base_dir: Path) -> SourceReader:
    """Registry factory for the native types (square, mailchimp, typeform, quickbooks)."""
    assert isinstance(config, NativeSourceConfig)
    return NativeReader(name, config, base_dir)
