"""Readers by source type: ``type: file`` in hub.yaml → :class:`FileReader`, and so on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crm_hub.config.models import FileSourceConfig, SourceConfig
from crm_hub.errors import ConfigError
from crm_hub.sync.airbyte import airbyte_reader
from crm_hub.sync.connector_config import NATIVE_TYPES
from crm_hub.sync.files import FileReader
from crm_hub.sync.messages import SourceReader
from crm_hub.sync.native import native_reader
from crm_hub.sync.singer import singer_reader

__all__ = ["READERS", "make_reader", "register_reader"]

ReaderFactory = Callable[[str, SourceConfig, Path], SourceReader]
READERS: dict[str, ReaderFactory] = {}


def register_reader(source_type: str, factory: ReaderFactory) -> None:
    """Make sources of ``source_type`` readable by the sync stage."""
    READERS[source_type] = factory


def make_reader(name: str, config: SourceConfig, base_dir: Path) -> SourceReader:
    """The reader for one configured source.

    Raises:
        ConfigError: no reader is registered for the source's type.
    """
    factory = READERS.get(config.type)
    if factory is None:
        raise ConfigError(f"source {name}: no reader for type {config.type!r}")
    return factory(name, config, base_dir)


def _file_reader(name: str, config: SourceConfig, base_dir: Path) -> SourceReader:
    assert isinstance(config, FileSourceConfig)
    return FileReader(name, config, base_dir)


register_reader("file", _file_reader)
register_reader("airbyte", airbyte_reader)
register_reader("singer", singer_reader)
for _native_type in NATIVE_TYPES:
    register_reader(_native_type, native_reader)
