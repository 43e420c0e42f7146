"""The sync stage: read sources, land raw records, keep sync state."""

from crm_hub.sync.engine import SyncProgress, SyncResult, sync_source

__all__ = ["SyncProgress", "SyncResult", "sync_source"]
