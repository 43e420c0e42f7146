"""The public API is exactly what crm_hub/__init__.py exports: changing it is a decision."""

from __future__ import annotations

import crm_hub


def test_public_api_is_pinned() -> None:
    assert sorted(crm_hub.__all__) == [
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
    for name in crm_hub.__all__:
        assert getattr(crm_hub, name).__doc__, f"{name} has no docstring"
