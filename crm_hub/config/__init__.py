"""hub.yaml: models and loader (re-exports only)."""

from crm_hub.config.loader import load_config
from crm_hub.config.models import (
    FileSourceConfig,
    HubConfig,
    ScheduleConfig,
    SourceConfig,
    register_source_type,
)

__all__ = [
    "FileSourceConfig",
    "HubConfig",
    "ScheduleConfig",
    "SourceConfig",
    "load_config",
    "register_source_type",
]
