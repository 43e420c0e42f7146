"""crm-hub: one true picture of every customer. The supported public API is re-exported here;
everything else may change without notice. ``tests/test_exported_members.py`` pins the list.
"""

from typing import TYPE_CHECKING, Any

from crm_hub.errors import (
    BadRecordError,
    BusyError,
    ConfigError,
    CrmHubError,
    FatalSourceError,
    RetryableSourceError,
    StoreError,
)

if TYPE_CHECKING:
    from crm_hub.config import HubConfig, load_config
    from crm_hub.pipeline import RunSummary, run_pipeline, sync_sources
    from crm_hub.store import Store, open_store
    from crm_hub.sync import SyncResult, sync_source

# Imported on first use: a small process such as the publish recorder (started for every
# Singer push) must not pay for importing the pipeline, or config and pydantic.
_LAZY = {
    "HubConfig": "crm_hub.config",
    "load_config": "crm_hub.config",
    "RunSummary": "crm_hub.pipeline",
    "run_pipeline": "crm_hub.pipeline",
    "sync_sources": "crm_hub.pipeline",
    "Store": "crm_hub.store",
    "open_store": "crm_hub.store",
    "SyncResult": "crm_hub.sync",
    "sync_source": "crm_hub.sync",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'crm_hub' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BadRecordError",
    "BusyError",
    "ConfigError",
    "CrmHubError",
    "FatalSourceError",
    "HubConfig",
    "RetryableSourceError",
    "RunSummary",
    "Store",
    "StoreError",
    "SyncResult",
    "load_config",
    "open_store",
    "run_pipeline",
    "sync_source",
    "sync_sources",
]
