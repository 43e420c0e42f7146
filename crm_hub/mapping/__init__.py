"""The map stage: mapping files turn raw records into canonical rows, or rejections."""

from crm_hub.mapping.stage import (
    MapResult,
    MapSummary,
    map_all,
    map_source,
    preview_source,
    replay_rejected,
)

__all__ = ["MapResult", "MapSummary", "map_all", "map_source", "preview_source", "replay_rejected"]
