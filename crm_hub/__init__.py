"""crm-hub: one true picture of every customer. The supported public API is re-exported here;
everything else may change without notice. ``tests/test_exported_members.py`` pins the list.
"""

from crm_hub.config import HubConfig, load_config
from crm_hub.errors import (
    BadRecordError,
    BusyError,
    ConfigError,
    CrmHubError,
    FatalSourceError,
    RetryableSourceError,
    StoreError,
)
from crm_hub.pipeline import RunSummary, run_pipeline, sync_sources
from crm_hub.store import Store, open_store
from crm_hub.sync import SyncResult, sync_source

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
